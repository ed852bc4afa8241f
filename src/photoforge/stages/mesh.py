"""Stage mesh: a cleaned, oriented surface from the fused cloud (Poisson) or the depth maps (TSDF).

The mesh is written in the asset frame (Y up from the cameras, centred, cameras in front);
`asset_transform.json` holds the world-to-asset transform later stages apply to the cameras.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import open3d as o3d
from pydantic import Field

from photoforge.camera.views import View
from photoforge.errors import StageError
from photoforge.geometry import meshing
from photoforge.geometry.mvs.depthmaps import load_view
from photoforge.geometry.pointcloud import read_ply, to_open3d
from photoforge.splatting.rasterize import CpuRasterizerOverflow
from photoforge.splatting.surface import splat_surface
from photoforge.stage import Progress, Stage, StageParams, StageResult, no_progress
from photoforge.stages.depth import load_depth_views
from photoforge.stages.fusion import FUSED_PLY
from photoforge.store import ArtefactStore, write_json

STAGE = Stage("mesh", version="2", libraries=("open3d", "pymeshlab", "numpy"))
MESH_PLY = "mesh.ply"
TRANSFORM_JSON = "asset_transform.json"
MIN_POINTS = 100

log = logging.getLogger("photoforge")


class MeshParams(StageParams):
    surface: Literal["classical", "splats"] = Field(
        "classical", description="classical: from the fused cloud or depth maps (method); splats: TSDF of splat renders"
    )
    method: Literal["poisson", "tsdf"] = Field("poisson", description="surface from the fused cloud, or TSDF")
    poisson_depth: int = Field(9, ge=5, le=13, description="Poisson octree depth (detail vs time)")
    density_trim: float = Field(0.03, ge=0.0, lt=1.0, description="drop this quantile of least-supported vertices")
    tsdf_voxel_px: float = Field(2.0, gt=0.0, description="TSDF voxel size in pixel footprints")
    min_component_fraction: float = Field(
        0.1, ge=0.0, le=1.0, description="remove pieces smaller than this fraction of the mesh's diagonal"
    )
    max_hole_edges: int = Field(100, ge=0, description="close holes up to this many boundary edges")
    watertight: bool = Field(False, description="close every hole")
    target_faces: int = Field(200_000, ge=100, description="face budget (quadric decimation)")


def key_inputs(cloud: StageResult, depth: StageResult, splat: StageResult | None, params: MeshParams) -> dict[str, Any]:
    inputs = {"fusion": cloud.key, "depth": depth.key}
    if params.surface == "splats":
        if splat is None:
            raise StageError("mesh", "mesh.surface=splats needs the splat stage: --set splat.enabled=true")
        inputs["splat"] = splat.key
    return inputs


def execute(
    store: ArtefactStore,
    cloud: StageResult,
    depth: StageResult,
    params: MeshParams,
    progress: Progress = no_progress,
    splat: StageResult | None = None,
) -> StageResult:
    inputs = key_inputs(cloud, depth, splat, params)
    splat_dir = splat.dir if splat is not None and params.surface == "splats" else None
    return STAGE.execute(store, params, inputs, lambda out: run(cloud.dir, depth.dir, out, params, progress, splat_dir))


def run(
    fusion_dir: Path,
    depth_dir: Path,
    out: Path,
    params: MeshParams,
    progress: Progress = no_progress,
    splat_dir: Path | None = None,
) -> dict[str, Any]:
    records = load_depth_views(depth_dir)
    views = [View.from_json(i, r["camera"]) for i, r in enumerate(records)]
    method = "splats" if splat_dir is not None else params.method
    progress(0, 3, f"surface ({method})")
    if splat_dir is not None:
        try:
            surface = splat_surface(splat_dir, voxel_px=params.tsdf_voxel_px)
        except CpuRasterizerOverflow as exc:
            raise StageError(
                "mesh",
                f"the splats are too many to render on this machine's CPU ({exc}): run on the GPU pool",
                splat_dir,
            ) from exc
    elif params.method == "poisson":
        surface = _poisson(fusion_dir / FUSED_PLY, params)
    else:
        surface = _tsdf(depth_dir, records, views, params)
    vertices, faces = np.asarray(surface.vertices), np.asarray(surface.triangles)
    if len(faces) == 0:
        raise StageError("mesh", f"the {method} surface has no faces", splat_dir or fusion_dir)
    progress(1, 3, f"clean-up of {len(faces)} faces")
    settings = meshing.CleanupSettings(
        params.min_component_fraction, params.max_hole_edges, params.watertight, params.target_faces
    )
    vertices, faces = meshing.cleanup(vertices, faces, settings)
    if len(faces) == 0:
        raise StageError("mesh", "no faces left after clean-up (loosen mesh.min_component_fraction)", fusion_dir)
    transform = meshing.asset_frame(vertices, [v.rotation for v in views], [v.centre for v in views])
    vertices = vertices @ transform[:3, :3].T + transform[:3, 3]
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces))
    mesh.compute_vertex_normals()
    o3d.io.write_triangle_mesh(str(out / MESH_PLY), mesh)
    write_json(out / TRANSFORM_JSON, {"world_to_asset": transform.tolist(), "units": "sfm", "up": "+Y"})
    stats = meshing.topology(vertices, faces)
    extent = vertices.max(axis=0) - vertices.min(axis=0)
    shape = "watertight" if stats["watertight"] else "open"
    if params.watertight and not stats["watertight"]:
        shape = f"NOT watertight as asked ({stats['boundary_edges']} boundary edges left)"
        log.warning(
            "mesh: mesh.watertight is true but the clean-up could not close every hole: %d boundary edges, "
            "%s; the asset is open (lower mesh.density_trim, which cuts holes, or capture the object all round)",
            stats["boundary_edges"],
            "manifold" if stats["manifold"] else "non-manifold parts left",
        )
    progress(3, 3, f"{stats['faces']} faces")
    return {
        **stats,
        "watertight_requested": params.watertight,
        "method": method,
        "extent": np.round(extent, 4).tolist(),
        "summary": f"{stats['faces']} faces, {shape}, {'manifold' if stats['manifold'] else 'NON-manifold'}",
    }


def _poisson(ply: Path, params: MeshParams) -> o3d.geometry.TriangleMesh:
    xyz, rgb, normals = read_ply(ply)
    extent = np.ptp(xyz, axis=0) if len(xyz) else np.zeros(3)
    if len(xyz) < MIN_POINTS or np.sort(extent)[1] <= 0:
        raise StageError(
            "mesh", f"the fused cloud is empty or degenerate ({len(xyz)} points, extent {extent.round(4)})", ply
        )
    return meshing.poisson_surface(to_open3d(xyz, rgb, normals), params.poisson_depth, params.density_trim)


def _tsdf(
    depth_dir: Path, records: list[dict[str, Any]], views: list[View], params: MeshParams
) -> o3d.geometry.TriangleMesh:
    frames = []
    footprints = []
    for view, record in zip(views, records, strict=True):
        maps = load_view(depth_dir / record["map"])
        extrinsic = np.eye(4)
        extrinsic[:3, :3], extrinsic[:3, 3] = view.rotation, view.translation
        frames.append((maps["depth"], maps["color"], view.k, extrinsic))
        valid = maps["depth"][maps["depth"] > 0]
        if len(valid):
            footprints.append(float(np.median(valid)) / view.k[0, 0])
    if not footprints:
        raise StageError("mesh", "no depth to fuse into a TSDF", depth_dir)
    voxel = params.tsdf_voxel_px * float(np.median(footprints))
    return meshing.tsdf_surface(frames, voxel)


def load_transform(mesh_dir: Path) -> np.ndarray:
    return np.array(json.loads((mesh_dir / TRANSFORM_JSON).read_text())["world_to_asset"])
