"""The bake: an albedo texture for a uv-mapped mesh from posed photos.

Per texel: its surface point, the views that see it (ray casting against the mesh) inside the
object (texturing.object_masks: a pixel near a view's outline only where no view sees the texel
well inside), each view's score (viewing angle, pixel density, sharpness). Per face: the best
view, smoothed over neighbours (ICM). Views are levelled with one RGB gain each; texel colours
blend the chosen view with the others (weight `blend`); unseen texels are inpainted and charts dilated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pycolmap

from photoforge.camera.model import Camera, camera_in_frame
from photoforge.errors import StageError
from photoforge.geometry.mvs.view_masks import read_artefact_mask, view_mask
from photoforge.layout import ALBEDO_PNG, COVERAGE_PNG, SPARSE_DIR, UNDISTORTED
from photoforge.texturing.atlas import Texels
from photoforge.texturing.fill import fill_and_dilate
from photoforge.texturing.levelling import view_gains
from photoforge.texturing.object_masks import BAND, OUTSIDE, level_at, object_levels
from photoforge.texturing.selection import face_adjacency, select_views
from photoforge.texturing.sources import PhotoSource, original_source, undistorted_source

if TYPE_CHECKING:
    from photoforge.layout import DepthViewRecord, Frame, Frames, UVMesh
    from photoforge.render.raycast import MeshScene
    from photoforge.stage import Progress


@dataclass(frozen=True)
class BakeSettings:
    smoothness: float  # penalty for a face's view differing from a neighbour's
    blend: float  # weight of the other views blended into the chosen one
    min_cos: float  # views seeing a face more obliquely than this are ignored
    levelling: bool  # level colour and exposure across views


@dataclass(frozen=True)
class Baked:
    texture: np.ndarray  # size x size x 3 uint8, unseen texels inpainted, charts dilated
    seen: np.ndarray  # size x size bool: texels some view saw
    charts: np.ndarray  # size x size bool: texels inside a chart
    coverage: float  # share of the charts' texels some view saw
    gains: np.ndarray  # views x 3
    labels: np.ndarray  # per face: the index of its view, -1 where none sees it


def split_views(count: int, every: int) -> tuple[list[int], list[int]]:
    """(bake views, left-out views): every n-th view, starting mid-way, is left out."""
    if every <= 1 or count < 3:
        return list(range(count)), []
    left_out = [i for i in range(count) if i % every == every // 2]
    return [i for i in range(count) if i not in left_out], left_out


def photo_sources(
    frames: Frames,
    records: list[DepthViewRecord],
    bake_ids: list[int],
    *,
    capture: Path,
    poses_dir: Path,
    depth_dir: Path,
    world_to_asset: np.ndarray,
    full_resolution: bool,
    scene: MeshScene,
    erode_px: int,
) -> list[PhotoSource]:
    """The views to bake from, posed in the asset frame: the undistorted frames of the depth artefact,
    or (full_resolution) the original photos with the SfM camera, distortion kept. Each with its object
    mask: the user's (undistorted alike), else the mesh's silhouette; its edge band `erode_px` wide."""
    kept = {f.frame: f for f in frames.kept}
    model = pycolmap.Reconstruction(str(poses_dir / SPARSE_DIR)) if full_resolution else None
    sources = []
    for i in bake_ids:
        record = records[i]
        assert record.camera is not None  # a usable view has its camera
        view = Camera.from_json(record.camera)
        pose = camera_in_frame(view, world_to_asset)
        frame = kept.get(record.name)
        if model is not None and frame is not None and frame.kind == "photo":
            image = model.find_image_with_name(record.name)
            if image is None:
                raise StageError("bake", f"{record.name} is not in the sparse model", poses_dir / SPARSE_DIR)
            source = original_source(capture / frame.source, image.camera, pose)
            # the SfM camera is at the working frame's size, as the user's mask is
            user = _frame_mask(frames, frame)
            source.mask = object_levels(scene, pose, image.camera, user=user, erode_px=erode_px)
        else:
            source = undistorted_source(depth_dir / UNDISTORTED / "images" / record.name, pose)
            height, width = source.image.shape[:2]
            user = view_mask(depth_dir / UNDISTORTED, record.name, width, height)
            source.mask = object_levels(scene, source.camera, None, user=user, erode_px=erode_px)
        sources.append(source)
    if not sources:
        raise StageError("bake", "no view left to bake from (all left out)", depth_dir)
    return sources


def _frame_mask(frames: Frames, frame: Frame) -> np.ndarray | None:
    """The user's mask of a working frame (ingest's, at the frame's size), None where it has none."""
    if frame.mask is None:
        return None
    return read_artefact_mask(frames.dir / frame.mask, stage="bake", artefact="ingest") > 0


def bake_texture(
    texels: Texels,
    mesh: UVMesh,
    scene: MeshScene,
    sources: list[PhotoSource],
    settings: BakeSettings,
    progress: Progress,
) -> Baked:
    """Observe every texel in every view, choose a view per face, level and blend, fill and dilate."""
    vertices, faces, size = mesh.vertices, mesh.faces, mesh.texture_size
    extent = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))
    colours = np.zeros((len(texels.index), len(sources), 3), np.float32)
    scores = np.zeros((len(texels.index), len(sources)), np.float32)
    band = np.zeros((len(texels.index), len(sources)), bool)
    for v, source in enumerate(sources):
        colours[:, v], scores[:, v], band[:, v] = observe(source, texels, scene, extent, settings.min_cos)
        progress(v + 1, len(sources) + 2, f"{source.name}: sees {np.count_nonzero(scores[:, v])} texels")
    inside_somewhere = np.count_nonzero((scores > 0) & ~band, axis=1, keepdims=True) > 0
    scores[band & inside_somewhere] = 0  # near an outline only where no view sees the texel well inside

    face_scores = np.zeros((len(faces), len(sources)))
    for v in range(len(sources)):
        face_scores[:, v] = np.bincount(texels.face, weights=scores[:, v], minlength=len(faces))
    labels = select_views(face_scores, face_adjacency(vertices, faces), settings.smoothness)
    visible = scores > 0
    gains = view_gains(colours, visible) if settings.levelling else np.ones((len(sources), 3))
    texel_label = labels[texels.face]
    weights = scores * settings.blend
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
    seen, in_charts = known_map.reshape(size, size), charts.reshape(size, size)
    texture = fill_and_dilate(texture, seen, in_charts, padding=4)
    coverage = float(known.mean()) if len(known) else 0.0
    return Baked(texture, seen, in_charts, coverage, gains, labels)


def write_maps(out: Path, baked: Baked) -> None:
    """albedo.png, and coverage.png: white where a view saw the texel, grey in charts where none did."""
    cv2.imwrite(str(out / ALBEDO_PNG), cv2.cvtColor(baked.texture, cv2.COLOR_RGB2BGR))
    coverage = np.where(baked.seen, 255, np.where(baked.charts, 96, 0)).astype(np.uint8)
    cv2.imwrite(str(out / COVERAGE_PNG), coverage)


def observe(
    source: PhotoSource, texels: Texels, scene: MeshScene, extent: float, min_cos: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour and score of every texel in one view (score 0: not seen, or outside the object), and
    whether it was seen in the band along the object's outline."""
    n = len(texels.index)
    colour = np.zeros((n, 3), np.float32)
    score = np.zeros(n, np.float32)
    band = np.zeros(n, bool)
    pixels, z = source.project(texels.position)
    height, width = source.image.shape[:2]
    inside = (z > 0) & (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
    to_camera = source.centre - texels.position
    distance = np.linalg.norm(to_camera, axis=1)
    cos = np.abs(np.sum(texels.normal * to_camera, axis=1)) / np.maximum(distance, 1e-12)
    candidates = np.nonzero(inside & (cos >= min_cos))[0]
    if len(candidates) == 0:
        return colour, score, band
    seen = candidates[scene.visible(source.centre, texels.position[candidates], tolerance=1e-3 * extent)]
    level = level_at(source.mask, pixels[seen], width, height)
    seen, level = seen[level != OUTSIDE], level[level != OUTSIDE]
    colour[seen] = source.sample(pixels[seen])
    # viewing angle x pixel density (px per scene unit) x image sharpness (relative, sqrt-damped)
    density = source.focal / np.maximum(distance[seen], 1e-12)
    score[seen] = cos[seen] * density * np.sqrt(max(source.sharpness, 1e-3))
    band[seen] = level == BAND
    return colour, score, band
