"""Stage bake: an albedo texture from the photos, and honest quality numbers from left-out views.

The bake itself is photoforge.texturing.bake (per texel the views that see it inside the object:
the user's masks, else the mesh's silhouette, less a band along the edge; per face the best view,
levelled and blended). Every `leave_out_every`-th view is not used, and the textured mesh rendered
from it is compared with its photo (photoforge.qa.baked_views: PSNR, SSIM inside the silhouette and
the user's mask, and the share of what its depth map saw that the mesh covers).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field

from photoforge.layout import BAKE_JSON, DepthViews, Frames, UVMesh, world_to_asset
from photoforge.metrics import BakeMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult
from photoforge.store import write_json

log = logging.getLogger("photoforge")


class BakeParams(StageParams):
    full_resolution: bool = Field(False, description="bake from the original photos, not the working frames")
    leave_out_every: int = Field(8, ge=0, description="every n-th view is held out for evaluation (0: none)")
    smoothness: float = Field(0.3, ge=0.0, description="penalty for a face's view differing from a neighbour's")
    blend: float = Field(0.15, ge=0.0, le=1.0, description="weight of the other views blended into the chosen one")
    min_cos: float = Field(0.1, ge=0.0, lt=1.0, description="ignore views seeing a face more obliquely than this")
    levelling: bool = Field(True, description="level colour and exposure across views")
    max_eval_views: int = Field(4, ge=0, description="views used for the bake that are also scored")
    mask_erode_px: int = Field(
        3,
        ge=0,
        le=64,
        description="px along a view's object outline (the user's mask, else the mesh's silhouette) that colour "
        "a texel only when no view sees it further inside; 0: the whole mask, no silhouette",
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
    )
    settings = BakeSettings(params.smoothness, params.blend, params.min_cos, params.levelling)
    baked = bake_texture(texels, mesh, scene, sources, settings, progress)
    write_maps(out, baked)
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
        summary=f"{mesh.texture_size}px, {baked.coverage:.0%} of texels seen{quality}",
    )


STAGE = Stage("bake", inputs=BakeInputs, params=BakeParams, metrics=BakeMetrics, run=run)
