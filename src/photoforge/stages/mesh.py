"""Stage mesh: a cleaned, oriented surface from the asset's points (Poisson) or the depth maps (TSDF).

The mesh is written in the asset frame. An object (the asset stage's decision): up from its support,
cut where it meets the support, standing on y = 0, centred on its footprint, front +Z. A scene: Y up
from the cameras, centred, cameras in front. Both in metres when the scale stage found a scale.
`asset_transform.json` holds the world-to-asset similarity later stages apply to the cameras.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from photoforge.errors import StageError
from photoforge.layout import MESH_PLY, OBJECT_PLY, TRANSFORM_JSON, DepthViews, IsolatedAsset
from photoforge.metrics import MeshMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult, odd_window, off_or_at_least
from photoforge.store import write_json

log = logging.getLogger("photoforge")


class MeshParams(StageParams):
    surface: Literal["classical", "splats"] = Field(
        "classical", description="classical: from the fused cloud or depth maps (method); splats: TSDF of splat renders"
    )
    method: Literal["poisson", "tsdf"] = Field("poisson", description="surface from the fused cloud, or TSDF")
    poisson_depth: int = Field(
        10,
        ge=5,
        le=13,
        description="Poisson octree depth at most (detail vs time; lower where target_faces needs less)",
    )
    density_trim: float = Field(
        0.03,
        ge=0.0,
        lt=1.0,
        description="drop this quantile of least-supported vertices (objects with free space: free_space_density_trim)",
    )
    max_gap: Annotated[float, off_or_at_least(1, "below one point spacing it removes the surface")] = Field(
        0.0,
        ge=0.0,
        description="poisson: drop surface farther than this many point spacings (1 or more) from the cloud (0: off)",
    )
    # Poisson spans what no point covers (a web between a horn and the head) and the density trim only cuts
    # the least supported share everywhere: carving what the cameras saw through removes the web on evidence,
    # so the trim can be lighter (bench/dense.py --shapes: bust/wall mesh precision 0.931 -> 0.971, duck/table
    # recall 0.877 -> 0.901). Objects only: on a scene's periphery (fountain-P11's
    # ground, seen at grazing angles by every camera) the depth maps disagree enough that carving shredded it
    # (docs/dense-test-bed.md)
    free_space_views: int = Field(
        1,
        ge=0,
        description="poisson, objects: drop surface away from the points that at least this many depth maps saw "
        "through (0: off)",
    )
    free_space_window: Annotated[int, odd_window()] = Field(
        5, ge=1, description="free space: pixels around a point's projection whose nearest depth it must be in front of"
    )
    free_space_margin: float = Field(
        0.01, ge=0.0, lt=1.0, description="free space: in front by this share of that depth at least"
    )
    free_space_density_trim: float = Field(
        0.01, ge=0.0, lt=1.0, description="free space: the density trim where carving runs, instead of density_trim"
    )
    free_space_keep_within: float = Field(
        1.5,
        ge=0.0,
        description="free space: keep surface within this many point spacings (or Poisson cells) of the points",
    )

    tsdf_voxel_px: float = Field(2.0, gt=0.0, description="TSDF voxel size in pixel footprints")
    min_component_fraction: float = Field(
        0.1, ge=0.0, le=1.0, description="remove pieces smaller than this fraction of the mesh's diagonal"
    )
    max_hole_edges: int = Field(100, ge=0, description="close holes up to this many boundary edges")
    watertight: bool = Field(False, description="close every hole")
    target_faces: int = Field(150_000, ge=100, description="face budget (quadric decimation)")


class MeshInputs(StageInputs):
    asset: StageResult  # the isolated object's points (or the whole scene's) and its frame
    depth: StageResult
    splat: StageResult | None = None  # an input only for mesh.surface=splats

    def used(self, params: MeshParams) -> MeshInputs:
        if params.surface != "splats":
            return self.model_copy(update={"splat": None})
        if self.splat is None:
            raise StageError("mesh", "mesh.surface=splats needs the splat stage: --set splat.enabled=true")
        return self


def run(inputs: MeshInputs, *, out: Path, params: MeshParams, progress: Progress) -> MeshMetrics:
    import numpy as np  # the stage's libraries load when it runs, not when presets or keys are read
    import open3d as o3d

    from photoforge.camera.model import Camera
    from photoforge.geometry import framing, meshing, surfaces

    inputs = inputs.used(params)
    asset_dir, depth_dir = inputs.asset.dir, inputs.depth.dir
    isolated = IsolatedAsset.read(asset_dir)
    splat_dir = inputs.splat.dir if inputs.splat is not None else None
    records = DepthViews.read(depth_dir).usable
    views = [Camera.from_json(r.camera) for r in records if r.camera is not None]  # a usable view has one
    method = "splats" if splat_dir is not None else params.method
    progress(0, 3, f"surface ({method})")
    if splat_dir is not None:
        surface = surfaces.tsdf_from_splats(splat_dir, params.tsdf_voxel_px)
    elif params.method == "poisson":
        carve = params.free_space_views > 0 and isolated.kind == "object"
        surface = surfaces.poisson_from_cloud(
            asset_dir / OBJECT_PLY,
            params.poisson_depth,
            params.free_space_density_trim if carve else params.density_trim,
            max_gap_spacings=params.max_gap,
            face_budget=params.target_faces,
        )
        if carve:
            carving = surfaces.FreeSpaceCarving(
                min_views=params.free_space_views,
                window=params.free_space_window,
                margin=params.free_space_margin,
                keep_within=params.free_space_keep_within,
                poisson_depth=params.poisson_depth,
                face_budget=params.target_faces,
            )
            maps = surfaces.depth_maps(depth_dir, records, views)
            surface = surfaces.carve_seen_through(surface, asset_dir / OBJECT_PLY, maps, settings=carving)
    else:
        surface = surfaces.tsdf_from_depth_maps(depth_dir, records, views, params.tsdf_voxel_px)
    vertices, faces = np.asarray(surface.vertices), np.asarray(surface.triangles)
    if isolated.kind == "object":
        vertices, faces = framing.cut_to_object(
            vertices, faces, isolated, object_points=asset_dir / OBJECT_PLY, near_points=method != "poisson"
        )
    if len(faces) == 0:
        raise StageError("mesh", f"the {method} surface has no faces", splat_dir or asset_dir)
    progress(1, 3, f"clean-up of {len(faces)} faces")
    settings = meshing.CleanupSettings(
        params.min_component_fraction, params.max_hole_edges, params.watertight, params.target_faces
    )
    vertices, faces = meshing.cleanup(vertices, faces, settings)
    if len(faces) == 0:
        raise StageError("mesh", "no faces left after clean-up (loosen mesh.min_component_fraction)", asset_dir)
    if isolated.kind == "object":
        transform = framing.object_frame(vertices, isolated)
    else:
        transform = meshing.asset_frame(vertices, [v.cam_from_world.rotation for v in views], [v.centre for v in views])
        transform[:3] *= isolated.scale or 1.0
    vertices = vertices @ transform[:3, :3].T + transform[:3, 3]
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces))
    mesh.compute_vertex_normals()
    o3d.io.write_triangle_mesh(str(out / MESH_PLY), mesh)
    units = "m" if isolated.scale is not None else "sfm"
    write_json(out / TRANSFORM_JSON, {"world_to_asset": transform.tolist(), "units": units, "up": "+Y"})
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
    return MeshMetrics(
        **stats,
        watertight_requested=params.watertight,
        method=method,
        extent=np.round(extent, 4).tolist(),
        kind=isolated.kind,
        units=units,
        support_area_share=framing.support_area_share(vertices, faces, isolated),
        summary=f"{stats['faces']} faces, {shape}, {'manifold' if stats['manifold'] else 'NON-manifold'}",
    )


STAGE = Stage("mesh", inputs=MeshInputs, params=MeshParams, metrics=MeshMetrics, run=run)
