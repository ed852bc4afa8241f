"""The report's verdict: a check that could not be made is "not checked" (with why), and never passes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from photoforge.layout import REPORT_HTML, REPORT_JSON
from photoforge.metrics import ReportMetrics
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
