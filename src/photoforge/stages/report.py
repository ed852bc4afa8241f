"""Stage report: report.json (every metric) and a self-contained report.html a person reads at a glance.

It reads every stage's metrics as that stage's typed model (photoforge.metrics): a metric renamed
there fails here, loudly. The verdict's checks (photoforge.report.checks) name the stage to blame.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Self

from pydantic import Field

from photoforge.errors import StageError
from photoforge.layout import (
    ALBEDO_PNG,
    ASSET_GLB,
    ASSET_USDZ,
    ASSET_WEB_GLB,
    BAKE_JSON,
    COVERAGE_PNG,
    DETAIL_PNG,
    NORMAL_PNG,
    OCCLUSION_PNG,
    POSTER,
    REPORT_HTML,
    REPORT_JSON,
    SHEET,
    SPLATS_PLY,
    STAGE_ORDER,
    DepthViews,
    Frames,
    read_json,
    world_to_asset,
)
from photoforge.metrics import (
    AssetMetrics,
    BakeMetrics,
    DepthMetrics,
    ExportMetrics,
    FusionMetrics,
    IngestMetrics,
    MeshMetrics,
    PosesMetrics,
    ReportMetrics,
    ScaleMetrics,
    SplatMetrics,
    TurntableMetrics,
)
from photoforge.report import viewer
from photoforge.report.checks import FAILED, NOT_CHECKED, checks, verdict
from photoforge.report.html import image_data_uri, render
from photoforge.report.isolation_view import ELEVATIONS_DEG, ISOLATION_PNG, write_isolation_picture
from photoforge.report.viewer import ViewerConfig
from photoforge.stage import Progress, Stage, StageInputs, StageMetrics, StageParams, StageResult
from photoforge.store import read_manifest, write_json

log = logging.getLogger("photoforge")

OPTIONAL = ("scale", "asset", "splat")  # reported when the run made them (runs before scale and asset had none)
NEEDED = tuple(s for s in STAGE_ORDER if s not in (*OPTIONAL, "report"))


MAP_CAPTIONS = (
    (NORMAL_PNG, "normal map (tangent space, from the high-res surface)"),
    (OCCLUSION_PNG, "ambient occlusion (from the high-res surface)"),
)


class ReportParams(StageParams):
    depth_previews: int = Field(6, ge=0, description="depth previews shown")
    min_registered: float = Field(0.9, ge=0, le=1, description="check: registered fraction at least")
    max_reprojection_px: float = Field(1.5, gt=0, description="check: mean reprojection error at most")
    min_psnr_left_out: float = Field(20.0, description="check: left-out PSNR at least (dB)")
    min_coverage: float = Field(0.7, ge=0, le=1, description="check: texture coverage at least")
    max_support_share: float = Field(
        0.05, ge=0, le=1, description="check, objects: share of the mesh's surface on the support plane at most"
    )
    max_scale_spread_percent: float = Field(2.0, gt=0, description="check: the markers' scales disagree at most (%)")
    viewer: bool = Field(True, description="an interactive 3D viewer in report.html (needs scripts/setup.sh's bundle)")
    viewer_max_splats: int = Field(
        300_000, ge=1, description="splats in the viewer's copy at most (the most opaque; splats.ply keeps all)"
    )
    viewer_build: str | None = Field(
        None, description="set by the stage, not a setting: the viewer bundle's hash, so a new viewer re-runs"
    )


class ReportInputs(StageInputs):
    capture: str = Field(exclude=True)  # names the capture in the report; ingest keys its content
    results: dict[str, StageResult]  # stage name -> its artefact
    preset: str
    overrides: dict[str, Any]

    def used(self, params: ReportParams) -> Self:
        missing = [name for name in NEEDED if name not in self.results]
        if missing:
            raise StageError("report", f"no artefact of stage(s) {', '.join(missing)} to report on")
        return self


def run(inputs: ReportInputs, *, out: Path, params: ReportParams, progress: Progress) -> ReportMetrics:
    report = _contents(inputs)
    report["viewer"] = _viewer(inputs.results, out, params).model_dump(mode="json")
    report["checks"] = checks(report, params)
    report["verdict"] = verdict(report["checks"])
    progress(1, 2, "images")
    images = _images(inputs.results, report["evaluation"], params) | _isolation_images(inputs.results, out)
    write_json(out / REPORT_JSON, report)
    (out / REPORT_HTML).write_text(render(report, images))
    progress(2, 2, report["verdict"])
    return ReportMetrics(
        checks_failed=sum(c["status"] == FAILED for c in report["checks"]),
        checks_not_checked=sum(c["status"] == NOT_CHECKED for c in report["checks"]),
        verdict=report["verdict"],
        summary=report["verdict"],
    )


def _contents(inputs: ReportInputs) -> dict[str, Any]:
    """report.json without its checks: every stage's metrics, read as that stage's model."""
    results = inputs.results
    ingest = results["ingest"].metrics_as(IngestMetrics)
    bake = results["bake"].metrics_as(BakeMetrics)
    export = results["export"].metrics_as(ExportMetrics)
    validator = export.gltf_validator
    frames = Frames.read(results["ingest"].dir)
    manifests = {name: read_manifest(r.dir) for name, r in results.items()}
    versions: dict[str, str] = {}
    for manifest in manifests.values():
        versions.update(manifest.get("libraries", {}))
    versions["photoforge"] = next(iter(manifests.values())).get("photoforge", "")
    return {
        "capture": inputs.capture,
        "preset": inputs.preset,
        "overrides": inputs.overrides,
        "inputs": {
            "photos": ingest.photos,
            "videos": ingest.videos,
            "kept": ingest.frames_kept,
            "rejected": [{"source": f.source, "reason": f.reason} for f in frames.rejected],
            "skipped": list(frames.skipped),
        },
        "poses": _pick(results["poses"].metrics_as(PosesMetrics), "registered", "total", "registered_fraction",
                       "mean_reprojection_error_px", "mean_track_length", "points", "matcher", "mapper", "intrinsics"),
        **({"scale": _pick(results["scale"].metrics_as(ScaleMetrics), "source", "units", "marker_size_m",
                           "dictionary", "markers_found", "views_with_markers", "metres_per_unit",
                           "spread_percent")} if "scale" in results else {}),
        "depth": _pick(results["depth"].metrics_as(DepthMetrics), "backend", "device", "views", "usable_views",
                       "usable_fraction", "mean_valid_fraction", "seconds_per_view"),
        "fusion": _pick(results["fusion"].metrics_as(FusionMetrics), "points", "points_before_cleanup",
                        "views_contributing"),
        **({"asset": _pick(results["asset"].metrics_as(AssetMetrics), "kind", "kind_requested", "kind_evidence",
                           "support", "points_in", "points_kept", "removed", "removed_percent", "crop",
                           "crop_source", "units")} if "asset" in results else {}),
        "mesh": _pick(results["mesh"].metrics_as(MeshMetrics), "faces", "vertices", "watertight",
                      "watertight_requested", "manifold", "boundary_edges", "components", "kind", "units",
                      "support_area_share"),
        "texture": {
            **_pick(bake, "texture_size", "coverage", "views_used", "views_left_out"),
            **_pick(export, "files", "units"),
            "gltf_validator_errors": _validator_errors(export),
            **({} if validator.available else {"gltf_validator_not_run": validator.reason or "unknown"}),
        },
        "levels": {
            "files": [level.model_dump(mode="json") for level in export.levels],
            "web": export.web.model_dump(mode="json") if export.web is not None else None,
        },
        "evaluation": read_json(results["bake"].dir / BAKE_JSON)["evaluation"],
        "left_out": _pick(bake, "psnr_left_out", "ssim_left_out", "psnr_used", "ssim_used", "left_out_min_coverage",
                          "left_out_uncovered"),
        "turntable": _pick(results["turntable"].metrics_as(TurntableMetrics), "frames", "fps", "size", "render_fps",
                           "object_coverage_mean", "object_height_min", "object_height_max"),
        **({"splat": _pick(results["splat"].metrics_as(SplatMetrics), "psnr", "ssim", "psnr_initial",
                           "ssim_initial", "gaussians", "steps", "stopped_by", "train_seconds", "steps_per_s",
                           "peak_gpu_memory_gb", "device", "strategy", "notes")} if "splat" in results else {}),
        "stages": [
            {"stage": s, "key": manifests[s]["key"], "compute_seconds": float(manifests[s].get("seconds", 0))}
            for s in STAGE_ORDER if s in manifests
        ],
        "versions": versions,
    }  # fmt: skip


def _viewer(results: dict[str, StageResult], out: Path, params: ReportParams) -> ViewerConfig:
    """The viewer's files under out/viewer/: the delivered GLBs (asset.glb first, its LODs, then the web GLB
    when the export wrote one), and the splats in the asset frame, thinned."""
    if not params.viewer:
        return ViewerConfig(available=False, reason=viewer.unavailable_reason() or "report.viewer is false")
    export_dir = results["export"].dir
    export = results["export"].metrics_as(ExportMetrics)
    levels = [
        viewer.ModelFile(export_dir / level.file, level.file,
                         f"{level.file}: {level.level}, {level.faces:,} faces, {level.texture_size} px maps")
        for level in export.levels
        if (export_dir / level.file).is_file()
    ]  # fmt: skip
    if export.web is not None and export.web.written and (export_dir / ASSET_WEB_GLB).is_file():
        label = f"{ASSET_WEB_GLB}: asset.glb compressed for the web ({(export.web.bytes or 0) / 1e6:.1f} MB)"
        levels.append(viewer.ModelFile(export_dir / ASSET_WEB_GLB, ASSET_WEB_GLB, label))
    if not levels and (export_dir / ASSET_GLB).is_file():
        levels.append(viewer.ModelFile(export_dir / ASSET_GLB, ASSET_GLB, ASSET_GLB))
    if not levels:  # before the splats are read: nothing to show them with
        return ViewerConfig(available=False, reason=f"no GLB in the export artefact {export_dir.name} to show")
    splats, note = None, None
    if "splat" in results and (results["splat"].dir / SPLATS_PLY).is_file():
        ply = results["splat"].dir / SPLATS_PLY
        try:
            splats = _viewer_splats(ply, mesh_dir=results["mesh"].dir, out=out, max_count=params.viewer_max_splats)
        except (StageError, ValueError) as exc:  # an optional view: the report goes on without it
            note = f"the splats are not in the viewer: {ply.name} could not be read or moved ({exc})"
            log.warning("report: %s", note)
    present = [name for name in (ASSET_USDZ, ASSET_GLB) if (export_dir / name).is_file()]
    config = viewer.write_viewer(
        out,
        levels=levels,
        splats=splats,
        usdz=ASSET_USDZ if ASSET_USDZ in present else None,
        download=ASSET_GLB if ASSET_GLB in present else None,
        note=note,
    )
    if splats is not None:
        splats.path.unlink()  # its bytes are in the viewer's data script now
    return config


def _viewer_splats(ply: Path, *, mesh_dir: Path, out: Path, max_count: int) -> viewer.ModelFile:
    """The splats as the viewer shows them: in the asset frame (where the GLBs are), at most max_count."""
    from photoforge.splatting.ply import read_splat_ply, write_splat_ply  # torch: only with splats
    from photoforge.splatting.transform import thinned, transformed

    shown = thinned(read_splat_ply(ply), max_count)
    scratch = out / f".{SPLATS_PLY}"
    write_splat_ply(scratch, transformed(shown, world_to_asset(mesh_dir)))
    return viewer.ModelFile(scratch, SPLATS_PLY, f"{SPLATS_PLY}: {len(shown):,} splats")


def _validator_errors(export: ExportMetrics) -> int | None:
    """glTF-Validator errors over every GLB the export wrote (asset.glb, LODs, web); None: asset.glb unchecked."""
    if not export.gltf_validator.available:
        return None
    checked = [level.gltf_validator for level in export.levels]
    checked += [export.web.gltf_validator] if export.web is not None and export.web.gltf_validator else []
    counted = [v.errors for v in checked if v.available and v.errors is not None]
    return sum(counted) if counted else export.gltf_validator.errors


def _pick(metrics: StageMetrics, *names: str) -> dict[str, Any]:
    """The named metrics (None: not measured); a name the stage's model lacks is a KeyError, never None."""
    values = metrics.model_dump(mode="json")
    return {name: values[name] for name in names}


def _images(
    results: dict[str, StageResult], evaluation: list[dict[str, Any]], params: ReportParams
) -> dict[str, list[tuple[str, str]]]:
    """The report's pictures per section (the splats' only when the run made them)."""
    previews = [(v.preview, v.name) for v in DepthViews.read(results["depth"].dir).views if v.preview]
    step = max(1, len(previews) // max(params.depth_previews, 1))
    bake, turntable = results["bake"].dir, results["turntable"].dir
    comparisons = results["splat"].metrics_as(SplatMetrics).comparisons if "splat" in results else []
    return {
        "depth": [
            (image_data_uri(results["depth"].dir / preview, 320), name)
            for preview, name in previews[::step][: params.depth_previews]
        ],
        "splat": [
            (image_data_uri(results["splat"].dir / c), f"held-out view: splat render | photo ({Path(c).stem})")
            for c in comparisons
        ],
        "texture": [
            (image_data_uri(bake / ALBEDO_PNG, 480), "albedo texture"),
            (image_data_uri(bake / COVERAGE_PNG, 480), "coverage (white: seen, grey: filled)"),
            *[(image_data_uri(bake / name, 480), caption) for name, caption in MAP_CAPTIONS if (bake / name).is_file()],
        ],
        "levels": [
            (
                image_data_uri(bake / DETAIL_PNG, 1440),
                "asset.glb's level, one light, one view: the high-res surface | "
                "the low-poly with its own normals | the low-poly with the normal map",
            )
        ]
        if (bake / DETAIL_PNG).is_file()
        else [],
        "evaluation": [
            (
                image_data_uri(bake / e["side_by_side"]),
                f"{e['name']} ({'left out' if e['left_out'] else 'used'}): photo | render, PSNR {e['psnr']} dB",
            )
            for e in evaluation
        ],
        "turntable": [
            (image_data_uri(turntable / POSTER), "poster"),
            (image_data_uri(turntable / SHEET), "contact sheet"),
        ],
    }


def _isolation_images(results: dict[str, StageResult], out: Path) -> dict[str, list[tuple[str, str]]]:
    """An object's isolation pictured (saved in the report's artefact too); none for a scene or an older run."""
    if "asset" not in results or not write_isolation_picture(results["asset"].dir, out / ISOLATION_PNG):
        return {}
    above = f"{ELEVATIONS_DEG[1]:.0f} degrees above"
    caption = f"kept (photo colours) and removed (red) points, asset frame: from the front | from {above}"
    return {"asset": [(image_data_uri(out / ISOLATION_PNG), caption)]}


def resolve(params: ReportParams) -> ReportParams:
    """The viewer only where its bundle is built, and the bundle's hash in the key: running scripts/setup.sh
    afterwards, or a new viewer, re-runs the report rather than reusing one without it."""
    build = viewer.bundle_digest() if params.viewer else None
    return params.model_copy(update={"viewer": build is not None, "viewer_build": build})


STAGE = Stage("report", inputs=ReportInputs, params=ReportParams, metrics=ReportMetrics, run=run, resolve=resolve)
