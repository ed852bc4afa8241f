"""Stage bake: one detail level's maps (albedo from the photos; normal and occlusion from the high-res
surface) and honest quality numbers: left-out views, and the level's fidelity to the high-res surface.

The bake itself is photoforge.texturing.bake (per texel the views that see it inside the object:
the user's masks, else the mesh's silhouette, less a band along the edge; per face the best view,
levelled and blended). Every `leave_out_every`-th view is not used, and the textured mesh rendered
from it is compared with its photo (photoforge.qa.baked_views: PSNR, SSIM inside the silhouette and
the user's mask, and the share of what its depth map saw that the mesh covers).

A decimated level also gets a tangent-space normal map and an ambient-occlusion map from the mesh
stage's high-res surface (photoforge.texturing.detail_maps), the median normal error with and without
the normal map and the distance to the high-res surface (photoforge.qa.detail_fidelity), and a
picture: high-res | low-poly | low-poly + normal map, shaded alike.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from photoforge.layout import (
    BAKE_JSON,
    DETAIL_PNG,
    MESH_PLY,
    NORMAL_PNG,
    OCCLUSION_PNG,
    DepthViews,
    Frames,
    UVMesh,
    world_to_asset,
)
from photoforge.metrics import BakeMetrics, DetailFidelity
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult
from photoforge.store import write_json

if TYPE_CHECKING:
    from photoforge.texturing.atlas import Texels

log = logging.getLogger("photoforge")


class BakeParams(StageParams):
    full_resolution: bool = Field(False, description="bake from the original photos, not the working frames")
    leave_out_every: int = Field(8, ge=0, description="every n-th view is held out for evaluation (0: none)")
    smoothness: float = Field(0.3, ge=0.0, description="penalty for a face's view differing from a neighbour's")
    blend: float = Field(0.15, ge=0.0, le=1.0, description="weight of the other views blended into the chosen one")
    min_cos: float = Field(0.1, ge=0.0, lt=1.0, description="ignore views seeing a face more obliquely than this")
    levelling: bool = Field(True, description="level colour and exposure across views")
    visibility_px: int = Field(
        800,
        ge=0,
        le=16384,
        description="long side of each view's distance buffer that decides which texels it sees (and the mesh's "
        "silhouette); 0: a ray per texel and view, silhouettes at full size (slower, exact)",
    )
    max_eval_views: int = Field(4, ge=0, description="views used for the bake that are also scored")
    mask_erode_px: int = Field(
        3,
        ge=0,
        le=64,
        description="px along a view's object outline (the user's mask, else the mesh's silhouette) that colour "
        "a texel only when no view sees it further inside; 0: the whole mask, no silhouette",
    )
    normal_map: bool = Field(True, description="a decimated level: tangent-space normals from the high-res surface")
    occlusion: bool = Field(True, description="an ambient-occlusion map from the high-res surface")
    occlusion_rays: int = Field(32, ge=4, le=512, description="hemisphere rays per high-res vertex")
    occlusion_distance: float = Field(
        0.05, gt=0.0, le=1.0, description="occluders count within this share of the mesh's bounding-box diagonal"
    )
    normal_search: float = Field(
        0.02,
        gt=0.0,
        le=0.5,
        description="how far from the low-poly the high-res surface is sought (share of diagonal)",
    )


class BakeInputs(StageInputs):
    capture: Path = Field(exclude=True)  # the original photos (full_resolution): ingest keys their content
    ingest: StageResult
    poses: StageResult
    depth: StageResult
    mesh: StageResult
    uv: StageResult


def run(inputs: BakeInputs, *, out: Path, params: BakeParams, progress: Progress) -> BakeMetrics:
    import numpy as np  # the stage's libraries load when it runs, not when presets or keys are read

    from photoforge.qa.baked_views import MIN_VIEW_COVERAGE, mean_score, score_baked_views
    from photoforge.render.raycast import MeshScene
    from photoforge.texturing.atlas import rasterise
    from photoforge.texturing.bake import BakeSettings, bake_texture, photo_sources, split_views, write_maps

    mesh = UVMesh.read(inputs.uv.dir)
    asset_from_world = world_to_asset(inputs.mesh.dir)
    depth_dir = inputs.depth.dir
    records = DepthViews.read(depth_dir).usable
    bake_ids, left_out = split_views(len(records), params.leave_out_every)
    scene = MeshScene(mesh.vertices, mesh.faces)
    texels = rasterise(mesh.vertices, mesh.faces, mesh.uvs, mesh.texture_size)
    steps = len(bake_ids) + 2
    progress(0, steps, f"{len(texels.index)} texels, {len(bake_ids)} views")
    frames = Frames.read(inputs.ingest.dir)
    with ThreadPoolExecutor(max_workers=1) as background:
        # the normal and occlusion maps need only the atlas and the high-res surface: they are baked while
        # the photos are (each side's numpy releases the GIL, so both cores stay busy between ray casts)
        detail_maps = background.submit(_detail_maps, inputs.mesh.dir / MESH_PLY, mesh, texels, params, out)
        sources = photo_sources(
            frames,
            records,
            bake_ids,
            capture=inputs.capture,
            poses_dir=inputs.poses.dir,
            depth_dir=depth_dir,
            world_to_asset=asset_from_world,
            full_resolution=params.full_resolution,
            scene=scene,
            erode_px=params.mask_erode_px,
            visibility_px=params.visibility_px,
        )
        settings = BakeSettings(params.smoothness, params.blend, params.min_cos, params.levelling)
        baked = bake_texture(texels, mesh, scene, sources, settings, progress)
        write_maps(out, baked)
        progress(steps - 1, steps, "normal and occlusion maps" if mesh.decimated else "occlusion map")
        maps, detail = detail_maps.result()
    progress(steps - 1, steps, "scoring against photos")

    chosen = [(i, True) for i in left_out] + [(i, False) for i in bake_ids[: params.max_eval_views]]
    face_uvs = mesh.uvs[mesh.faces]
    evaluation = score_baked_views(chosen, records, depth_dir, asset_from_world, scene, face_uvs, baked.texture, out)
    labels = baked.labels
    write_json(
        out / BAKE_JSON,
        {
            "views": [s.name for s in sources],
            "left_out": [records[i].name for i in left_out],
            "gains": np.round(baked.gains, 4).tolist(),
            "faces_per_view": np.bincount(labels[labels >= 0], minlength=len(sources)).tolist(),
            "evaluation": evaluation,
        },
    )
    held = [e for e in evaluation if e["left_out"]]
    used = [e for e in evaluation if not e["left_out"]]
    uncovered = [e["name"] for e in held if e["coverage"] < MIN_VIEW_COVERAGE]
    if uncovered:
        log.warning(
            "bake: the mesh covers less than %.0f%% of left-out view(s) %s: the asset misses part of what they see",
            100 * MIN_VIEW_COVERAGE,
            ", ".join(uncovered),
        )
    psnr_left_out = mean_score(held, "psnr")
    quality = f", left-out PSNR {psnr_left_out:.1f} dB" if held else ""
    if detail is not None:
        quality += (
            f", normals {detail.normal_error_own_deg:.1f}° -> {detail.normal_error_mapped_deg:.1f}° off with the map"
        )
    quality += f", {len(uncovered)} left-out view(s) not covered by the mesh" if uncovered else ""
    return BakeMetrics(
        texture_size=mesh.texture_size,
        coverage=round(baked.coverage, 4),
        views_used=len(sources),
        views_left_out=len(left_out),
        faces_unseen=int((labels < 0).sum()),
        psnr_left_out=psnr_left_out,
        ssim_left_out=mean_score(held, "ssim"),
        psnr_used=mean_score(used, "psnr"),
        ssim_used=mean_score(used, "ssim"),
        left_out_min_coverage=min((e["coverage"] for e in held), default=None),
        left_out_uncovered=uncovered,
        level=mesh.level,
        faces=len(mesh.faces),
        maps=maps,
        detail=detail,
        summary=f"{mesh.level} {mesh.texture_size}px {'+'.join(maps)}, {baked.coverage:.0%} of texels seen{quality}",
    )


def _detail_maps(
    high_file: Path, mesh: UVMesh, texels: Texels, params: BakeParams, out: Path
) -> tuple[list[str], DetailFidelity | None]:
    """normal.png (a decimated level) and occlusion.png from the high-res surface; the level's fidelity."""
    import cv2
    import numpy as np
    import open3d as o3d

    from photoforge.qa.detail_fidelity import normal_errors, surface_deviation
    from photoforge.render.detail_views import detail_comparison
    from photoforge.texturing.detail_maps import bake_detail_maps, bake_occlusion
    from photoforge.texturing.tangents import HighResSurface

    with_normals = mesh.decimated and params.normal_map
    if not (with_normals or params.occlusion):
        return ["albedo"], None
    surface = o3d.io.read_triangle_mesh(high_file)
    high_vertices = np.asarray(surface.vertices)
    high = HighResSurface.of(high_vertices, np.asarray(surface.triangles))
    diagonal = float(np.linalg.norm(high_vertices.max(axis=0) - high_vertices.min(axis=0)))
    rays, distance = params.occlusion_rays, params.occlusion_distance * diagonal
    if not with_normals:
        cv2.imwrite(str(out / OCCLUSION_PNG), bake_occlusion(texels, high, rays=rays, distance=distance, seed=0))
        return ["albedo", "occlusion"], None
    baked = bake_detail_maps(
        texels, mesh, high=high, search=params.normal_search * diagonal, occlusion=params.occlusion,
        rays=rays, distance=distance, seed=0,
    )  # fmt: skip
    cv2.imwrite(str(out / NORMAL_PNG), cv2.cvtColor(baked.normal, cv2.COLOR_RGB2BGR))
    maps = ["albedo", "normal"]
    if baked.occlusion is not None:
        cv2.imwrite(str(out / OCCLUSION_PNG), baked.occlusion)
        maps.append("occlusion")
    errors = normal_errors(mesh, baked.normal, high=high)
    deviation = surface_deviation(mesh.vertices, mesh.faces, high=high.scene)
    picture = detail_comparison(mesh, baked.normal, high=high)
    cv2.imwrite(str(out / DETAIL_PNG), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    return maps, DetailFidelity(
        normal_error_own_deg=errors["own_deg"],
        normal_error_mapped_deg=errors["mapped_deg"],
        hausdorff=round(deviation["hausdorff"], 6),
        mean_distance=round(deviation["mean"], 6),
    )


STAGE = Stage("bake", inputs=BakeInputs, params=BakeParams, metrics=BakeMetrics, run=run)
