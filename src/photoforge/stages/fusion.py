"""Stage fusion: the depth maps fused into one cleaned, coloured point cloud (fused.ply)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from photoforge.errors import StageError
from photoforge.layout import FUSED_PLY, DepthViewRecord, DepthViews
from photoforge.metrics import FusionMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult, odd_window

if TYPE_CHECKING:
    from photoforge.geometry.mvs.fusion import DepthView


class FusionParams(StageParams):
    # 2 views, or 1 for a confident match, and 2 px: measured on the object test bed (bench/dense.py --shapes),
    # surfaces few views see (under a belly, from the low ring of a table layout) survive, and thin parts
    # against a wall (a bust's horns) do not gain wrong points as they do when one view always suffices
    min_consistent_views: int = Field(2, ge=1, description="other views that must agree on a point")
    single_view_confidence: float = Field(
        0.6,
        ge=-1.0,
        le=2.0,
        description="cpu depth: one view fewer than min_consistent_views suffices from this match confidence up "
        "(2: never)",
    )
    depth_tolerance: float = Field(0.01, gt=0.0, le=0.2, description="relative depth difference that agrees")
    reprojection_px: float = Field(2.0, gt=0.0, description="forward-backward reprojection error that agrees")
    min_confidence: float = Field(-1.0, ge=-1.0, le=1.0, description="drop depths below this confidence first")
    max_partners: int = Field(12, ge=1, description="views each view's points are checked against (most overlap)")
    voxel_size_px: float = Field(1.0, ge=0.0, description="voxel downsampling at this many pixel footprints (0: off)")
    outlier_neighbours: int = Field(20, ge=0, description="statistical outlier removal neighbours (0: off)")
    outlier_std_ratio: float = Field(2.0, gt=0.0, description="statistical outlier removal threshold")
    # accept a match one view short from 0.6 and drop what other views saw through instead (bench/dense.py
    # --shapes: duck/table fused recall 0.880 -> 0.907, bust/wall precision 0.965 -> 0.973)
    free_space: bool = Field(
        True, description="drop points that more depth maps saw through (to something farther) than agree with"
    )
    free_space_window: Annotated[int, odd_window()] = Field(
        3, ge=1, description="free space: pixels around a point's projection whose nearest depth it must be in front of"
    )
    free_space_margin: float = Field(
        0.005, ge=0.0, lt=1.0, description="free space: in front by this share of that depth at least"
    )


class FusionInputs(StageInputs):
    depth: StageResult


def run(inputs: FusionInputs, *, out: Path, params: FusionParams, progress: Progress) -> FusionMetrics:
    import numpy as np  # the stage's libraries load when it runs, not when presets or keys are read
    import torch

    from photoforge.camera.model import Camera
    from photoforge.geometry.mvs.depthmaps import load_view
    from photoforge.geometry.mvs.fusion import ConsistencySettings, DepthView, fuse
    from photoforge.geometry.pointcloud import clean, from_open3d, to_open3d, write_ply
    from photoforge.geometry.visibility import visibility_votes

    depth_dir = inputs.depth.dir
    artefact = DepthViews.read(depth_dir)
    records = artefact.usable
    if not records:
        raise StageError("fusion", "the depth artefact has no usable view", depth_dir)
    views = []
    for record in records:
        assert record.map is not None and record.camera is not None  # a usable view has both
        maps = load_view(depth_dir / record.map)
        camera = Camera.from_json(record.camera)
        views.append(
            DepthView(
                camera,
                torch.from_numpy(maps["depth"]),
                torch.from_numpy(maps["confidence"].astype(np.float32)),
                maps["normal"],
                maps["color"],
            )
        )
    partners = _partners(records, params.max_partners)
    settings = ConsistencySettings(
        min_views=params.min_consistent_views,
        # COLMAP's maps carry no match score (confidence 1 wherever there is depth): the rule is the sweep's
        single_view_confidence=params.single_view_confidence if artefact.summary.get("backend") == "cpu" else 2.0,
        depth_tolerance=params.depth_tolerance,
        reprojection_px=params.reprojection_px,
        min_confidence=params.min_confidence,
    )
    fused = fuse(views, partners, settings, progress)
    if len(fused.xyz) == 0:
        raise StageError(
            "fusion",
            f"no point is consistent across {params.min_consistent_views + 1} views: lower "
            "fusion.min_consistent_views or raise fusion.depth_tolerance",
            depth_dir,
        )
    cloud = to_open3d(fused.xyz, fused.rgb, fused.normals)
    raw_points = len(fused.xyz)
    cloud = clean(cloud, _voxel_size(views, params.voxel_size_px), params.outlier_neighbours, params.outlier_std_ratio)
    xyz, rgb, normals = from_open3d(cloud)
    if params.free_space:
        votes = visibility_votes(
            xyz,
            ((view.camera, view.depth.numpy()) for view in views),
            window=params.free_space_window,
            margin=params.free_space_margin,
            tolerance=params.depth_tolerance,
        )
        keep = ~votes.contradicted()
        if not keep.any():
            raise StageError(
                "fusion",
                "other depth maps saw through every fused point (the maps disagree): check the poses, "
                "or --set fusion.free_space=false",
                depth_dir,
            )
        xyz, rgb, normals = xyz[keep], rgb[keep], normals[keep]
    if len(xyz) == 0:
        raise StageError("fusion", "clean-up removed every point", depth_dir)
    write_ply(out / FUSED_PLY, xyz, rgb, normals)
    views_with_points = sum(1 for c in fused.per_view if c > 0)
    return FusionMetrics(
        points=len(xyz),
        points_before_cleanup=raw_points,
        views=len(views),
        views_contributing=views_with_points,
        extent=np.round(xyz.max(axis=0) - xyz.min(axis=0), 4).tolist(),
        summary=f"{len(xyz)} points from {views_with_points}/{len(views)} views",
    )


def _partners(records: list[DepthViewRecord], limit: int) -> dict[int, list[int]]:
    """Each view is checked against the views it overlaps most, and those that overlap it."""
    index = {r.name: i for i, r in enumerate(records)}
    partners: dict[int, set[int]] = {i: set() for i in range(len(records))}
    for i, record in enumerate(records):
        for name in record.overlapping[:limit]:
            j = index.get(name)
            if j is not None and j != i:
                partners[i].add(j)
                partners[j].add(i)
    return {i: sorted(js) for i, js in partners.items()}


def _voxel_size(views: list[DepthView], pixels: float) -> float:
    """A pixel's footprint at the median depth, in scene units: scale-free voxel sizes."""
    import numpy as np

    if pixels <= 0:
        return 0.0
    footprints = []
    for view in views:
        depth = view.depth[view.depth > 0]
        if len(depth):
            footprints.append(float(depth.median()) / float(view.camera.k[0, 0]))
    return pixels * float(np.median(footprints)) if footprints else 0.0


STAGE = Stage("fusion", inputs=FusionInputs, params=FusionParams, metrics=FusionMetrics, run=run)
