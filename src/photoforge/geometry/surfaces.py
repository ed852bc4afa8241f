"""The mesh stage's raw surfaces: Poisson on the fused cloud, TSDF of the depth maps, TSDF of splat renders.

Each returns an open3d mesh in the reconstruction's world frame, before clean-up
(photoforge.geometry.meshing.cleanup) and the asset frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import open3d as o3d

from photoforge.errors import StageError
from photoforge.geometry import meshing, visibility
from photoforge.geometry.mvs.depthmaps import load_view
from photoforge.geometry.pointcloud import read_ply, to_open3d

if TYPE_CHECKING:
    from photoforge.camera.model import Camera
    from photoforge.layout import DepthViewRecord

MIN_POINTS = 100


@dataclass(frozen=True)
class FreeSpaceCarving:
    """The mesh stage's free-space params (photoforge.stages.mesh.MeshParams.free_space_*) and the
    Poisson settings the surface was made with."""

    min_views: int
    window: int
    margin: float
    keep_within: float
    poisson_depth: int
    face_budget: int | None


def poisson_from_cloud(
    ply: Path, depth: int, trim_quantile: float, *, max_gap_spacings: float = 0.0, face_budget: int | None = None
) -> o3d.geometry.TriangleMesh:
    """Screened Poisson on the fused cloud (oriented points); an empty or flat cloud is an error."""
    xyz, rgb, normals = read_ply(ply)
    extent = np.ptp(xyz, axis=0) if len(xyz) else np.zeros(3)
    if len(xyz) < MIN_POINTS or np.sort(extent)[1] <= 0:
        raise StageError(
            "mesh", f"the fused cloud is empty or degenerate ({len(xyz)} points, extent {extent.round(4)})", ply
        )
    cloud = to_open3d(xyz, rgb, normals)
    return meshing.poisson_surface(
        cloud, depth, trim_quantile, max_gap_spacings=max_gap_spacings, face_budget=face_budget
    )


def tsdf_from_depth_maps(
    depth_dir: Path, records: list[DepthViewRecord], views: list[Camera], voxel_px: float
) -> o3d.geometry.TriangleMesh:
    """TSDF fusion of the depth artefact's maps, the voxel `voxel_px` pixel footprints at the median depth."""
    frames = []
    footprints = []
    for view, record in zip(views, records, strict=True):
        maps = load_view(depth_dir / str(record.map))
        frames.append((maps["depth"], maps["color"], view.k, view.cam_from_world.matrix()))
        valid = maps["depth"][maps["depth"] > 0]
        if len(valid):
            footprints.append(float(np.median(valid)) / view.k[0, 0])
    if not footprints:
        raise StageError("mesh", "no depth to fuse into a TSDF", depth_dir)
    voxel = voxel_px * float(np.median(footprints))
    return meshing.tsdf_surface(frames, voxel)


def carve_seen_through(
    surface: o3d.geometry.TriangleMesh,
    cloud_ply: Path,
    maps: Iterable[tuple[Camera, np.ndarray]],
    *,
    settings: FreeSpaceCarving,
) -> o3d.geometry.TriangleMesh:
    """The surface less its vertices that `settings.min_views` depth maps saw through
    (photoforge.geometry.visibility) and that lie farther than `settings.keep_within` steps from the
    cloud. A step is the larger of the median point spacing and the Poisson cell: a vertex that near
    the points stands on surface some views matched (a thin part whose depth fell through to the
    background in others: the bust's horns), and Poisson cannot follow the points closer than a cell
    (monstree's 1.9M points are 3.4 spacings to a cell: a spacings-only guard shredded its thin parts)."""
    vertices = np.asarray(surface.vertices)
    counts = visibility.seen_through_counts(vertices, maps, window=settings.window, margin=settings.margin)
    candidates = counts >= settings.min_views
    if candidates.any():
        xyz = read_ply(cloud_ply)[0].astype(np.float64)
        step = max(meshing.median_spacing(xyz), meshing.poisson_cell(xyz, settings.poisson_depth, settings.face_budget))
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
        gap = meshing.distance_to_cloud(vertices[candidates], cloud)
        candidates[np.flatnonzero(candidates)[gap <= settings.keep_within * step]] = False
    surface.remove_vertices_by_mask(candidates)
    return surface


def depth_maps(
    depth_dir: Path, records: list[DepthViewRecord], views: list[Camera]
) -> Iterator[tuple[Camera, np.ndarray]]:
    """(camera, depth map) of each usable view, read one at a time."""
    for view, record in zip(views, records, strict=True):
        yield view, load_view(depth_dir / str(record.map))["depth"]


def tsdf_from_splats(splat_dir: Path, voxel_px: float) -> o3d.geometry.TriangleMesh:
    """TSDF of the splat artefact's rendered depth (photoforge.splatting.surface)."""
    from photoforge.splatting.rasterize import CpuRasterizerOverflow
    from photoforge.splatting.surface import splat_surface

    try:
        return splat_surface(splat_dir, voxel_px=voxel_px)
    except CpuRasterizerOverflow as exc:
        raise StageError(
            "mesh", f"the splats are too many to render on this machine's CPU ({exc}): run on the GPU pool", splat_dir
        ) from exc
