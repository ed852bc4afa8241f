"""A triangle mesh from trained splats: their expected depth and colour per view, fused by TSDF.

Splats alone have no surface; rendering each training view's expected depth (gsplat "RGB+ED")
and integrating those depth maps in a TSDF gives one. Pixels the splats barely cover (alpha
below `alpha_min`) carry no depth, voxels fewer than `min_weight` views saw are dropped, and the
result is cropped to the Gaussians' extent, so background floaters stay out.

The TSDF is the mesh stage's (photoforge.geometry.meshing.tsdf_surface).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import open3d as o3d

from photoforge.camera.model import Camera
from photoforge.errors import StageError
from photoforge.geometry.meshing import tsdf_surface
from photoforge.splatting.data import CAMERAS_JSON, read_cameras
from photoforge.splatting.gaussians import Splats
from photoforge.splatting.render import load_splats, render_splats
from photoforge.stage import Progress, no_progress

TRUNCATION_VOXELS = 4.0  # the TSDF band, in voxels (as the mesh stage's TSDF)


def splat_surface(
    splat_dir: Path,
    voxel_size: float | None = None,
    voxel_px: float = 2.0,
    alpha_min: float = 0.5,
    min_weight: float = 2.0,
    device: Literal["auto", "cuda", "cpu"] = "auto",
    progress: Progress = no_progress,
) -> o3d.geometry.TriangleMesh:
    """The surface of a splat artefact (splats.ply + cameras.json), in its world (SfM) frame, coloured.

    voxel_size in scene units; None: `voxel_px` pixel footprints at the median rendered depth (as
    the mesh stage sizes its TSDF voxels). Views are the training cameras at training resolution.
    """
    cameras = splat_dir / CAMERAS_JSON
    if not cameras.is_file():
        raise StageError("splat", "no cameras.json beside the splats (not a splat artefact?)", splat_dir)
    return surface_from_splats(
        load_splats(splat_dir),
        read_cameras(cameras)["train"],
        voxel_size,
        voxel_px,
        alpha_min,
        min_weight,
        device,
        progress,
    )


def surface_from_splats(
    splats: Splats,
    views: list[Camera],
    voxel_size: float | None = None,
    voxel_px: float = 2.0,
    alpha_min: float = 0.5,
    min_weight: float = 2.0,
    device: Literal["auto", "cuda", "cpu"] = "auto",
    progress: Progress = no_progress,
) -> o3d.geometry.TriangleMesh:
    """The surface of `splats` seen from `views` (cameras at the resolution to render depth at)."""
    frames = []
    footprints = []
    for done, view in enumerate(views):
        image = render_splats(splats, view, with_depth=True, device=device)
        assert image.depth is not None
        depth = np.where(image.alpha >= alpha_min, image.depth, 0).astype(np.float32)
        frames.append((depth, image.rgb, view.k, view.cam_from_world.matrix()))
        valid = depth[depth > 0]
        if len(valid):
            footprints.append(float(np.median(valid)) / float(view.k[0, 0]))
        progress(done + 1, len(views), f"rendered depth of {view.name}")
    if not footprints:
        raise StageError("splat", f"no view renders any pixel with alpha >= {alpha_min}: nothing to mesh")
    voxel = voxel_size if voxel_size is not None else voxel_px * float(np.median(footprints))
    mesh = tsdf_surface(frames, voxel, TRUNCATION_VOXELS, min_weight)
    return mesh.crop(_extent(splats, margin=TRUNCATION_VOXELS * voxel))


def _extent(splats: Splats, margin: float) -> o3d.geometry.AxisAlignedBoundingBox:
    """The box of the opaque Gaussians (1st to 99th percentile per axis), widened by `margin`."""
    means = splats.means.numpy()
    opaque = 1 / (1 + np.exp(-splats.opacities.numpy())) > 0.5
    points = means[opaque] if opaque.sum() >= 10 else means
    lo, hi = np.percentile(points, 1, axis=0) - margin, np.percentile(points, 99, axis=0) + margin
    return o3d.geometry.AxisAlignedBoundingBox(lo, hi)
