"""Stage report: report.json (every metric) and a self-contained report.html a person reads at a glance.

The verdict lists checks with the stage to blame when one fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from photoforge.report_html import image_data_uri, render
from photoforge.stage import Progress, Stage, StageParams, StageResult, no_progress
from photoforge.stages.bake import ALBEDO_PNG, BAKE_JSON, COVERAGE_PNG
from photoforge.stages.depth import DEPTH_JSON
from photoforge.stages.ingest import FRAMES_JSON
from photoforge.stages.turntable import POSTER, SHEET
from photoforge.store import ArtefactStore, read_manifest, write_json

STAGE = Stage("report", version="1", libraries=("opencv-python-headless",))
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
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
        "mesh": _pick(metrics["mesh"], "faces", "vertices", "watertight", "manifold", "boundary_edges", "components"),
        "texture": {
            **_pick(metrics["bake"], "texture_size", "coverage", "views_used", "views_left_out"),
            **_pick(metrics["export"], "files", "units"),
            "gltf_validator_errors": metrics["export"].get("gltf_validator", {}).get("errors"),
        },
        "evaluation": bake["evaluation"],
        "left_out": _pick(metrics["bake"], "psnr_left_out", "ssim_left_out", "psnr_used", "ssim_used"),
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
    report["checks"] = _checks(report, params)
    failed = [c for c in report["checks"] if not c["passed"]]
    report["verdict"] = (
        "Good asset: every check passed."
        if not failed
        else (f"{len(failed)} check(s) failed: start with stage {failed[0]['stage']}.")
    )
    progress(1, 2, "images")
    images = _images(dirs, depth_views, bake, metrics.get("splat", {}), params)
    write_json(out / REPORT_JSON, report)
    (out / REPORT_HTML).write_text(render(report, images))
    progress(2, 2, report["verdict"])
    return {"checks_failed": len(failed), "verdict": report["verdict"], "summary": report["verdict"]}


def _pick(source: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: source.get(k) for k in keys}


def _checks(r: dict[str, Any], p: ReportParams) -> list[dict[str, Any]]:
    def check(name: str, stage: str, value: Any, passed: bool) -> dict[str, Any]:
        return {"name": name, "stage": stage, "value": value, "passed": bool(passed)}

    psnr = r["left_out"].get("psnr_left_out")
    return [
        check("registered fraction", "poses", r["poses"]["registered_fraction"],
              r["poses"]["registered_fraction"] >= p.min_registered),
        check("mean reprojection error (px)", "poses", r["poses"]["mean_reprojection_error_px"],
              r["poses"]["mean_reprojection_error_px"] <= p.max_reprojection_px),
        check("views with usable depth", "depth", r["depth"]["usable_fraction"], r["depth"]["usable_fraction"] >= 0.8),
        check("mesh is manifold", "mesh", r["mesh"]["manifold"], r["mesh"]["manifold"]),
        check("texture coverage", "bake", r["texture"]["coverage"], (r["texture"]["coverage"] or 0) >= p.min_coverage),
        check("left-out PSNR (dB)", "bake", psnr, psnr is None or psnr >= p.min_psnr_left_out),
        check("glTF-Validator errors", "export", r["texture"]["gltf_validator_errors"],
              r["texture"]["gltf_validator_errors"] in (0, None)),
    ]  # fmt: skip


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
