"""Stage report: report.json (every metric) and a self-contained report.html a person reads at a glance.

The verdict lists checks with the stage to blame when one fails. A check with nothing to measure
(no left-out view, the glTF-Validator not run) is "not checked", with why: a verdict never passes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from photoforge.report.html import image_data_uri, render
from photoforge.stage import Progress, Stage, StageParams, StageResult, no_progress
from photoforge.stages.bake import ALBEDO_PNG, BAKE_JSON, COVERAGE_PNG, MIN_VIEW_COVERAGE
from photoforge.stages.depth import DEPTH_JSON
from photoforge.stages.ingest import FRAMES_JSON
from photoforge.stages.turntable import POSTER, SHEET
from photoforge.store import ArtefactStore, read_manifest, write_json

STAGE = Stage("report", version="2", libraries=("opencv-python-headless",))
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
PASSED, FAILED, NOT_CHECKED = "passed", "failed", "not checked"
ORDER = ("ingest", "poses", "depth", "fusion", "splat", "mesh", "uv", "bake", "export", "turntable")


class ReportParams(StageParams):
    depth_previews: int = Field(6, ge=0, description="depth previews shown")
    min_registered: float = Field(0.9, ge=0, le=1, description="check: registered fraction at least")
    max_reprojection_px: float = Field(1.5, gt=0, description="check: mean reprojection error at most")
    min_psnr_left_out: float = Field(20.0, description="check: left-out PSNR at least (dB)")
    min_coverage: float = Field(0.7, ge=0, le=1, description="check: texture coverage at least")


def key_inputs(results: dict[str, StageResult], preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    return {"stages": {name: r.key for name, r in results.items()}, "preset": preset, "overrides": overrides}


def execute(
    store: ArtefactStore,
    capture: str,
    results: dict[str, StageResult],
    preset: str,
    overrides: dict[str, Any],
    params: ReportParams,
    progress: Progress = no_progress,
) -> StageResult:
    dirs = {name: r.dir for name, r in results.items()}
    return STAGE.execute(
        store,
        params,
        key_inputs(results, preset, overrides),
        lambda out: run(capture, dirs, preset, overrides, out, params, progress),
    )


def run(
    capture: str,
    dirs: dict[str, Path],
    preset: str,
    overrides: dict[str, Any],
    out: Path,
    params: ReportParams,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    manifests = {name: read_manifest(d) for name, d in dirs.items()}
    metrics = {name: m.get("metrics", {}) for name, m in manifests.items()}
    frames = json.loads((dirs["ingest"] / FRAMES_JSON).read_text())
    bake = json.loads((dirs["bake"] / BAKE_JSON).read_text())
    depth_views = json.loads((dirs["depth"] / DEPTH_JSON).read_text())["views"]
    versions: dict[str, str] = {}
    for manifest in manifests.values():
        versions.update(manifest.get("libraries", {}))
    versions["photoforge"] = next(iter(manifests.values())).get("photoforge", "")
    validator = metrics["export"].get("gltf_validator", {})
    report: dict[str, Any] = {
        "capture": capture,
        "preset": preset,
        "overrides": overrides,
        "inputs": {
            "photos": metrics["ingest"].get("photos"),
            "videos": metrics["ingest"].get("videos"),
            "kept": metrics["ingest"].get("frames_kept"),
            "rejected": [{"source": f["source"], "reason": f["reason"]} for f in frames["frames"] if not f["kept"]],
            "skipped": frames.get("skipped", []),
        },
        "poses": _pick(metrics["poses"], "registered", "total", "registered_fraction", "mean_reprojection_error_px",
                       "mean_track_length", "points", "matcher", "mapper", "intrinsics"),
        "depth": _pick(metrics["depth"], "backend", "device", "views", "usable_views", "usable_fraction",
                       "mean_valid_fraction", "seconds_per_view"),
        "fusion": _pick(metrics["fusion"], "points", "points_before_cleanup", "views_contributing"),
        "mesh": _pick(metrics["mesh"], "faces", "vertices", "watertight", "watertight_requested", "manifold",
                      "boundary_edges", "components"),
        "texture": {
            **_pick(metrics["bake"], "texture_size", "coverage", "views_used", "views_left_out"),
            **_pick(metrics["export"], "files", "units"),
            "gltf_validator_errors": validator.get("errors"),
            **({} if validator.get("available") else {"gltf_validator_not_run": validator.get("reason", "unknown")}),
        },
        "evaluation": bake["evaluation"],
        "left_out": _pick(metrics["bake"], "psnr_left_out", "ssim_left_out", "psnr_used", "ssim_used",
                          "left_out_min_coverage", "left_out_uncovered"),
        "turntable": _pick(metrics["turntable"], "frames", "fps", "size", "render_fps", "object_coverage_mean"),
        **({"splat": _pick(metrics["splat"], "psnr", "ssim", "psnr_initial", "ssim_initial", "gaussians", "steps",
                           "stopped_by", "train_seconds", "steps_per_s", "peak_gpu_memory_gb", "device", "strategy",
                           "notes")} if "splat" in metrics else {}),
        "stages": [
            {"stage": s, "key": manifests[s]["key"], "compute_seconds": float(manifests[s].get("seconds", 0))}
            for s in ORDER if s in manifests
        ],
        "versions": versions,
    }  # fmt: skip
    report["checks"] = checks(report, params)
    report["verdict"] = verdict(report["checks"])
    failed = [c for c in report["checks"] if c["status"] == FAILED]
    unchecked = [c for c in report["checks"] if c["status"] == NOT_CHECKED]
    progress(1, 2, "images")
    images = _images(dirs, depth_views, bake, metrics.get("splat", {}), params)
    write_json(out / REPORT_JSON, report)
    (out / REPORT_HTML).write_text(render(report, images))
    progress(2, 2, report["verdict"])
    return {
        "checks_failed": len(failed),
        "checks_not_checked": len(unchecked),
        "verdict": report["verdict"],
        "summary": report["verdict"],
    }


def _pick(source: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: source.get(k) for k in keys}


def verdict(rows: list[dict[str, Any]]) -> str:
    """One line: "Good asset" only when every check ran and passed."""
    failed = [c for c in rows if c["status"] == FAILED]
    unchecked = [c for c in rows if c["status"] == NOT_CHECKED]
    not_checked = f"{len(unchecked)} not checked: " + "; ".join(f"{c['name']} ({c['reason']})" for c in unchecked)
    if failed:
        line = f"{len(failed)} check(s) failed: start with stage {failed[0]['stage']}."
        return f"{line} {not_checked}." if unchecked else line
    if unchecked:
        return f"No check failed; {not_checked}."
    return "Good asset: every check passed."


def check(name: str, stage: str, value: Any, passed: bool | None, reason: str = "") -> dict[str, Any]:
    """A check's row: status passed, failed or (passed None) not checked; `passed` is true only when it passed."""
    status = NOT_CHECKED if passed is None else (PASSED if passed else FAILED)
    return {"name": name, "stage": stage, "value": value, "status": status, "passed": status == PASSED,
            "reason": reason}  # fmt: skip


def _measured(
    name: str, stage: str, value: float | None, ok: Callable[[float], bool], unmeasured: str, failed: str = ""
) -> dict[str, Any]:
    """A check of a number: not checked (with `unmeasured`) when the stage has none, else ok(value)."""
    if value is None:
        return check(name, stage, value, None, unmeasured)
    passed = bool(ok(value))
    return check(name, stage, value, passed, "" if passed else failed)


def checks(r: dict[str, Any], p: ReportParams) -> list[dict[str, Any]]:
    """The verdict's checks on report.json's sections, each naming the stage to blame."""
    poses, depth, mesh, texture, left_out = r["poses"], r["depth"], r["mesh"], r["texture"], r["left_out"]
    none = "the stage recorded no value"
    rows = [
        _measured("registered fraction", "poses", poses["registered_fraction"], lambda v: v >= p.min_registered, none),
        _measured("mean reprojection error (px)", "poses", poses["mean_reprojection_error_px"],
                  lambda v: v <= p.max_reprojection_px, none),
        _measured("views with usable depth", "depth", depth["usable_fraction"], lambda v: v >= 0.8, none),
        check("mesh is manifold", "mesh", mesh["manifold"], bool(mesh["manifold"])),
    ]  # fmt: skip
    if mesh.get("watertight_requested"):
        rows.append(
            check("watertight as asked", "mesh", mesh["watertight"], bool(mesh["watertight"]),
                  "" if mesh["watertight"] else f"mesh.watertight is true but {mesh['boundary_edges']} boundary "
                  "edges are left: holes the clean-up could not close")
        )  # fmt: skip
    unscored = "no left-out view could be scored (bake.leave_out_every is 0, or fewer than 3 views)"
    uncovered = left_out.get("left_out_uncovered") or []
    validator = texture["gltf_validator_errors"]
    rows += [
        check("texture coverage", "bake", texture["coverage"], (texture["coverage"] or 0) >= p.min_coverage),
        _measured("left-out PSNR (dB)", "bake", left_out.get("psnr_left_out"), lambda v: v >= p.min_psnr_left_out,
                  unscored),
        _measured("left-out views covered by the mesh", "mesh", left_out.get("left_out_min_coverage"),
                  lambda v: not uncovered, unscored,
                  f"the mesh covers under {MIN_VIEW_COVERAGE:.0%} of what {', '.join(uncovered)} saw"),
        _measured("glTF-Validator errors", "export", validator, lambda v: v == 0,
                  f"validator not run: {texture.get('gltf_validator_not_run', 'no result')}"),
    ]  # fmt: skip
    return rows


def _images(
    dirs: dict[str, Path],
    depth_views: list[dict[str, Any]],
    bake: dict[str, Any],
    splat: dict[str, Any],
    params: ReportParams,
) -> dict[str, list[tuple[str, str]]]:
    """The report's pictures per section; `splat` is the splat stage's metrics ({} when it did not run)."""
    with_preview = [v for v in depth_views if v.get("preview")]
    step = max(1, len(with_preview) // max(params.depth_previews, 1))
    depth = [
        (image_data_uri(dirs["depth"] / v["preview"], 320), v["name"])
        for v in with_preview[::step][: params.depth_previews]
    ]
    evaluation = [
        (image_data_uri(dirs["bake"] / e["side_by_side"]), f"{e['name']} ({'left out' if e['left_out'] else 'used'}): "
         f"photo | render, PSNR {e['psnr']} dB")
        for e in bake["evaluation"]
    ]  # fmt: skip
    return {
        "depth": depth,
        "splat": [
            (image_data_uri(dirs["splat"] / c), f"held-out view: splat render | photo ({Path(c).stem})")
            for c in splat.get("comparisons", [])
        ],
        "texture": [
            (image_data_uri(dirs["bake"] / ALBEDO_PNG, 480), "albedo texture"),
            (image_data_uri(dirs["bake"] / COVERAGE_PNG, 480), "coverage (white: seen, grey: filled)"),
        ],
        "evaluation": evaluation,
        "turntable": [
            (image_data_uri(dirs["turntable"] / POSTER), "poster"),
            (image_data_uri(dirs["turntable"] / SHEET), "contact sheet"),
        ],
    }
