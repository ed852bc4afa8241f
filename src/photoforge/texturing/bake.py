"""The bake: an albedo texture for a uv-mapped mesh from posed photos.

Per texel: its surface point, the views that see it (ray casting against the mesh) inside the
object (texturing.object_masks: a pixel near a view's outline only where no view sees the texel
well inside), each view's score (viewing angle, pixel density, sharpness). Per face: the best
view, smoothed over neighbours (ICM). Views are levelled with one RGB gain each; texel colours
blend the chosen view with the others (weight `blend`); unseen texels are inpainted and charts dilated.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
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
from photoforge.texturing.levelling import shared_sample, view_gains
from photoforge.texturing.object_masks import BAND, OUTSIDE, level_at, levels, object_levels
from photoforge.texturing.selection import face_adjacency, select_views
from photoforge.texturing.sources import PhotoSource, original_source, undistorted_source
from photoforge.texturing.view_depth import view_depth

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
    visibility_px: int = 0,
) -> list[PhotoSource]:
    """The views to bake from, posed in the asset frame: the undistorted frames of the depth artefact,
    or (full_resolution) the original photos with the SfM camera, distortion kept. Each with its object
    mask: the user's (undistorted alike), else the mesh's silhouette; its edge band `erode_px` wide.
    With `visibility_px`, each also gets the mesh's distances at that size (texturing.view_depth): the
    bake's visibility and, without a user mask, the silhouette; without it, both are cast at full size."""
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
            assert image.camera is not None  # every image of a model has its camera
            source = original_source(capture / frame.source, image.camera, pose)
            # the SfM camera is at the working frame's size, as the user's mask is
            user = _frame_mask(frames, frame)
            _mask_and_depth(source, scene, pose, image.camera, user=user, erode_px=erode_px, long_side=visibility_px)
        else:
            source = undistorted_source(depth_dir / UNDISTORTED / "images" / record.name, pose)
            height, width = source.image.shape[:2]
            user = view_mask(depth_dir / UNDISTORTED, record.name, width, height)
            _mask_and_depth(source, scene, source.camera, None, user=user, erode_px=erode_px, long_side=visibility_px)
        sources.append(source)
    if not sources:
        raise StageError("bake", "no view left to bake from (all left out)", depth_dir)
    return sources


def _mask_and_depth(
    source: PhotoSource,
    scene: MeshScene,
    view: Camera,
    lens: pycolmap.Camera | None,
    *,
    user: np.ndarray | None,
    erode_px: int,
    long_side: int,
) -> None:
    """Set `source`'s object mask levels and (long_side > 0) its distance buffer, cast as its image sees,
    whose hits are the silhouette when the user gave no mask (its band scaled to the buffer, at least a
    pixel). Without a buffer, the silhouette is cast as `view` (or `lens`) sees."""
    if long_side <= 0:
        source.mask = object_levels(scene, view, lens, user=user, erode_px=erode_px)
        return
    source.depth = view_depth(scene, source.camera, source.lens, long_side=long_side)
    if user is not None:
        source.mask = levels(user, erode_px)
    elif erode_px > 0:
        scale = source.depth.distance.shape[1] / source.depth.image_size[0]
        source.mask = levels(source.depth.silhouette, max(1, round(erode_px * scale)))


def _frame_mask(frames: Frames, frame: Frame) -> np.ndarray | None:
    """The user's mask of a working frame (ingest's, at the frame's size), None where it has none."""
    if frame.mask is None:
        return None
    return read_artefact_mask(frames.dir / frame.mask, stage="bake", artefact="ingest") > 0


@dataclass(frozen=True)
class Observation:
    """What one view sees of the texels: which, in what colour, how well, and whether near an outline."""

    index: np.ndarray  # texel rows the view sees inside the object
    colour: np.ndarray  # m x 3 uint8
    score: np.ndarray  # m float32, > 0 (0: not used, in the outline band where another view sees it inside)
    band: np.ndarray  # m bool: seen in the band along the object's outline

    def without(self, dropped: np.ndarray) -> Observation:
        """The same texels with the `dropped` ones (m bool) scored 0: nothing uses a texel at score 0
        (cheaper than gathering four arrays of millions of rows)."""
        return Observation(self.index, self.colour, np.where(dropped, np.float32(0), self.score), self.band)


def bake_texture(
    texels: Texels,
    mesh: UVMesh,
    scene: MeshScene,
    sources: list[PhotoSource],
    settings: BakeSettings,
    progress: Progress,
) -> Baked:
    """Observe every texel in every view, choose a view per face, level and blend, fill and dilate.

    Each view keeps only the texels it sees (sparse), so memory is texels seen x views, not a dense
    texels x views x colours array."""
    vertices, faces, size = mesh.vertices, mesh.faces, mesh.texture_size
    count = len(texels.index)
    extent = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))
    points = TexelPoints.of(texels)
    seen = []
    # numpy releases the GIL per array; rays (no buffer) are cast one view at a time, each on every core
    workers = (os.cpu_count() or 1) if all(source.depth is not None for source in sources) else 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        observed = pool.map(lambda source: observe(source, points, scene, extent, settings.min_cos), sources)
        for v, (source, view) in enumerate(zip(sources, observed, strict=True)):
            seen.append(view)
            progress(v + 1, len(sources) + 2, f"{source.name}: sees {len(view.index)} texels")
    seen = _drop_outline_band(seen, count)

    face_scores = np.zeros((len(faces), len(sources)))
    for v, view in enumerate(seen):
        face_scores[:, v] = np.bincount(texels.face[view.index], weights=view.score, minlength=len(faces))
    labels = select_views(face_scores, face_adjacency(vertices, faces), settings.smoothness)
    gains = _gains(seen, count) if settings.levelling else np.ones((len(sources), 3))
    texel_label = labels[texels.face]
    colour_sum = np.zeros((count, 3), np.float32)
    total = np.zeros(count, np.float32)
    for v, view in enumerate(seen):
        weight = view.score * np.where(texel_label[view.index] == v, np.float32(1), np.float32(settings.blend))
        colour_sum[view.index] += view.colour * (weight[:, None] * gains[v].astype(np.float32))
        total[view.index] += weight
    known = total > 0
    blended = colour_sum[known] / total[known][:, None]

    texel_colours = np.zeros((size * size, 3), np.uint8)
    texel_colours[texels.index[known]] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    texture = texel_colours.reshape(size, size, 3)
    charts = np.zeros(size * size, bool)
    charts[texels.index] = True
    known_map = np.zeros(size * size, bool)
    known_map[texels.index[known]] = True
    seen_map, in_charts = known_map.reshape(size, size), charts.reshape(size, size)
    texture = fill_and_dilate(texture, seen_map, in_charts, padding=4)
    coverage = float(known.mean()) if len(known) else 0.0
    return Baked(texture, seen_map, in_charts, coverage, gains, labels)


def _drop_outline_band(seen: list[Observation], count: int) -> list[Observation]:
    """A texel seen near a view's object outline counts there only where no view sees it well inside."""
    inside_somewhere = np.zeros(count, bool)
    for view in seen:
        inside_somewhere[view.index[~view.band]] = True
    return [view.without(view.band & inside_somewhere[view.index]) for view in seen]


def _gains(seen: list[Observation], count: int) -> np.ndarray:
    """Per-view RGB gains (texturing.levelling) over a sample of the texels that several views colour."""
    used = [view.score > 0 for view in seen]
    views = np.zeros(count, np.int32)
    for view, use in zip(seen, used, strict=True):
        views[view.index[use]] += 1
    pick = shared_sample(views)
    row = np.full(count, -1, np.int64)
    row[pick] = np.arange(len(pick))
    colours = np.zeros((len(pick), len(seen), 3), np.float32)
    visible = np.zeros((len(pick), len(seen)), bool)
    for v, (view, use) in enumerate(zip(seen, used, strict=True)):
        at = row[view.index]
        picked = (at >= 0) & use
        colours[at[picked], v] = view.colour[picked]
        visible[at[picked], v] = True
    return view_gains(colours, visible)


def write_maps(out: Path, baked: Baked) -> None:
    """albedo.png, and coverage.png: white where a view saw the texel, grey in charts where none did."""
    cv2.imwrite(str(out / ALBEDO_PNG), cv2.cvtColor(baked.texture, cv2.COLOR_RGB2BGR))
    coverage = np.where(baked.seen, 255, np.where(baked.charts, 96, 0)).astype(np.uint8)
    cv2.imwrite(str(out / COVERAGE_PNG), coverage)


@dataclass(frozen=True)
class TexelPoints:
    """The texels' points and normals in float32, as rows of coordinates (3 x N: each coordinate
    contiguous, which every view's arithmetic reads), and normal . point."""

    position: np.ndarray  # 3 x N float32
    normal: np.ndarray  # 3 x N float32
    normal_dot_position: np.ndarray  # N float32

    @classmethod
    def of(cls, texels: Texels) -> TexelPoints:
        position = np.ascontiguousarray(texels.position.T, np.float32)
        normal = np.ascontiguousarray(texels.normal.T, np.float32)
        return cls(position, normal, np.einsum("cn,cn->n", normal, position))


def observe(source: PhotoSource, points: TexelPoints, scene: MeshScene, extent: float, min_cos: float) -> Observation:
    """The texels one view sees inside the object, their colours and scores (viewing angle x pixel
    density x sharpness), and whether each was seen in the band along the object's outline.

    The tests (in frame, unoccluded, inside the object) are combined before the texels are gathered
    once: each gather of millions of rows costs as much as a test."""
    pose = source.camera.cam_from_world
    cam = pose.rotation.astype(np.float32) @ points.position + pose.translation.astype(np.float32)[:, None]
    distance = np.sqrt(np.einsum("cn,cn->n", cam, cam))
    facing = source.centre.astype(np.float32) @ points.normal - points.normal_dot_position
    cos = np.abs(facing) / np.maximum(distance, 1e-12)
    keep = (cam[2] > 1e-9) & (cos >= min_cos)
    with np.errstate(divide="ignore", invalid="ignore"):  # points behind the camera: not kept
        pixels = source.image_points(cam)
    height, width = source.image.shape[:2]
    x, y = pixels[:, 0], pixels[:, 1]
    keep &= (x >= 0) & (x < width) & (y >= 0) & (y < height)
    pixels[~keep] = 0.0  # behind the camera a pixel may be NaN, which no buffer or mask can be read at
    tolerance = 1e-3 * extent
    if source.depth is None:
        keep[keep] = scene.visible(source.centre, points.position[:, keep].T, tolerance=tolerance)
    else:
        keep &= source.depth.sees(pixels, distance, cos, tolerance=tolerance)
    level = level_at(source.mask, pixels, width, height)
    keep &= level != OUTSIDE
    rows = np.flatnonzero(keep)
    pixels, distance, cos, level = pixels[rows], distance[rows], cos[rows], level[rows]
    # viewing angle x pixel density (px per scene unit) x image sharpness (relative, sqrt-damped)
    score = cos * (source.focal * np.sqrt(max(source.sharpness, 1e-3)) / np.maximum(distance, 1e-12))
    return Observation(rows, source.sample(pixels), score.astype(np.float32), level == BAND)
