"""Stage asset: decide object or scene, and for an object keep the object alone (isolation).

Object: the region the cameras look at, the supporting plane (ground, table, or the wall behind
a mounted object) found and removed, disconnected floaters dropped; the asset frame's up comes from
the support. Scene: the cloud untouched. Writes the kept points (object.ply), what was removed
(removed.ply) and isolation.json, which the mesh stage frames the surface with.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from photoforge.errors import StageError
from photoforge.layout import (
    FUSED_PLY,
    ISOLATION_JSON,
    OBJECT_PLY,
    REMOVED_PLY,
    SPARSE_DIR,
    IsolatedAsset,
    ScaleEstimate,
)  # fmt: skip
from photoforge.metrics import AssetMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult
from photoforge.store import write_json

log = logging.getLogger("photoforge")

if TYPE_CHECKING:
    import numpy as np

    from photoforge.camera.model import Camera
    from photoforge.geometry.isolation import Support


class AssetParams(StageParams):
    kind: Literal["auto", "object", "scene"] = Field(
        "auto", description="object: isolate what the cameras look at; scene: keep everything; auto: from the cameras"
    )
    crop: list[float] | None = Field(
        None,
        description="[x0,y0,z0,x1,y1,z1]: keep only this box of the asset frame (y up; metres with a scale)",
    )
    remove_support: bool = Field(True, description="object: find the ground, table or wall and remove it")
    support_band: float = Field(
        0.015,
        gt=0.0,
        lt=0.5,
        description="object: points this close to the support go (share of the region's radius: half a frame)",
    )
    keep_floaters: bool = Field(False, description="object: keep pieces not connected to the main object")

    @field_validator("crop")
    @classmethod
    def _a_box(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) != 6 or any(value[i] >= value[i + 3] for i in range(3))):
            raise ValueError("give six numbers x0,y0,z0,x1,y1,z1 with x0 < x1, y0 < y1, z0 < z1")
        return value


class AssetInputs(StageInputs):
    poses: StageResult
    fusion: StageResult
    scale: StageResult


def run(inputs: AssetInputs, *, out: Path, params: AssetParams, progress: Progress) -> AssetMetrics:
    import numpy as np  # the stage's libraries load when it runs, not when presets or keys are read
    import pycolmap

    from photoforge.camera.views import load_views
    from photoforge.geometry import framing, isolation
    from photoforge.geometry.pointcloud import read_ply, write_ply

    xyz, rgb, normals = read_ply(inputs.fusion.dir / FUSED_PLY)
    views, _ = load_views(pycolmap.Reconstruction(str(inputs.poses.dir / SPARSE_DIR)))
    cameras = [v.camera for v in views]
    scale = ScaleEstimate.read(inputs.scale.dir)
    progress(0, 3, "object or scene")
    decision = isolation.decide_kind(cameras)
    kind = decision.kind if params.kind == "auto" else params.kind
    if kind == "scene":
        if scale.object_height_m:
            log.warning("asset: scale.object_height applies to object captures; this scene stays in SfM units")
        keep = np.ones(len(xyz), bool)
        if params.crop is not None:  # a scene keeps every point unless boxed, in its frame from the cameras
            scene_frame = _scene_frame(xyz, cameras, scale)
            keep = _in_box(xyz, scene_frame, params.crop)
        result = IsolatedAsset(kind="scene", scale=scale.metres_per_unit)
        removed = {"outside_region": int(np.sum(~keep))}
        support = None
    else:
        progress(1, 3, "support plane and region")
        centre, radius = decision.centre, isolation.region_radius(cameras, decision.centre)
        inside = np.linalg.norm(xyz - centre, axis=1) <= radius
        if not inside.any():
            raise StageError(
                "asset", "no fused point lies where the cameras look: set asset.kind=scene, or asset.crop",
                inputs.fusion.dir,
            )  # fmt: skip
        support = None
        if params.remove_support:
            support = isolation.find_support(xyz[inside], cameras, up=decision.up, threshold=SUPPORT_RANSAC * radius)
        spacing = isolation.median_spacing(xyz[inside])
        cut = isolation.isolate(
            xyz, inside=inside, support=support, band=params.support_band * radius, spacing=spacing,
            keep_floaters=params.keep_floaters,
        )  # fmt: skip
        if not cut.keep.any():
            raise StageError("asset", "isolation removed every point: set asset.kind=scene", inputs.fusion.dir)
        rotation = isolation.object_rotation(xyz[cut.keep], cameras, support=support, up=decision.up)
        metres = _metres_per_unit(scale, xyz[cut.keep], rotation, support)  # before any crop: the whole object
        keep = cut.keep
        if params.crop is not None:
            keep = keep & _in_box(
                xyz, framing.frame_of(xyz[keep], rotation, support=support, scale=metres), params.crop
            )
            cut.removed["outside_region"] += int(np.sum(cut.keep & ~keep))
        _some_kept(keep, inputs.fusion.dir)
        removed = cut.removed
        result = IsolatedAsset(
            kind="object",
            rotation=rotation.tolist(),
            support=support.as_list() if support is not None else None,
            support_kind=support.kind if support is not None else None,
            scale=metres,
            region_centre=centre.tolist(),
            region_radius=radius,
        )
    _some_kept(keep, inputs.fusion.dir)
    progress(2, 3, f"{int(keep.sum())} of {len(xyz)} points kept")
    write_ply(out / OBJECT_PLY, xyz[keep], rgb[keep], normals[keep])
    write_ply(out / REMOVED_PLY, xyz[~keep], rgb[~keep], normals[~keep])
    write_json(out / ISOLATION_JSON, result.model_dump(mode="json"))
    units = "m" if result.scale is not None else "sfm"
    kept = int(keep.sum())
    percent = round(100.0 * (len(xyz) - kept) / len(xyz), 2)
    crop_box = None
    if kind == "object":
        crop_box = _box_in(xyz[keep], framing.object_frame(xyz[keep], result))
    elif params.crop is not None:
        crop_box = _box_in(xyz[keep], scene_frame)
    progress(3, 3, f"{kind}: {kept} points kept")
    return AssetMetrics(
        kind=kind,
        kind_requested=params.kind,
        kind_evidence=decision.evidence(),
        support=support.kind if support is not None else None,
        points_in=len(xyz),
        points_kept=kept,
        removed=removed,
        removed_percent=percent,
        crop=crop_box,
        crop_source=("asset.crop" if params.crop else "auto") if crop_box is not None else None,
        units=units,
        summary=f"{kind} ({'auto' if params.kind == 'auto' else 'asked'}): {kept} points kept, {percent}% removed"
        + (f", {support.kind} removed" if support is not None else ""),
    )


def _some_kept(keep: np.ndarray, fusion_dir: Path) -> None:
    if not keep.any():
        raise StageError(
            "asset", "asset.crop holds no point: widen the box (asset frame, y up; see the report's crop box)",
            fusion_dir,
        )  # fmt: skip


SUPPORT_RANSAC = 0.01  # RANSAC inlier distance for the support plane, as a share of the region's radius


def _metres_per_unit(
    scale: ScaleEstimate, points: np.ndarray, rotation: np.ndarray, support: Support | None
) -> float | None:
    """Markers give metres per unit directly; a known object height does through the isolated object's
    height: above the floor it stands on (the band removed at its base included), else its extent along up."""
    if scale.metres_per_unit is not None:
        return scale.metres_per_unit
    if not scale.object_height_m:
        return None
    if support is not None and support.kind == "floor":
        height = float(support.signed_distance(points).max())
    else:
        heights = points @ rotation[1]
        height = float(heights.max() - heights.min())
    return scale.object_height_m / height


def _in_box(points: np.ndarray, world_to_asset: np.ndarray, box: list[float]) -> np.ndarray:
    import numpy as np

    local = points @ world_to_asset[:3, :3].T + world_to_asset[:3, 3]
    return np.all((local >= box[:3]) & (local <= box[3:]), axis=1)


def _scene_frame(points: np.ndarray, cameras: list[Camera], scale: ScaleEstimate) -> np.ndarray:
    """The scene's asset frame as the mesh stage makes it (from the cameras), here from the points."""
    from photoforge.geometry import meshing

    frame = meshing.asset_frame(points, [c.cam_from_world.rotation for c in cameras], [c.centre for c in cameras])
    frame[:3] *= scale.metres_per_unit or 1.0
    return frame


def _box_in(points: np.ndarray, frame: np.ndarray) -> list[float]:
    """The points' box [x0, y0, z0, x1, y1, z1] in a 4x4 frame (what the report shows as the crop box)."""
    import numpy as np

    local = points @ frame[:3, :3].T + frame[:3, 3]
    return np.round(np.concatenate([local.min(axis=0), local.max(axis=0)]), 4).tolist()


STAGE = Stage("asset", inputs=AssetInputs, params=AssetParams, metrics=AssetMetrics, run=run)
