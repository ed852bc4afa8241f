"""The depth backend that runs: in the cache key (CPU, CUDA, GPU pool) and COLMAP's skipped views.

No GPU here: COLMAP PatchMatch is simulated by writing its output files (COLMAP's dense array
format) into the undistorted workspace, and `pycolmap.has_cuda` is monkeypatched.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pycolmap
import pytest
from conftest import SAMPLE

from flows.gpu import GPU_DEPLOYMENT, decode, encode
from flows.reconstruct import PipelineRun, _already_cached
from photoforge.geometry.mvs import colmap_stereo
from photoforge.layout import DEPTH_JSON, DepthViews
from photoforge.metrics import DepthMetrics
from photoforge.presets import load_preset
from photoforge.stage import StageResult
from photoforge.stages import depth, ingest, poses
from photoforge.stages.depth import DepthInputs, DepthParams
from photoforge.store import ArtefactStore, read_manifest
from photoforge.summary import RunSummary
from tasks.depth import depth as depth_task


@pytest.fixture(scope="module")
def sparse_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """ingest -> poses on six sample photos at 480 px: an SfM model for the depth stage's input."""
    capture = tmp_path_factory.mktemp("capture") / "fountain"
    (capture / "images").mkdir(parents=True)
    for name in sorted(p.name for p in (SAMPLE / "images").glob("*.jpg"))[2:8]:
        shutil.copy(SAMPLE / "images" / name, capture / "images" / name)
    shutil.copy(SAMPLE / "K.txt", capture / "K.txt")
    cfg = load_preset("standard", {"ingest.max_size": 480, "poses.max_features": 2048})
    store = ArtefactStore(tmp_path_factory.mktemp("ws"), "fountain")
    frames = ingest.STAGE.execute(store, ingest.IngestInputs(capture=capture), cfg.ingest)
    sparse = poses.STAGE.execute(store, poses.PosesInputs(ingest=frames), cfg.poses)
    return {"store": store, "frames": frames, "sparse": sparse, "cfg": cfg}


def write_colmap_array(path: Path, array: np.ndarray) -> None:
    """COLMAP's dense array format: 'width&height&channels&', then float32 channel planes."""
    planes = array[..., None] if array.ndim == 2 else array
    height, width, channels = planes.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(f"{width}&{height}&{channels}&".encode())
        np.ascontiguousarray(planes.transpose(2, 0, 1), np.float32).tofile(f)


def fake_depth(width: int, height: int, seed: int) -> np.ndarray:
    """A plausible geometric map: a depth ramp over the central half, no depth (0) around it."""
    depth = np.zeros((height, width), np.float32)
    ramp = 3.0 + seed + np.linspace(0, 1, width // 2, dtype=np.float32)
    depth[height // 4 : height // 4 + height // 2, width // 4 : width // 4 + width // 2] = ramp
    return depth


def fake_patch_match(skip: set[str], calls: list[dict[str, Any]]) -> Any:
    """pycolmap.patch_match_stereo without CUDA: geometric maps for every image but those in `skip`."""

    def patch_match_stereo(workspace: Path, workspace_format: str = "COLMAP", options: Any = None) -> None:
        calls.append({"workspace": Path(workspace), "max_image_size": options.max_image_size})
        model = pycolmap.Reconstruction(str(Path(workspace) / "sparse"))
        stereo = Path(workspace) / "stereo"
        for seed, image in enumerate(sorted(model.images.values(), key=lambda i: i.name)):
            if image.name in skip:
                continue  # COLMAP: "Ignoring reference image ..., because it has no source images"
            camera = model.camera(image.camera_id)
            scale = options.max_image_size / max(camera.width, camera.height)
            width, height = round(camera.width * scale), round(camera.height * scale)
            normal = np.zeros((height, width, 3), np.float32)
            normal[..., 2] = -1.0
            write_colmap_array(stereo / "depth_maps" / f"{image.name}.geometric.bin", fake_depth(width, height, seed))
            write_colmap_array(stereo / "normal_maps" / f"{image.name}.geometric.bin", normal)

    return patch_match_stereo


def test_colmap_array_round_trip(tmp_path: Path) -> None:
    """The test's writer and colmap_stereo's reader agree on COLMAP's layout (channels, rows, columns)."""
    rgb = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    write_colmap_array(tmp_path / "a.bin", rgb)
    assert np.array_equal(colmap_stereo.read_array(tmp_path / "a.bin"), rgb)


def test_view_colmap_skips_has_no_depth_and_the_rest_do(
    sparse_run: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model = pycolmap.Reconstruction(str(sparse_run["sparse"].dir / "sparse"))
    names = sorted(image.name for image in model.images.values())
    skipped = names[2]
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(pycolmap, "has_cuda", True, raising=False)
    monkeypatch.setattr(pycolmap, "patch_match_stereo", fake_patch_match({skipped}, calls))
    store = ArtefactStore(tmp_path / "ws", "fountain")
    params = sparse_run["cfg"].depth.model_copy(update={"backend": "auto", "max_size": 160})
    with caplog.at_level(logging.WARNING, logger="photoforge"):
        result = depth.STAGE.execute(
            store, DepthInputs(ingest=sparse_run["frames"], poses=sparse_run["sparse"]), params
        )

    assert calls and calls[0]["max_image_size"] == 160
    assert f"{skipped}: COLMAP PatchMatch wrote no depth map" in caplog.text
    metrics = result.metrics
    assert metrics["backend"] == "cuda" and metrics["device"] == "cuda"
    assert metrics["views"] == len(names) and metrics["usable_views"] == len(names) - 1
    assert metrics["unusable"] == [skipped]
    records = {r["name"]: r for r in json.loads((result.dir / DEPTH_JSON).read_text())["views"]}
    assert records[skipped]["usable"] is False and "map" not in records[skipped]
    assert [v.name for v in DepthViews.read(result.dir).usable] == [n for n in names if n != skipped]
    for seed, name in enumerate(names):
        if name == skipped:
            continue
        with np.load(result.dir / records[name]["map"]) as maps:
            expected = fake_depth(maps["depth"].shape[1], maps["depth"].shape[0], seed)
            assert max(maps["depth"].shape) == 160
            assert np.array_equal(maps["depth"], expected)  # COLMAP's map, as written
            assert maps["color"].shape[:2] == expected.shape
    manifest = read_manifest(result.dir)
    assert manifest["params"]["backend"] == "cuda"  # the backend that ran, not `auto`


def _inputs() -> dict[str, StageResult]:
    def result(stage: str) -> StageResult:
        return StageResult(stage=stage, key=f"{stage}-key", path=f"/ws/c/{stage}/k", metrics={}, reused=False,
                           seconds=1.0, compute_seconds=1.0)  # fmt: skip

    return {"ingest": result("ingest"), "poses": result("poses")}


def _key(backend: str) -> str:
    """The key Prefect's cache policy computes for the depth task (what `_already_cached` reads too)."""
    params = DepthParams(backend=backend)  # type: ignore[arg-type]
    _, key = depth_task.cache_policy.key_function({"store": ArtefactStore(Path("/ws"), "c"), "params": params,
                                                   **_inputs()})  # fmt: skip
    assert key == depth.STAGE.key(DepthInputs(**_inputs()), params)  # execute's key: the same
    return key


def test_key_names_the_backend_that_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GPU_DEPLOYMENT, raising=False)
    monkeypatch.setattr(pycolmap, "has_cuda", False, raising=False)
    assert _key("auto") == _key("cpu") != _key("cuda")
    monkeypatch.setattr(pycolmap, "has_cuda", True, raising=False)
    assert _key("auto") == _key("cuda") != _key("cpu")


def test_gpu_pool_does_not_take_a_cpu_result_for_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU orchestrator with a GPU pool: `auto` keys as `cuda`, here and on the GPU worker."""
    monkeypatch.setattr(pycolmap, "has_cuda", False, raising=False)
    store = ArtefactStore(tmp_path / "ws", "c")
    kwargs = {"store": store, **_inputs(), "params": DepthParams(backend="auto")}
    # a CPU depth result already on disk, from an earlier run of `auto` on this CPU machine
    measured = DepthMetrics(backend="cpu", device="cpu", views=2, usable_views=2, usable_fraction=1.0,
                            mean_valid_fraction=0.5, seconds_per_view=1.0, unusable=[])  # fmt: skip
    cpu = depth.STAGE.execute_with(store, DepthInputs(**_inputs()), kwargs["params"], lambda out: measured)
    monkeypatch.delenv(GPU_DEPLOYMENT, raising=False)
    assert _already_cached(depth_task, kwargs)  # without a pool, `auto` here is that CPU result

    monkeypatch.setenv(GPU_DEPLOYMENT, "gpu-stage/gpu")
    sent: list[dict[str, Any]] = []

    def run_on_gpu_pool(deployment: str, task: Any, task_kwargs: dict[str, Any]) -> tuple[StageResult, bool]:
        sent.append(task_kwargs)
        _, key = task.cache_policy.key_function(task_kwargs)
        return StageResult(stage="depth", key=key, path=str(store.stage_dir("depth", key)), metrics={"backend": "cuda"},
                           reused=False, seconds=1.0, compute_seconds=1.0), False  # fmt: skip

    monkeypatch.setattr("flows.reconstruct.run_on_gpu_pool", run_on_gpu_pool)
    run = PipelineRun(store, RunSummary(capture="c", preset="standard", workspace=str(store.root)), None)
    result = run.stage(depth_task, **_inputs(), params=kwargs["params"])

    assert len(sent) == 1, "the CPU result was taken for the GPU pool's"
    assert result.key == _key("cuda") != cpu.key
    assert run.summary.stages[-1].ran_on == "gpu-stage/gpu"
    # the GPU worker decodes the deployment parameters and keys them: the same key, with its CUDA pycolmap
    monkeypatch.setattr(pycolmap, "has_cuda", True, raising=False)
    decoded = decode(depth_task, json.loads(json.dumps(encode(sent[0]))))
    assert decoded["params"].backend == "cuda"
    assert depth_task.cache_policy.key_function({"store": store, **decoded})[1] == result.key
