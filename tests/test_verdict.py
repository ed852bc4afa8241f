"""The report's verdict: a check that could not be made is "not checked" (with why), and never passes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from photoforge.layout import REPORT_HTML, REPORT_JSON
from photoforge.metrics import AssetMetrics, ReportMetrics, ScaleMetrics
from photoforge.qa import gltf_validation
from photoforge.report.checks import checks, verdict
from photoforge.stage import StageResult, no_progress
from photoforge.stages import export, report, turntable


@pytest.fixture(scope="module")
def stage_results(asset_run: dict) -> dict[str, StageResult]:
    """Every stage's artefact of the synthetic asset, with a small turntable (the same as test_turntable_report's)."""
    params = asset_run["cfg"].turntable.model_copy(update={"frames": 24, "width": 320, "height": 240})
    inputs = turntable.TurntableInputs(uv=asset_run["uv"], bake=asset_run["bake"])
    video = turntable.STAGE.execute(asset_run["store"], inputs, params)
    names = {"ingest": "frames", "poses": "sparse", "depth": "depth", "fusion": "fusion", "mesh": "mesh", "uv": "uv"}
    results = {stage: asset_run[key] for stage, key in names.items()}
    results |= {stage: asset_run[stage] for stage in ("scale", "asset") if stage in asset_run}  # when the run has them
    return results | {"bake": asset_run["bake"], "export": asset_run["export"], "turntable": video}


def _report(asset_run: dict, results: dict[str, StageResult], out: Path) -> tuple[ReportMetrics, dict, str]:
    out.mkdir()
    inputs = report.ReportInputs(capture="synthetic", results=results, preset="standard", overrides={})
    metrics = report.run(inputs, out=out, params=asset_run["cfg"].report, progress=no_progress)
    return metrics, json.loads((out / REPORT_JSON).read_text()), (out / REPORT_HTML).read_text()


def _row(data: dict, name: str) -> dict:
    (row,) = [c for c in data["checks"] if c["name"] == name]
    return row


def test_validator_not_run_is_not_checked_and_not_good(
    asset_run: dict, stage_results: dict[str, StageResult], tmp_path: Path
) -> None:
    params = asset_run["cfg"].export.model_copy(update={"validate_gltf": False, "usdz": False})
    inputs = export.ExportInputs(mesh=asset_run["mesh"], uv=asset_run["uv"], bake=asset_run["bake"])
    unvalidated = export.STAGE.execute(asset_run["store"], inputs, params)
    assert "NOT validated" in unvalidated.metrics["summary"]
    metrics, data, page = _report(asset_run, stage_results | {"export": unvalidated}, tmp_path / "report")
    row = _row(data, "glTF-Validator errors")
    assert row["status"] == "not checked" and row["passed"] is False and row["value"] is None
    assert row["reason"] == "validator not run: export.validate_gltf is false"
    assert [c["status"] for c in data["checks"]].count("not checked") == metrics.checks_not_checked == 1
    assert metrics.checks_failed == 0
    assert data["verdict"] == (
        "No check failed; 1 not checked: glTF-Validator errors (validator not run: export.validate_gltf is false)."
    )
    assert "Good asset" not in page
    assert "data-status='not checked'" in page and "NOT CHECKED: validator not run" in page


def test_every_check_made_and_passed_is_a_good_asset(
    asset_run: dict, stage_results: dict[str, StageResult], tmp_path: Path
) -> None:
    if not asset_run["export"].metrics["gltf_validator"]["available"]:
        pytest.skip("node or the glTF-Validator is not installed (scripts/setup.sh installs them)")
    metrics, data, page = _report(asset_run, stage_results, tmp_path / "report")
    assert {c["status"] for c in data["checks"]} == {"passed"} and all(c["passed"] for c in data["checks"])
    assert data["verdict"] == "Good asset: every check passed." and metrics.checks_not_checked == 0
    assert "left-out views covered by the mesh" in {c["name"] for c in data["checks"]}
    assert "watertight as asked" not in {c["name"] for c in data["checks"]}  # not asked for
    assert data["left_out"]["left_out_min_coverage"] > 0.8 and data["left_out"]["left_out_uncovered"] == []
    assert "Good asset: every check passed." in page and "NOT CHECKED" not in page


@pytest.fixture(scope="module")
def good(asset_run: dict, stage_results: dict[str, StageResult], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """report.json of the synthetic asset, with the validator's result set to 0 errors where node is missing."""
    _, data, _ = _report(asset_run, stage_results, tmp_path_factory.mktemp("verdict") / "report")
    data["texture"]["gltf_validator_errors"] = 0
    return data


def test_no_left_out_view_is_not_checked(good: dict, asset_run: dict) -> None:
    data = copy.deepcopy(good)
    data["left_out"] |= {"psnr_left_out": None, "left_out_min_coverage": None, "left_out_uncovered": []}
    rows = checks(data, asset_run["cfg"].report)
    for name in ("left-out PSNR (dB)", "left-out views covered by the mesh"):
        row = _row({"checks": rows}, name)
        assert row["status"] == "not checked" and row["passed"] is False
        assert row["reason"].startswith("no left-out view could be scored")
    assert verdict(rows).startswith("No check failed; 2 not checked: left-out PSNR (dB) (no left-out view")


def test_uncovered_left_out_view_and_open_watertight_mesh_fail(good: dict, asset_run: dict) -> None:
    data = copy.deepcopy(good)
    data["left_out"] |= {"left_out_min_coverage": 0.12, "left_out_uncovered": ["images/view_004.png.jpg"]}
    data["mesh"] |= {"watertight_requested": True, "watertight": False, "boundary_edges": 37}
    rows = checks(data, asset_run["cfg"].report)
    covered = _row({"checks": rows}, "left-out views covered by the mesh")
    assert covered["status"] == "failed" and covered["value"] == 0.12
    assert covered["reason"] == "the mesh covers under 50% of what images/view_004.png.jpg saw"
    watertight = _row({"checks": rows}, "watertight as asked")
    assert watertight["status"] == "failed" and "37 boundary edges" in watertight["reason"]
    assert verdict(rows) == "2 check(s) failed: start with stage mesh."
    data["texture"]["gltf_validator_errors"] = None
    data["texture"]["gltf_validator_not_run"] = "node not found on PATH (scripts/setup.sh installs it)"
    assert verdict(checks(data, asset_run["cfg"].report)) == (
        "2 check(s) failed: start with stage mesh. 1 not checked: glTF-Validator errors "
        "(validator not run: node not found on PATH (scripts/setup.sh installs it))."
    )


def test_validator_without_node_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no node on it
    result = gltf_validation.validate(tmp_path / "asset.glb")
    assert result == {"available": False, "reason": "node not found on PATH (scripts/setup.sh installs it)"}


# --- isolation and scale: checks on hand-built report.json sections ----------------------------------


def _passing() -> dict:
    """The sections checks() reads, every check passing: a capture without scale or asset stage."""
    return {
        "poses": {"registered_fraction": 1.0, "mean_reprojection_error_px": 0.6},
        "depth": {"usable_fraction": 1.0},
        "mesh": {"manifold": True, "watertight": True, "watertight_requested": False, "boundary_edges": 0,
                 "kind": "object", "units": "m", "support_area_share": 0.01},
        "texture": {"coverage": 0.95, "gltf_validator_errors": 0},
        "left_out": {"psnr_left_out": 27.0, "left_out_min_coverage": 0.95, "left_out_uncovered": []},
    }  # fmt: skip


def _asset(kind: str = "object", support: str | None = "floor") -> dict:
    metrics = AssetMetrics(
        kind=kind, kind_requested="auto", kind_evidence={"convergence": 0.9}, support=support, points_in=1000,
        points_kept=700, removed={"outside_region": 200, "support": 90, "floaters": 10}, removed_percent=30.0,
        crop=None, crop_source=None, units="m",
    )  # fmt: skip
    return metrics.model_dump(mode="json")


def _scale(source: str = "markers", spread: float | None = 0.8) -> dict:
    metres = source == "markers"
    metrics = ScaleMetrics(
        source=source, units="m" if metres else "sfm", marker_size_m=0.05 if metres else None,
        dictionary="4x4_50" if metres else None, markers_found=6 if metres else 0,
        views_with_markers=18 if metres else 0, metres_per_unit=0.31 if metres else None, spread_percent=spread,
    )  # fmt: skip
    return metrics.model_dump(mode="json")


DEFAULTS = report.ReportParams.model_validate({})  # the standard thresholds


def _rows(data: dict, stage: str) -> list[dict]:
    return [c for c in checks(data, DEFAULTS) if c["stage"] == stage]


def test_hand_built_report_passes() -> None:
    data = _passing() | {"asset": _asset(), "scale": _scale()}
    rows = checks(data, DEFAULTS)
    assert verdict(rows) == "Good asset: every check passed."
    names = [c["name"] for c in rows]
    assert names.index("markers agree on the scale (%)") < names.index("views with usable depth")
    assert names.index("support left in the object (share of its surface)") < names.index("mesh is manifold")


def test_object_still_holding_its_support_is_not_a_good_asset() -> None:
    data = _passing() | {"asset": _asset()}
    data["mesh"]["support_area_share"] = 0.12
    (row,) = _rows(data, "asset")
    assert row["status"] == "failed" and row["value"] == 0.12
    assert (
        row["reason"]
        == "the asset still holds 12% of the ground or table: add masks/ beside the photos or set asset.crop"
    )
    assert verdict(checks(data, DEFAULTS)) == "1 check(s) failed: start with stage asset."
    data["asset"] = _asset(support="wall")
    assert "holds 12% of the wall:" in _rows(data, "asset")[0]["reason"]
    data["mesh"]["support_area_share"] = 0.05  # at the threshold: passes
    assert [c["status"] for c in _rows(data, "asset")] == ["passed"]
    data["mesh"]["support_area_share"] = None
    (row,) = _rows(data, "asset")
    assert row["status"] == "not checked" and row["reason"] == "the mesh stage measured no support share"


def test_markers_that_disagree_are_not_a_good_asset() -> None:
    data = _passing() | {"asset": _asset(), "scale": _scale(spread=3.4)}
    data["mesh"]["support_area_share"] = 0.3  # fails too, but the scale comes first in the pipeline
    (row,) = _rows(data, "scale")
    assert row["status"] == "failed" and row["value"] == 3.4
    assert (
        row["reason"] == "the markers disagree by 3.4%: check scale.marker_size and that the markers are printed flat"
    )
    assert verdict(checks(data, DEFAULTS)) == "2 check(s) failed: start with stage scale."
    data["scale"] = _scale(spread=None)
    (row,) = _rows(data, "scale")
    assert row["status"] == "not checked" and row["reason"] == "the scale stage recorded no spread"


def test_scene_and_sfm_units_have_no_isolation_or_scale_check() -> None:
    """A scene keeps its ground (no isolation check); SfM units were not asked to be metres (no scale check)."""
    data = _passing() | {"asset": _asset(kind="scene", support=None), "scale": _scale(source="none", spread=None)}
    data["mesh"] |= {"kind": "scene", "support_area_share": 0.6}
    rows = checks(data, DEFAULTS)
    assert not _rows(data, "asset") and not _rows(data, "scale")
    assert verdict(rows) == "Good asset: every check passed."
    data["asset"] = _asset(support=None)  # an object with no support found: no plane to measure against
    assert not _rows(data, "asset")
    assert [c["name"] for c in rows] == [c["name"] for c in checks(_passing(), DEFAULTS)]
