"""The artefact layout: the one stage order, every file name a stage writes, typed readers.

Stages, outputs, the CLI and the report name files only through this module, and read another
stage's artefact only through its readers here; no stage module imports another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from photoforge.geometry.detail_levels import MAX_LODS

# The DAG's order (the flow runs them so; presets, summaries and the report list them so).
STAGE_ORDER: tuple[str, ...] = (
    "ingest",
    "poses",
    "scale",
    "depth",
    "fusion",
    "asset",
    "splat",
    "mesh",
    "uv",
    "bake",
    "export",
    "turntable",
    "report",
)

# capture (what a user may put beside the photos)
CAPTURE_MASKS_DIR = "masks"  # masks/<photo file name or stem>.png, white = object (COLMAP's convention)
MARKERS_YAML = "markers.yaml"  # size: 0.05 (metres, black border included), optional dictionary:
# ingest
FRAMES_DIR = "frames"
FRAMES_JSON = "frames.json"
MASKS_DIR = "masks"  # masks/<frame name>.png at the working size (COLMAP's mask_path layout); MARKERS_YAML copied
# poses
SPARSE_DIR = "sparse"
POSES_JSON = "poses.json"
# scale
SCALE_JSON = "scale.json"
# depth
UNDISTORTED = "undistorted"
MAPS_DIR = "maps"
PREVIEWS_DIR = "previews"
DEPTH_JSON = "depth.json"
# fusion
FUSED_PLY = "fused.ply"
# asset
OBJECT_PLY = "object.ply"  # the fused points kept as the object (the whole cloud for a scene)
REMOVED_PLY = "removed.ply"  # the points isolation removed, coloured by why (the report's picture)
ISOLATION_JSON = "isolation.json"  # kind, support plane, rotation to the asset frame, scale (IsolatedAsset)
# splat
SPLATS_PLY = "splats.ply"
SPLAT_JSON = "splat.json"
COMPARISONS_DIR = "comparisons"
CHECKPOINT = "checkpoint.pt"
# mesh
MESH_PLY = "mesh.ply"
TRANSFORM_JSON = "asset_transform.json"
# uv
UV_NPZ = "mesh_uv.npz"
# bake
ALBEDO_PNG = "albedo.png"
NORMAL_PNG = "normal.png"  # tangent-space normals baked from the high-res surface (glTF normalTexture)
OCCLUSION_PNG = "occlusion.png"  # ambient occlusion from the high-res surface (glTF occlusionTexture, R)
DETAIL_PNG = "detail_shading.png"  # high-res | low-poly | low-poly + normal map, one light, one view
COVERAGE_PNG = "coverage.png"
BAKE_JSON = "bake.json"
EVAL_DIR = "eval"
# export
ASSET = "asset"  # asset.glb, asset.obj + asset.mtl, asset.usdz
ASSET_GLB = f"{ASSET}.glb"
ASSET_OBJ = f"{ASSET}.obj"
ASSET_MTL = f"{ASSET}.mtl"
ASSET_USDZ = f"{ASSET}.usdz"
ASSET_WEB_GLB = f"{ASSET}.web.glb"  # meshopt geometry, smaller textures (gltfpack)


def lod_glb(index: int) -> str:
    """asset_lod1.glb, asset_lod2.glb, ...: the export.lods levels, each self-contained."""
    return f"{ASSET}_lod{index}.glb"


# turntable
VIDEO = "turntable.mp4"
SPLAT_VIDEO = "splat_turntable.mp4"
POSTER = "poster.png"
SHEET = "contact_sheet.png"
# report
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
VIEWER_DIR = "viewer"  # report.html's 3D viewer: its bundle and a data script per model
# WORKSPACE/CAPTURE/outputs: the latest run's deliverables under these same names
OUTPUTS_DIR = "outputs"
RUN_JSON = "run.json"
DELIVERABLES: dict[str, tuple[str, ...]] = {
    "export": (
        ASSET_GLB,
        ASSET_WEB_GLB,
        *(lod_glb(i) for i in range(1, MAX_LODS + 1)),
        ASSET_OBJ,
        ASSET_MTL,
        ALBEDO_PNG,
        ASSET_USDZ,
    ),
    "splat": (SPLATS_PLY,),
    "turntable": (VIDEO, POSTER, SHEET, SPLAT_VIDEO),
    "report": (REPORT_HTML, REPORT_JSON, VIEWER_DIR),  # VIEWER_DIR: a folder
}
# What `photoforge run` points the user at, in this order.
HEADLINE_OUTPUTS = (ASSET_GLB, VIDEO, REPORT_HTML)


HANDOFF_TARGETS = ("nerfstudio", "colmap")  # photoforge handoff --to: the layouts it writes


def capture_name(capture: str) -> str:
    """The capture's folder name names its artefact tree (WORKSPACE/CAPTURE/...)."""
    return Path(capture).resolve().name or "capture"


def named_capture(capture: str) -> str:
    """What a command given CAPTURE (a capture folder, or a name in the workspace) looks up: the folder's name."""
    return capture_name(capture) if Path(capture).exists() else capture


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


class Frame(BaseModel):
    """One source file's entry in frames.json (kept or rejected, and why)."""

    model_config = ConfigDict(extra="allow")

    source: str
    kept: bool
    frame: str | None = None
    reason: str | None = None
    kind: Literal["photo", "video"] = "photo"
    sharpness: float = 0.0
    time: float | None = None  # seconds into the video
    width: int = 0  # the working frame's size
    height: int = 0
    source_width: int = 0
    source_height: int = 0
    camera: str = ""  # frames with the same camera (and size) share intrinsics in poses
    intrinsics: dict[str, Any] | None = None  # the prior at the working size (photoforge.camera.calibration)
    mask: str | None = None  # the user's mask at the working size, relative to the artefact (MASKS_DIR/...)


@dataclass(frozen=True)
class Frames:
    """An ingest artefact: the working frames and what happened to every source."""

    dir: Path
    entries: list[Frame]
    skipped: tuple[str, ...] = ()  # files of the capture that are neither photos nor videos

    @classmethod
    def read(cls, ingest_dir: Path) -> Frames:
        data = read_json(ingest_dir / FRAMES_JSON)
        return cls(ingest_dir, [Frame.model_validate(f) for f in data["frames"]], tuple(data.get("skipped", ())))

    @property
    def images(self) -> Path:
        return self.dir / FRAMES_DIR

    @property
    def kept(self) -> list[Frame]:
        return [f for f in self.entries if f.kept]

    @property
    def rejected(self) -> list[Frame]:
        return [f for f in self.entries if not f.kept]


class DepthViewRecord(BaseModel):
    """One view of depth.json: its depth map (if usable), preview and camera at depth resolution."""

    model_config = ConfigDict(extra="forbid")

    name: str
    neighbours: list[str]
    overlapping: list[str] = []
    usable: bool
    valid_fraction: float
    map: str | None = None
    preview: str | None = None
    camera: dict[str, Any] | None = None


@dataclass(frozen=True)
class DepthViews:
    """A depth artefact: the undistorted model and images, and a depth map per view."""

    dir: Path
    views: list[DepthViewRecord]
    summary: dict[str, Any]

    @classmethod
    def read(cls, depth_dir: Path) -> DepthViews:
        data = read_json(depth_dir / DEPTH_JSON)
        views = [DepthViewRecord.model_validate(v) for v in data["views"]]
        return cls(depth_dir, views, {k: v for k, v in data.items() if k != "views"})

    @property
    def usable(self) -> list[DepthViewRecord]:
        return [v for v in self.views if v.usable]

    @property
    def undistorted(self) -> Path:
        return self.dir / UNDISTORTED


@dataclass(frozen=True)
class UVMesh:
    """A uv artefact: one detail level's mesh split at chart seams, uvs with v down from the top (glTF's
    way), and the shading frame its maps are baked in (vertex normals, tangents with handedness in w)."""

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    texture_size: int
    normals: np.ndarray
    tangents: np.ndarray
    level: str = "raw"
    decimated: bool = False  # a low-poly of the mesh stage's surface, not the surface itself

    @classmethod
    def read(cls, uv_dir: Path) -> UVMesh:
        with np.load(uv_dir / UV_NPZ) as data:
            uvs = data["uvs"].copy()
            uvs[:, 1] = 1.0 - uvs[:, 1]  # xatlas stores v up from the bottom
            return cls(
                data["vertices"],
                data["faces"],
                uvs,
                int(data["texture_size"]),
                data["normals"],
                data["tangents"],
                str(data["level"]),
                bool(data["decimated"]),
            )


class ScaleEstimate(BaseModel):
    """scale.json: metres per SfM unit from markers, or the object's known height for the asset stage."""

    model_config = ConfigDict(extra="allow")

    source: Literal["markers", "object_height", "none"]
    metres_per_unit: float | None = None  # markers: known side / triangulated side (median)
    spread_percent: float | None = None  # markers: robust spread of the per-side estimates, in %
    object_height_m: float | None = None  # object_height: the isolated object's real height

    @classmethod
    def read(cls, scale_dir: Path) -> ScaleEstimate:
        return cls.model_validate(read_json(scale_dir / SCALE_JSON))


class IsolatedAsset(BaseModel):
    """isolation.json: what the asset stage decided, for the mesh stage to frame the surface with.

    `rotation` (rows: the asset's x, y, z axes in world coordinates) and `support` (a world plane
    n.x + d = 0, n towards the object) are None for a scene: the mesh stage then frames it from the
    cameras as before. `scale` multiplies the world (metres per SfM unit), None: SfM units.
    """

    model_config = ConfigDict(extra="allow")

    kind: Literal["object", "scene"]
    rotation: list[list[float]] | None = None
    support: list[float] | None = None  # [nx, ny, nz, d]
    support_kind: Literal["floor", "wall"] | None = None
    scale: float | None = None
    region_centre: list[float] | None = None  # world: where the cameras look (object kind)
    region_radius: float | None = None

    @classmethod
    def read(cls, asset_dir: Path) -> IsolatedAsset:
        return cls.model_validate(read_json(asset_dir / ISOLATION_JSON))


def world_to_asset(mesh_dir: Path) -> np.ndarray:
    """The mesh artefact's 4x4 transform from the reconstruction's world to the asset's frame."""
    return np.array(read_json(mesh_dir / TRANSFORM_JSON)["world_to_asset"])
