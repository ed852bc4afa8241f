"""Every stage's metrics as a typed model: written to its manifest, read back by the report.

Here rather than in the stage modules so the report reads them without importing another stage.
A metric renamed on one side fails validation on the other instead of reading as None.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from photoforge.stage import StageMetrics


# --- ingest ---
class IngestMetrics(StageMetrics):
    photos: int
    videos: int
    frames_considered: int
    frames_kept: int
    rejected_blurred: int
    rejected_duplicate: int
    rejected_corrupt: int
    skipped_files: int  # files in the capture that are neither photos nor videos
    calibration: str  # K.txt or exif-or-none


# --- poses ---
class PosesMetrics(StageMetrics):
    registered: int
    points: int
    cameras: int
    mean_reprojection_error_px: float
    mean_track_length: float
    mean_observations_per_image: float
    total: int  # frames given to structure from motion
    registered_fraction: float
    models: int  # models COLMAP built (the largest is kept)
    matcher: str  # the matcher that ran (auto resolved)
    mapper: str
    keypoints: int
    verified_pairs: int  # image pairs with inlier matches
    intrinsics: str  # fixed, partly fixed or refined
    left_out: list[str]  # frames that did not register


# --- scale ---
class ScaleMetrics(StageMetrics):
    source: str  # markers, object_height or none
    units: str  # m (a scale is known) or sfm
    marker_size_m: float | None  # the printed markers' side, black border included
    dictionary: str | None  # the ArUco dictionary the markers were found in
    markers_found: int  # distinct marker ids triangulated
    views_with_markers: int
    metres_per_unit: float | None
    spread_percent: float | None  # the scale's residual: spread of the per-side estimates, in %


# --- depth ---
class DepthMetrics(StageMetrics):
    backend: str  # the backend that ran: cpu or cuda
    device: str  # where it ran: cpu, cuda (torch's device name for the cpu backend)
    views: int
    usable_views: int
    usable_fraction: float
    mean_valid_fraction: float
    seconds_per_view: float
    unusable: list[str]  # views without usable depth


# --- fusion ---
class FusionMetrics(StageMetrics):
    points: int
    points_before_cleanup: int
    views: int
    views_contributing: int
    extent: list[float]  # size of the cloud along x, y, z


# --- asset ---
class AssetMetrics(StageMetrics):
    kind: str  # object or scene: what ran
    kind_requested: str  # auto, object or scene
    kind_evidence: dict[str, Any]  # why auto decided so (optical axes' convergence)
    support: str | None  # floor, wall or None: the plane the object stands on or hangs from
    points_in: int
    points_kept: int
    removed: dict[str, int]  # points removed, by reason: outside_region, support, floaters
    removed_percent: float  # of the fused cloud
    crop: list[float] | None  # the box used, asset frame [x0, y0, z0, x1, y1, z1] (None: no box)
    crop_source: str | None  # auto or asset.crop
    units: str  # m or sfm


# --- splat ---
class SplatMetrics(StageMetrics):
    device: str  # the backend that trained: cuda or cpu
    device_fallback: str | None  # why device auto fell back to the CPU path (None: it did not)
    strategy: str  # the densification that ran
    strategy_requested: str
    gaussians: int
    gaussians_initial: int
    steps: int
    stopped_by: str  # steps or time_limit
    train_seconds: float
    steps_per_s: float  # this process's steps (a resumed run's earlier ones left out)
    seconds_per_1k_steps: float | None
    peak_gpu_memory_gb: float
    peak_gpu_memory_reserved_gb: float
    psnr_initial: float
    ssim_initial: float
    psnr: float
    ssim: float
    psnr_gain: float
    evaluated_on: str
    train_views: int
    test_views: int
    resolution: list[int]  # [width, height] of the training images
    evaluations: list[dict[str, Any]]  # {step, psnr, ssim} over training
    schedule: dict[str, Any]
    resumed_from_step: int | None
    notes: list[str]
    comparisons: list[str]  # held-out render-vs-photo pictures, relative to the artefact


# --- mesh ---
class MeshMetrics(StageMetrics):
    faces: int
    vertices: int
    manifold: bool
    watertight: bool
    boundary_edges: int
    components: int
    watertight_requested: bool
    method: str  # poisson, tsdf or splats
    extent: list[float]  # size along the asset's x, y, z
    kind: str = "scene"  # object or scene (the asset stage's decision)
    units: str = "sfm"  # m when a scale is known
    support_area_share: float | None = None  # object: share of the surface lying on the support plane


# --- uv ---
class UVMetrics(StageMetrics):
    charts: int
    vertices: int
    faces: int
    utilization: float
    texture_size: int
    level: str = "raw"  # the detail level (geometry.detail_levels), "custom" for export.faces
    source_faces: int | None = None  # the mesh stage's faces it was decimated from
    decimated: bool = False


# --- bake ---
class DetailFidelity(BaseModel):
    """How close a low-poly (and its normal map) comes to the high-res surface it was decimated from."""

    model_config = ConfigDict(extra="forbid")

    normal_error_own_deg: float  # median angle: the low-poly's interpolated normals vs the high-res surface's
    normal_error_mapped_deg: float  # the same with the normal map applied
    hausdorff: float  # largest distance low-poly -> high-res, in the asset's units
    mean_distance: float


class BakeMetrics(StageMetrics):
    texture_size: int
    coverage: float  # share of the atlas's texels some view saw
    views_used: int
    views_left_out: int
    faces_unseen: int
    psnr_left_out: float | None  # None: no view left out
    ssim_left_out: float | None
    psnr_used: float | None
    ssim_used: float | None
    left_out_min_coverage: float | None
    left_out_uncovered: list[str]  # left-out views the mesh covers under qa.baked_views.MIN_VIEW_COVERAGE
    level: str = "raw"
    faces: int | None = None
    maps: list[str] = Field(
        default_factory=list
    )  # the texture files written: albedo, and normal / occlusion when baked
    detail: DetailFidelity | None = None  # a decimated level: how faithful it is to the high-res surface


# --- export ---
class GltfValidation(BaseModel):
    """The Khronos glTF-Validator's answer (photoforge.qa.gltf_validation): counts when it ran, else why not."""

    model_config = ConfigDict(extra="forbid")

    available: bool
    reason: str | None = None  # only when it did not run
    errors: int | None = None  # the rest only when it ran
    warnings: int | None = None
    messages: list[str] | None = None


class ExportedLevel(BaseModel):
    """One detail level as delivered: its GLB, what it holds and how it scores."""

    model_config = ConfigDict(extra="forbid")

    file: str  # asset.glb, asset_lod1.glb, ...
    level: str
    faces: int
    texture_size: int
    maps: list[str]
    bytes: int
    gltf_validator: GltfValidation
    psnr_left_out: float | None = None
    ssim_left_out: float | None = None
    detail: DetailFidelity | None = None


class WebGlbExport(BaseModel):
    """asset.web.glb: compressed for the web, or why it was not written."""

    model_config = ConfigDict(extra="forbid")

    written: bool
    reason: str | None = None
    bytes: int | None = None
    tool: str | None = None
    gltf_validator: GltfValidation | None = None  # the file as shipped (meshopt data unread by the validator)
    decoded_validator: GltfValidation | None = None  # its geometry decoded (gltfpack -noq), fully checked


class ExportMetrics(StageMetrics):
    files: dict[str, int]  # file name -> bytes
    faces: int
    vertices: int
    watertight: bool
    manifold: bool
    texture_coverage: float
    units: str
    gltf_validator: GltfValidation  # asset.glb's
    levels: list[ExportedLevel] = Field(default_factory=list)  # asset.glb's level first, then each LOD
    web: WebGlbExport | None = None

    def as_manifest(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# --- turntable ---
class SplatTurntableMetrics(StageMetrics):
    video: str
    frames: int
    seconds: float
    render_fps: float


class TurntableMetrics(StageMetrics):
    frames: int
    fps: int
    size: list[int]  # [width, height]
    seconds: float
    render_fps: float
    object_coverage_min: float
    object_coverage_mean: float
    object_height_min: float | None = None  # share of the frame height the object fills, over the orbit
    object_height_max: float | None = None
    bytes: int
    splats: SplatTurntableMetrics | None = None  # only when the splats were rendered too

    def as_manifest(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"splats"} if self.splats is None else set())


# --- report ---
class ReportMetrics(StageMetrics):
    checks_failed: int
    checks_not_checked: int
    verdict: str
