"""Stage bake: an albedo texture from the photos, and honest quality numbers from left-out views.

Per texel: its surface point, the views that see it (ray casting against the mesh), each
view's score (viewing angle, pixel density, sharpness). Per face: the best view, smoothed
over neighbours (ICM). Views are levelled with one RGB gain each; texel colours blend the
chosen view with the others (weight `blend`); unseen texels are inpainted and charts dilated.
Every `leave_out_every`-th view is not used, and the textured mesh rendered from it is
compared with its photo (PSNR, SSIM inside the silhouette). A scored view also gets its coverage:
the share of what its depth map saw that the mesh covers, so a view the mesh misses fails rather
than dropping out of the mean (a view the mesh does not reach at all is scored over the whole image).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pycolmap
from pydantic import Field

from photoforge.camera.views import View
from photoforge.errors import StageError
from photoforge.geometry.mvs.depthmaps import load_view
from photoforge.qa.image_scores import masked_psnr, masked_ssim
from photoforge.render.raycast import MeshScene, sample_texture
from photoforge.stage import Progress, Stage, StageParams, StageResult, no_progress
from photoforge.stages.depth import UNDISTORTED, load_depth_views
from photoforge.stages.ingest import FRAMES_JSON
from photoforge.stages.mesh import load_transform
from photoforge.stages.poses import SPARSE_DIR
from photoforge.stages.uv import load_uv_mesh
from photoforge.store import ArtefactStore, write_json
from photoforge.texturing.atlas import Texels, rasterise
from photoforge.texturing.fill import fill_and_dilate
from photoforge.texturing.levelling import view_gains
from photoforge.texturing.selection import face_adjacency, select_views
from photoforge.texturing.sources import PhotoSource, original_source, to_asset, undistorted_source

STAGE = Stage("bake", version="2", libraries=("open3d", "opencv-python-headless", "scipy", "pycolmap", "numpy"))
ALBEDO_PNG = "albedo.png"
COVERAGE_PNG = "coverage.png"
BAKE_JSON = "bake.json"
EVAL_DIR = "eval"
MIN_VIEW_COVERAGE = 0.5  # a scored view whose depth-seen pixels the mesh covers less than this is not covered
MAX_PSNR = 100.0  # dB, for identical images: keeps every score finite (JSON, means)

log = logging.getLogger("photoforge")


class BakeParams(StageParams):
    full_resolution: bool = Field(False, description="bake from the original photos, not the working frames")
    leave_out_every: int = Field(8, ge=0, description="every n-th view is held out for evaluation (0: none)")
    smoothness: float = Field(0.3, ge=0.0, description="penalty for a face's view differing from a neighbour's")
    blend: float = Field(0.15, ge=0.0, le=1.0, description="weight of the other views blended into the chosen one")
    min_cos: float = Field(0.1, ge=0.0, lt=1.0, description="ignore views seeing a face more obliquely than this")
    levelling: bool = Field(True, description="level colour and exposure across views")
    max_eval_views: int = Field(4, ge=0, description="views used for the bake that are also scored")


def key_inputs(
    frames: StageResult, sparse: StageResult, depth: StageResult, mesh: StageResult, uv: StageResult
) -> dict[str, Any]:
    return {k: r.key for k, r in {"frames": frames, "poses": sparse, "depth": depth, "mesh": mesh, "uv": uv}.items()}


def execute(
    store: ArtefactStore,
    capture: Path,
    frames: StageResult,
    sparse: StageResult,
    depth: StageResult,
    mesh: StageResult,
    uv: StageResult,
    params: BakeParams,
    progress: Progress = no_progress,
) -> StageResult:
    inputs = key_inputs(frames, sparse, depth, mesh, uv)
    return STAGE.execute(
        store,
        params,
        inputs,
        lambda out: run(capture, frames.dir, sparse.dir, depth.dir, mesh.dir, uv.dir, out, params, progress),
    )


def split_views(count: int, every: int) -> tuple[list[int], list[int]]:
    """(bake views, left-out views): every n-th view, starting mid-way, is left out."""
    if every <= 1 or count < 3:
        return list(range(count)), []
    left_out = [i for i in range(count) if i % every == every // 2]
    return [i for i in range(count) if i not in left_out], left_out


def run(
    capture: Path,
    ingest_dir: Path,
    poses_dir: Path,
    depth_dir: Path,
    mesh_dir: Path,
    uv_dir: Path,
    out: Path,
    params: BakeParams,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    vertices, faces, uvs, size = load_uv_mesh(uv_dir)
    world_to_asset = load_transform(mesh_dir)
    records = load_depth_views(depth_dir)
    bake_ids, left_out = split_views(len(records), params.leave_out_every)
    scene = MeshScene(vertices, faces)
    extent = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))

    texels = rasterise(vertices, faces, uvs, size)
    progress(0, len(bake_ids) + 2, f"{len(texels.index)} texels, {len(bake_ids)} views")
    sources = _sources(capture, ingest_dir, poses_dir, depth_dir, records, bake_ids, world_to_asset, params)
    colours = np.zeros((len(texels.index), len(sources), 3), np.float32)
    scores = np.zeros((len(texels.index), len(sources)), np.float32)
    for v, source in enumerate(sources):
        colours[:, v], scores[:, v] = _observe(source, texels, scene, extent, params.min_cos)
        progress(v + 1, len(bake_ids) + 2, f"{source.name}: sees {np.count_nonzero(scores[:, v])} texels")

    face_scores = np.zeros((len(faces), len(sources)))
    for v in range(len(sources)):
        face_scores[:, v] = np.bincount(texels.face, weights=scores[:, v], minlength=len(faces))
    labels = select_views(face_scores, face_adjacency(vertices, faces), params.smoothness)
    visible = scores > 0
    gains = view_gains(colours, visible) if params.levelling else np.ones((len(sources), 3))
    texel_label = labels[texels.face]
    weights = scores * params.blend
    has_label = texel_label >= 0
    rows = np.nonzero(has_label)[0]
    weights[rows, texel_label[rows]] = scores[rows, texel_label[rows]]
    total = weights.sum(axis=1)
    known = total > 0
    blended = np.einsum("nv,nvc->nc", weights[known], colours[known] * gains[None].astype(np.float32))
    blended /= total[known][:, None]

    texture = np.zeros((size * size, 3), np.uint8)
    texture[texels.index[known]] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    texture = texture.reshape(size, size, 3)
    charts = np.zeros(size * size, bool)
    charts[texels.index] = True
    known_map = np.zeros(size * size, bool)
    known_map[texels.index[known]] = True
    texture = fill_and_dilate(texture, known_map.reshape(size, size), charts.reshape(size, size), padding=4)
    cv2.imwrite(str(out / ALBEDO_PNG), cv2.cvtColor(texture, cv2.COLOR_RGB2BGR))
    coverage = np.where(known_map, 255, np.where(charts, 96, 0)).astype(np.uint8).reshape(size, size)
    cv2.imwrite(str(out / COVERAGE_PNG), coverage)
    progress(len(bake_ids) + 1, len(bake_ids) + 2, "scoring against photos")

    evaluation = _evaluate(
        records, bake_ids, left_out, depth_dir, world_to_asset, scene, faces, uvs, texture, out, params
    )
    coverage_fraction = float(known.mean()) if len(known) else 0.0
    write_json(
        out / BAKE_JSON,
        {
            "views": [s.name for s in sources],
            "left_out": [records[i]["name"] for i in left_out],
            "gains": np.round(gains, 4).tolist(),
            "faces_per_view": np.bincount(labels[labels >= 0], minlength=len(sources)).tolist(),
            "evaluation": evaluation,
        },
    )
    held = [e for e in evaluation if e["left_out"]]
    uncovered = [e["name"] for e in held if e["coverage"] < MIN_VIEW_COVERAGE]
    if uncovered:
        log.warning(
            "bake: the mesh covers less than %.0f%% of left-out view(s) %s: the asset misses part of what they see",
            100 * MIN_VIEW_COVERAGE,
            ", ".join(uncovered),
        )
    metrics: dict[str, Any] = {
        "texture_size": size,
        "coverage": round(coverage_fraction, 4),
        "views_used": len(sources),
        "views_left_out": len(left_out),
        "faces_unseen": int((labels < 0).sum()),
        "psnr_left_out": _mean(held, "psnr"),
        "ssim_left_out": _mean(held, "ssim"),
        "psnr_used": _mean([e for e in evaluation if not e["left_out"]], "psnr"),
        "ssim_used": _mean([e for e in evaluation if not e["left_out"]], "ssim"),
        "left_out_min_coverage": min((e["coverage"] for e in held), default=None),
        "left_out_uncovered": uncovered,
    }
    quality = f", left-out PSNR {metrics['psnr_left_out']:.1f} dB" if held else ""
    quality += f", {len(uncovered)} left-out view(s) not covered by the mesh" if uncovered else ""
    metrics["summary"] = f"{size}px, {coverage_fraction:.0%} of texels seen{quality}"
    return metrics


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows]
    return round(float(np.mean(values)), 3) if values else None


def _sources(
    capture: Path,
    ingest_dir: Path,
    poses_dir: Path,
    depth_dir: Path,
    records: list[dict[str, Any]],
    bake_ids: list[int],
    world_to_asset: np.ndarray,
    params: BakeParams,
) -> list[PhotoSource]:
    frames = {f["frame"]: f for f in json.loads((ingest_dir / FRAMES_JSON).read_text())["frames"] if f["kept"]}
    model = pycolmap.Reconstruction(str(poses_dir / SPARSE_DIR)) if params.full_resolution else None
    sources = []
    for i in bake_ids:
        record = records[i]
        view = View.from_json(i, record["camera"])
        pose = to_asset(view.rotation, view.translation, world_to_asset)
        frame = frames.get(record["name"])
        if model is not None and frame is not None and frame["kind"] == "photo":
            image = model.find_image_with_name(record["name"])
            if image is None:
                raise StageError("bake", f"{record['name']} is not in the sparse model", poses_dir / SPARSE_DIR)
            sources.append(original_source(record["name"], capture / frame["source"], image.camera, pose))
        else:
            path = depth_dir / UNDISTORTED / "images" / record["name"]
            sources.append(undistorted_source(record["name"], path, view.k, view.width, view.height, pose))
    if not sources:
        raise StageError("bake", "no view left to bake from (all left out)", depth_dir)
    return sources


def _observe(
    source: PhotoSource, texels: Texels, scene: MeshScene, extent: float, min_cos: float
) -> tuple[np.ndarray, np.ndarray]:
    """Colour and score of every texel in one view (score 0: not seen)."""
    n = len(texels.index)
    colour = np.zeros((n, 3), np.float32)
    score = np.zeros(n, np.float32)
    pixels, z = source.project(texels.position)
    height, width = source.image.shape[:2]
    inside = (z > 0) & (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
    to_camera = source.centre - texels.position
    distance = np.linalg.norm(to_camera, axis=1)
    cos = np.abs(np.sum(texels.normal * to_camera, axis=1)) / np.maximum(distance, 1e-12)
    candidates = np.nonzero(inside & (cos >= min_cos))[0]
    if len(candidates) == 0:
        return colour, score
    seen = candidates[scene.visible(source.centre, texels.position[candidates], tolerance=1e-3 * extent)]
    colour[seen] = source.sample(pixels[seen])
    # viewing angle x pixel density (px per scene unit) x image sharpness (relative, sqrt-damped)
    density = source.focal / np.maximum(distance[seen], 1e-12)
    score[seen] = cos[seen] * density * np.sqrt(max(source.sharpness, 1e-3))
    return colour, score


def _evaluate(
    records: list[dict[str, Any]],
    bake_ids: list[int],
    left_out: list[int],
    depth_dir: Path,
    world_to_asset: np.ndarray,
    scene: MeshScene,
    faces: np.ndarray,
    uvs: np.ndarray,
    texture: np.ndarray,
    out: Path,
    params: BakeParams,
) -> list[dict[str, Any]]:
    """Render the textured mesh where photos were taken; PSNR/SSIM inside the silhouette, and coverage.

    Coverage is the share of the view's depth-valid pixels (what the depth stage reconstructed there)
    that the mesh covers; with no valid depth, 1 when the mesh shows at all, else 0. A view the mesh
    does not reach is scored over the whole image (its render is black): never left out of the means.
    """
    chosen = [(i, True) for i in left_out] + [(i, False) for i in bake_ids[: params.max_eval_views]]
    face_uvs = uvs[faces]
    (out / EVAL_DIR).mkdir(exist_ok=True)
    results = []
    for i, is_left_out in chosen:
        record = records[i]
        view = View.from_json(i, record["camera"])
        rotation, translation = to_asset(view.rotation, view.translation, world_to_asset)
        hits = scene.cast(view.k, rotation, translation, view.width, view.height)
        maps = load_view(depth_dir / record["map"])
        photo = maps["color"]
        render = sample_texture(hits, face_uvs, texture)
        seen = maps["depth"] > 0
        coverage = float((hits.mask & seen).sum() / seen.sum()) if seen.any() else float(hits.mask.any())
        mask = hits.mask if hits.mask.any() else np.ones_like(hits.mask)
        side = np.concatenate([photo, render], axis=1)
        name = f"{i:04d}.jpg"
        cv2.imwrite(str(out / EVAL_DIR / name), cv2.cvtColor(side, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
        results.append(
            {
                "name": record["name"],
                "left_out": is_left_out,
                "psnr": round(min(masked_psnr(photo, render, mask), MAX_PSNR), 3),
                "ssim": round(_finite(masked_ssim(photo, render, mask)), 4),
                "silhouette_fraction": round(float(hits.mask.mean()), 4),
                "coverage": round(coverage, 4),
                "side_by_side": f"{EVAL_DIR}/{name}",
            }
        )
    return results


def _finite(value: float) -> float:
    """SSIM is NaN when the eroded silhouette is empty (a sliver of mesh): that scores as 0, not as missing."""
    return value if np.isfinite(value) else 0.0
