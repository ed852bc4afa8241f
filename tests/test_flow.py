"""The Prefect DAG: content caching across runs, partial re-runs, failures that keep earlier work."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import textured_rgb, write_jpeg

from photoforge.layout import STAGE_ORDER

pytestmark = pytest.mark.usefixtures("prefect_api")

FAST = {
    **{"ingest.max_size": 480, "poses.max_features": 2048, "depth.max_size": 320, "depth.planes": 32},
    **{"mesh.poisson_depth": 7, "mesh.target_faces": 8000, "uv.texture_size": 512, "export.usdz": False},
    **{"turntable.frames": 12, "turntable.width": 160, "turntable.height": 120},
}
ALL = tuple(s for s in STAGE_ORDER if s != "splat")  # splat is off in the standard preset
DENSE = ("ingest", "poses", "scale", "depth", "fusion")


def _run(capture: Path, workspace: Path, **overrides: Any) -> dict[str, Any]:
    from flows.reconstruct import reconstruct

    return reconstruct(
        capture=str(capture), preset="preview", overrides={**FAST, **overrides}, workspace=str(workspace)
    )


def _statuses(summary: dict[str, Any]) -> dict[str, str]:
    return {row["stage"]: row["status"] for row in summary["stages"]}


def _prefect_task_states(flow_run_id: str) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name.rsplit("-", 1)[0]: run.state.name for run in runs if run.state}


def _artifacts(flow_run_id: str) -> list:  # type: ignore[type-arg]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        flow_level = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return list(flow_level)


def test_cache_reruns_exactly_what_changed(sample_subset: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    first = _run(sample_subset, workspace)
    assert _statuses(first) == dict.fromkeys(ALL, "ran")
    assert first["stages"][1]["metrics"]["registered"] == 6
    assert first["stages"][ALL.index("fusion")]["metrics"]["points"] > 10_000

    second = _run(sample_subset, workspace)
    assert _statuses(second) == dict.fromkeys(ALL, "cached")
    assert _prefect_task_states(second["flow_run_id"]) == dict.fromkeys(ALL, "Cached")
    assert [r["path"] for r in second["stages"]] == [r["path"] for r in first["stages"]]
    artifacts = _artifacts(first["flow_run_id"])
    assert {a.type for a in artifacts} >= {"markdown", "table", "progress"}
    texts = [str(a.data) for a in artifacts]
    for name in ("report.html", "turntable.mp4", "asset.glb"):  # link artifacts (markdown) to the files
        assert any(f"/outputs/{name}" in text and "http://127.0.0.1:" in text for text in texts), name

    texture_only = _run(sample_subset, workspace, **{"uv.texture_size": 256})
    downstream = ("uv", "bake", "export", "turntable", "report")
    assert _statuses(texture_only) == {**dict.fromkeys(ALL, "cached"), **dict.fromkeys(downstream, "ran")}
    outputs = Path(texture_only["outputs"])
    assert {"asset.glb", "asset.obj", "asset.mtl", "albedo.png", "turntable.mp4", "report.html"} <= {
        p.name for p in outputs.iterdir()
    }
    assert "<h2>This run</h2>" in (outputs / "report.html").read_text()

    turntable_only = _run(sample_subset, workspace, **{"uv.texture_size": 256, "turntable.elevation_deg": 35})
    assert _statuses(turntable_only) == {**dict.fromkeys(ALL, "cached"), "turntable": "ran", "report": "ran"}

    fusion_only = _run(sample_subset, workspace, **{"fusion.voxel_size_px": 3.0})
    assert _statuses(fusion_only) == {**dict.fromkeys(ALL, "ran"), **dict.fromkeys(DENSE[:4], "cached")}

    changed = _run(sample_subset, workspace, **{"poses.max_features": 1500})
    assert _statuses(changed) == {**dict.fromkeys(ALL, "ran"), "ingest": "cached"}
    assert changed["stages"][1]["path"] != first["stages"][1]["path"]

    depth_row = ALL.index("depth")
    shutil.rmtree(first["stages"][depth_row]["path"])
    recomputed = _run(sample_subset, workspace)
    assert _statuses(recomputed) == {**dict.fromkeys(ALL, "cached"), "depth": "ran"}
    assert Path(recomputed["stages"][depth_row]["path"], "manifest.json").is_file()

    copied = tmp_path / "elsewhere" / "renamed-capture"
    shutil.copytree(sample_subset, copied)
    moved = _run(copied, workspace)
    assert _statuses(moved) == dict.fromkeys(ALL, "cached")


def test_changed_photo_reruns_everything(sample_subset: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    _run(sample_subset, workspace, **{"ingest.max_size": 400})
    photo = sorted((sample_subset / "images").glob("*.jpg"))[0]
    photo.write_bytes(photo.read_bytes() + b"\x00")  # same image, different bytes
    again = _run(sample_subset, workspace, **{"ingest.max_size": 400})
    assert _statuses(again) == dict.fromkeys(ALL, "ran")


def test_until_stops_after_the_stage(sample_subset: Path, tmp_path: Path) -> None:
    from flows.reconstruct import reconstruct

    summary = reconstruct(str(sample_subset), "preview", FAST, str(tmp_path / "ws"), until="ingest")
    assert [row["stage"] for row in summary["stages"]] == ["ingest"]
    assert not (tmp_path / "ws" / sample_subset.name / "poses").exists()


def test_failing_stage_fails_the_run_and_keeps_earlier_artefacts(tmp_path: Path) -> None:
    from flows.reconstruct import PipelineFailed

    capture = tmp_path / "no-overlap"
    for seed in range(4):
        write_jpeg(capture / f"p{seed}.jpg", textured_rgb(300 + seed))
    with pytest.raises(PipelineFailed) as info:
        _run(capture, tmp_path / "ws")
    summary = info.value.summary
    assert [(r.stage, r.status) for r in summary.stages] == [("ingest", "ran"), ("poses", "failed")]
    assert "[poses]" in str(info.value.cause)
    assert Path(summary.stages[0].path or "", "manifest.json").is_file()
    poses_dir = tmp_path / "ws" / "no-overlap" / "poses"
    assert not poses_dir.exists() or not any(poses_dir.iterdir()), "no half-written poses artefact"
