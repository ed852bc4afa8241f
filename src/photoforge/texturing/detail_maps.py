"""Detail maps of a low-poly level baked from the high-res surface: tangent-space normals and ambient occlusion.

Correspondence: from each texel's low-poly point p along its interpolated vertex normal n, two rays
look for the high-res surface within `search` (one from p + search n inwards, one from p - search n
outwards); the hit nearer to p wins. Both maps read the high-res surface there: its interpolated
vertex normals, expressed in the texel's tangent frame (`tangents.tangent_frames`, as a glTF viewer
decodes it), and its ambient occlusion, computed once per high-res vertex (cosine-weighted rays from
the vertex) and interpolated, so the ray count is vertices x rays, not texels x rays. Texels whose
rays find nothing get a flat normal (0, 0, 1) and the occlusion of their closest high-res point.

Both maps are encoded glTF's way (normalTexture: (x + 1) / 2 per channel; occlusionTexture: 255 =
unoccluded) with empty texels neutral and charts dilated into their padding, so mipmaps never average
a chart with what lies between charts: each padding texel copies its nearest chart texel
(`fill.dilate_charts`, as the albedo's padding does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photoforge.render.raycast import barycentric_weights
from photoforge.texturing.atlas import Texels
from photoforge.texturing.fill import dilate_charts
from photoforge.texturing.tangents import (
    HighResSurface,
    ShadedMesh,
    interpolate,
    perpendicular,
    tangent_frames,
)

FLAT = np.array([0.0, 0.0, 1.0])
RAY_CHUNK = 1 << 20  # occlusion rays cast at once (24 MiB of float32 rays)
GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))


@dataclass(frozen=True)
class SurfaceHits:
    """Per texel (texels' order): where the high-res surface lies along the low-poly normal."""

    hit: np.ndarray  # N bool
    face: np.ndarray  # N int64 high-res faces (0 where missed)
    barycentric: np.ndarray  # N x 3 weights of the high-res face's vertices 0, 1, 2
    offset: np.ndarray  # N signed distance along n from the texel's point to the hit (nan where missed)
    frame: tuple[np.ndarray, np.ndarray, np.ndarray]  # the texels' (t, b, n), each N x 3

    @property
    def hit_fraction(self) -> float:
        return float(self.hit.mean()) if len(self.hit) else 0.0


@dataclass(frozen=True)
class DetailMaps:
    normal: np.ndarray  # size x size x 3 uint8 (glTF normalTexture)
    occlusion: np.ndarray | None  # size x size uint8 (glTF occlusionTexture's R); None: not asked for
    tangent_normals: np.ndarray  # N x 3 float32, per texel
    hit_fraction: float  # share of texels whose rays found the high-res surface


def texel_frames(texels: Texels, low: ShadedMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each texel's (t, b, n) from the low-poly's vertex NORMAL and TANGENT, interpolated as a viewer does."""
    normal = interpolate(low.normals, low.faces, texels.face, texels.barycentric)
    tangent = interpolate(low.tangents, low.faces, texels.face, texels.barycentric)
    return tangent_frames(normal, tangent)


def find_surface(texels: Texels, low: ShadedMesh, *, high: HighResSurface, search: float) -> SurfaceHits:
    """The high-res surface nearest each texel's point along its interpolated normal, within `search`."""
    frame = texel_frames(texels, low)
    n = frame[2]
    p = texels.position
    inward = high.scene.intersect(np.concatenate([p + search * n, -n], axis=1))
    outward = high.scene.intersect(np.concatenate([p - search * n, n], axis=1))
    t_in = np.where(inward.hit & (inward.distance <= 2 * search), inward.distance, np.inf)
    t_out = np.where(outward.hit & (outward.distance <= 2 * search), outward.distance, np.inf)
    # signed offsets along n: +search - t from the outer ray, t - search from the inner one
    offset_in, offset_out = search - t_in, t_out - search
    use_out = np.abs(offset_out) < np.abs(offset_in)
    hit = np.isfinite(t_in) | np.isfinite(t_out)
    face = np.where(use_out, outward.face, inward.face).astype(np.int64)
    uv = np.where(use_out[:, None], outward.barycentric, inward.barycentric)
    face[~hit] = 0
    weights = barycentric_weights(uv)
    weights[~hit] = [1.0, 0.0, 0.0]
    offset = np.where(hit, np.where(use_out, offset_out, offset_in), np.nan)
    return SurfaceHits(hit, face, weights, offset, frame)


def tangent_space_normals(hits: SurfaceHits, high: HighResSurface) -> np.ndarray:
    """N x 3 float32 unit high-res normals at the hits in the texels' tangent frames; (0, 0, 1) where missed."""
    normal = high.normals_at(hits.face, hits.barycentric)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-20)
    t, b, n = hits.frame
    local = np.stack([np.sum(normal * t, axis=1), np.sum(normal * b, axis=1), np.sum(normal * n, axis=1)], axis=1)
    local /= np.maximum(np.linalg.norm(local, axis=1, keepdims=True), 1e-20)
    local[~hits.hit] = FLAT
    return local.astype(np.float32)


def encode_normal_map(values: np.ndarray, texels: Texels, size: int, padding: int) -> np.ndarray:
    """size x size x 3 uint8: (x, y, z) in [-1, 1] to (v + 1) / 2 * 255, empty texels (0, 0, 1), charts
    dilated `padding` texels into their surroundings."""
    encoded = np.clip(np.rint((np.asarray(values, np.float64) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    flat = np.rint((FLAT + 1.0) * 127.5).astype(np.uint8)
    texture = np.tile(flat, (size * size, 1))
    texture[texels.index] = encoded
    return _dilate(texture.reshape(size, size, 3), texels, size, padding)


def vertex_occlusion(
    high: HighResSurface, *, rays: int, distance: float, seed: int, offset: float | None = None
) -> np.ndarray:
    """V float32 in [0, 1] (1: unoccluded) per high-res vertex: the share of `rays` cosine-weighted
    hemisphere rays (a golden-angle spiral over the disk, turned and jittered per vertex) from the vertex,
    lifted `offset` along its normal (default: a tenth of the mean edge), that hit nothing within `distance`."""
    vertices = high.scene.vertices.astype(np.float64)
    normals = np.asarray(high.normals, np.float64)
    normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-20)
    if offset is None:
        corners = vertices[high.scene.faces.astype(np.int64)]
        offset = 0.1 * float(np.mean(np.linalg.norm(corners[:, 1] - corners[:, 0], axis=1))) if len(corners) else 0.0
    count = len(vertices)
    open_share = np.ones(count, np.float32)
    if count == 0 or rays <= 0:
        return open_share
    rng = np.random.default_rng(seed)
    k = np.arange(rays)
    per_chunk = max(1, RAY_CHUNK // rays)
    for start in range(0, count, per_chunk):
        stop = min(count, start + per_chunk)
        n = normals[start:stop]
        t = perpendicular(n)
        b = np.cross(n, t)
        turn = rng.uniform(0, 2 * np.pi, (stop - start, 1))
        radius = np.sqrt((k + rng.uniform(0, 1, (stop - start, rays))) / rays)  # one sample per equal-area ring
        angle = k * GOLDEN_ANGLE + turn
        x, y = radius * np.cos(angle), radius * np.sin(angle)
        z = np.sqrt(np.maximum(0.0, 1.0 - radius**2))
        direction = x[..., None] * t[:, None] + y[..., None] * b[:, None] + z[..., None] * n[:, None]
        origin = np.broadcast_to((vertices[start:stop] + offset * n)[:, None], direction.shape)
        cast = np.concatenate([origin, direction], axis=2).reshape(-1, 6).astype(np.float32)
        blocked = (high.scene.intersect(cast).distance < distance).reshape(stop - start, rays)
        open_share[start:stop] = 1.0 - blocked.mean(axis=1)
    return open_share


def occlusion_at(texels: Texels, hits: SurfaceHits | None, high: HighResSurface, occlusion: np.ndarray) -> np.ndarray:
    """N float per texel: per-vertex `occlusion` interpolated at the texel's high-res point (its ray hit,
    else its closest high-res point)."""
    values = np.empty(len(texels.index))
    missed = np.ones(len(texels.index), bool) if hits is None else ~hits.hit
    if hits is not None:
        found = hits.hit
        faces = high.scene.faces
        values[found] = interpolate(occlusion[:, None], faces, hits.face[found], hits.barycentric[found])[:, 0]
    if missed.any():
        nearest = high.scene.closest(texels.position[missed])
        values[missed] = interpolate(occlusion[:, None], high.scene.faces, nearest.face, nearest.barycentric)[:, 0]
    return values


def encode_occlusion(values: np.ndarray, texels: Texels, size: int, padding: int) -> np.ndarray:
    """size x size uint8, 255 = unoccluded (empty texels too), charts dilated `padding` texels."""
    texture = np.full(size * size, 255, np.uint8)
    texture[texels.index] = np.clip(np.rint(np.asarray(values) * 255.0), 0, 255).astype(np.uint8)
    return _dilate(texture.reshape(size, size), texels, size, padding)


def bake_occlusion(
    texels: Texels, high: HighResSurface, *, rays: int, distance: float, seed: int, padding: int = 4
) -> np.ndarray:
    """size x size uint8 ambient occlusion (255: unoccluded): per high-res vertex, interpolated at each
    texel's closest high-res point (a level that is the high-res surface itself: no normal map to share)."""
    occlusion = vertex_occlusion(high, rays=rays, distance=distance, seed=seed)
    return encode_occlusion(occlusion_at(texels, None, high, occlusion), texels, texels.size, padding)


def bake_detail_maps(
    texels: Texels,
    low: ShadedMesh,
    *,
    high: HighResSurface,
    search: float,
    rays: int = 32,
    distance: float,
    seed: int = 0,
    padding: int = 4,
    occlusion: bool = True,
) -> DetailMaps:
    """Both maps from one correspondence pass (`find_surface`): the encoded normal map and (`occlusion`)
    the occlusion map; without it, no occlusion rays are cast."""
    hits = find_surface(texels, low, high=high, search=search)
    normals = tangent_space_normals(hits, high)
    occluded = None
    if occlusion:
        per_vertex = vertex_occlusion(high, rays=rays, distance=distance, seed=seed)
        occluded = encode_occlusion(occlusion_at(texels, hits, high, per_vertex), texels, texels.size, padding)
    return DetailMaps(
        encode_normal_map(normals, texels, texels.size, padding),
        occluded,
        normals,
        hits.hit_fraction,
    )


def _dilate(texture: np.ndarray, texels: Texels, size: int, padding: int) -> np.ndarray:
    """The texture with its charts (the texels' cells) dilated into their padding (fill.dilate_charts)."""
    charts = np.zeros(size * size, bool)
    charts[texels.index] = True
    return dilate_charts(texture, charts.reshape(size, size), padding)
