"""Vertex normals and MikkTSpace-style tangent frames for normal-mapped, uv-mapped meshes (glTF's way).

`vertex_normals` weights each face's normal by its corner angle and welds vertices that share a
position first, so a mesh split at uv seams still shades smoothly across them: one function for the
GLB's NORMAL and for the high-res surface a normal map is baked from.

`vertex_tangents` follows MikkTSpace as glTF tools run it (@gltf-transform/functions `tangents()`
with the `mikktspace` WASM port): per face the direction of increasing u (Lengyel), projected off
each corner's vertex normal, normalised, weighted by the corner angle and summed per vertex; faces
whose uv winding disagrees with the vertex's majority are left out, as MikkTSpace keeps mirrored
faces apart. w is the handedness: glTF's bitangent is w * cross(normal, tangent.xyz) and points
towards the top of the image (decreasing v in glTF's v-down uvs). gltf-transform feeds MikkTSpace
the v-down uvs and flips the w it returns (glTF-Sample-Models#174); computing with v up gives that
same w directly, which is what is done here.

`tangent_frames` is how a viewer turns the interpolated attributes into an orthonormal frame:
n normalised, t Gram-Schmidt against n, b = w cross(n, t). The baker, the QA and the preview
all decode through it, so what is baked is what is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from photoforge.render.raycast import MeshScene

UV_EPSILON = 1e-14  # |twice the signed uv area| below this: the face has no usable u direction
LENGTH_EPSILON = 1e-20
ROW_BLOCK = 1 << 16  # rows per block in per-row arithmetic over millions of texels (cache-sized temporaries)


class ShadedMesh(Protocol):
    """A mesh as a glTF viewer shades it: uv charts, vertex NORMAL and TANGENT (layout.UVMesh is one).

    Read-only members, so that frozen dataclasses such as UVMesh match it."""

    @property
    def vertices(self) -> np.ndarray: ...
    @property
    def faces(self) -> np.ndarray: ...
    @property
    def uvs(self) -> np.ndarray: ...  # glTF's: origin top-left, v down
    @property
    def normals(self) -> np.ndarray: ...
    @property
    def tangents(self) -> np.ndarray: ...  # V x 4, w the handedness


@dataclass(frozen=True)
class HighResSurface:
    """The surface maps are baked from: its ray-casting scene and its vertex normals."""

    scene: MeshScene
    normals: np.ndarray

    @classmethod
    def of(cls, vertices: np.ndarray, faces: np.ndarray) -> HighResSurface:
        return cls(MeshScene(vertices, faces), vertex_normals(vertices, faces))

    def normals_at(self, face: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Its interpolated vertex normals at points on faces `face` with barycentric `weights`."""
        return interpolate(self.normals, self.scene.faces, face, weights)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """V x 3 float32 unit normals: corner-angle-weighted face normals, summed over vertices at one position.

    Vertices no (non-degenerate) face touches get +Z.
    """
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    _, weld = np.unique(vertices, axis=0, return_inverse=True)
    weld = weld.ravel()
    corners = vertices[faces]  # F x 3 x 3
    face_normal = face_normals(corners)
    angles = corner_angles(corners)  # F x 3
    groups = weld[faces]  # F x 3
    count = int(weld.max()) + 1 if len(weld) else 0
    summed = np.zeros((count, 3))
    for c in range(3):
        for axis in range(3):
            summed[:, axis] += np.bincount(groups[:, c], weights=angles[:, c] * face_normal[:, axis], minlength=count)
    normals = summed[weld]
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 1e-12, normals / np.maximum(length, 1e-300), [0.0, 0.0, 1.0])
    return normals.astype(np.float32)


def vertex_tangents(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """V x 4 float32 glTF TANGENTs for uvs in glTF's convention (origin top-left, v down).

    xyz: unit, orthogonal to the vertex normal, along +u. w: +1 or -1, so that w * cross(normal, xyz)
    points up the image (-v). Vertices without a usable face (degenerate uvs, zero area) get any unit
    vector perpendicular to their normal and w = +1.
    """
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    uv = np.asarray(uvs, np.float64) * [1.0, -1.0]  # v up: MikkTSpace's handedness is then glTF's w
    normals = _unit(np.asarray(normals, np.float64))
    normals[np.linalg.norm(normals, axis=1) < 0.5] = [0.0, 0.0, 1.0]
    count = len(vertices)

    corners = vertices[faces]
    tex = uv[faces]
    d1, d2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    t1, t2 = tex[:, 1] - tex[:, 0], tex[:, 2] - tex[:, 0]
    signed_area = t1[:, 0] * t2[:, 1] - t1[:, 1] * t2[:, 0]
    orientation = np.where(signed_area > 0, 1.0, -1.0)
    along_u = (t2[:, 1:2] * d1 - t1[:, 1:2] * d2) * orientation[:, None]  # dP/du times |2 uv area|
    length = np.linalg.norm(along_u, axis=1)
    area = np.linalg.norm(np.cross(d1, d2), axis=1)
    usable = (np.abs(signed_area) > UV_EPSILON) & (length > LENGTH_EPSILON) & (area > LENGTH_EPSILON)
    along_u = along_u / np.maximum(length, LENGTH_EPSILON)[:, None]
    weight = corner_angles(corners) * usable[:, None]  # F x 3

    # handedness per vertex: the angle-weighted majority of its faces' uv windings (ties: +1)
    vote = np.zeros(count)
    for c in range(3):
        vote += np.bincount(faces[:, c], weights=weight[:, c] * orientation, minlength=count)
    w = np.where(vote < 0, -1.0, 1.0)

    summed = np.zeros((count, 3))
    for c in range(3):
        index = faces[:, c]
        n = normals[index]
        projected = _unit(along_u - n * np.sum(along_u * n, axis=1, keepdims=True))
        agrees = weight[:, c] * (orientation == w[index])
        for axis in range(3):
            summed[:, axis] += np.bincount(index, weights=agrees * projected[:, axis], minlength=count)
    tangent = summed - normals * np.sum(summed * normals, axis=1, keepdims=True)
    size = np.linalg.norm(tangent, axis=1, keepdims=True)
    missing = size[:, 0] <= 1e-9
    tangent = np.where(missing[:, None], perpendicular(normals), tangent / np.maximum(size, 1e-300))
    w[missing] = 1.0
    return np.concatenate([tangent, w[:, None]], axis=1).astype(np.float32)


def tangent_frames(normal: np.ndarray, tangent: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, b, n), each N x 3 float64 unit, from interpolated NORMAL (N x 3) and TANGENT (N x 4) as a glTF
    viewer builds them: n normalised, t Gram-Schmidt against n, b = sign(w) cross(n, t)."""
    normal, tangent = np.asarray(normal, np.float64), np.asarray(tangent, np.float64)
    frames = np.empty((3, len(normal), 3))
    for start in range(0, len(normal), ROW_BLOCK):  # cache-sized blocks: 2x faster on a texel atlas's rows
        rows = slice(start, start + ROW_BLOCK)
        frames[:, rows] = _block_frames(normal[rows], tangent[rows])
    return frames[0], frames[1], frames[2]


def _block_frames(normal: np.ndarray, tangent: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = _unit(normal)
    n[np.linalg.norm(n, axis=1) <= 0.5] = [0.0, 0.0, 1.0]
    t = tangent[:, :3] - n * np.sum(tangent[:, :3] * n, axis=1, keepdims=True)
    size = np.linalg.norm(t, axis=1, keepdims=True)
    t /= np.maximum(size, 1e-300)
    degenerate = size[:, 0] <= 1e-9  # few or none: their fallback is computed for them alone
    if degenerate.any():
        t[degenerate] = perpendicular(n[degenerate])
    w = np.where(tangent[:, 3] < 0, -1.0, 1.0)
    return t, w[:, None] * np.cross(n, t), n


def shading_normals(face: np.ndarray, weights: np.ndarray, low: ShadedMesh, normal_map: np.ndarray) -> np.ndarray:
    """N x 3 unit world normals a glTF viewer shades points of `low` with (on faces `face` at barycentric
    `weights`, N x 3) when its `normal_map` (H x W x 3 uint8, sampled bilinearly at the interpolated uv)
    is decoded through the interpolated tangent frame."""
    normal = interpolate(low.normals, low.faces, face, weights)
    t, b, n = tangent_frames(normal, interpolate(low.tangents, low.faces, face, weights))
    local = sample_bilinear(normal_map, interpolate(low.uvs, low.faces, face, weights)) / 127.5 - 1.0
    world = local[:, :1] * t + local[:, 1:2] * b + local[:, 2:3] * n
    return _unit(world)


def sample_bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """N x C float64 values of an H x W (x C) image at N x 2 uvs (glTF: origin top-left, v down), edges clamped."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    pixels = image.reshape(height, width, -1).astype(np.float64)
    x = np.clip(np.asarray(uv)[:, 0] * width - 0.5, 0, width - 1)
    y = np.clip(np.asarray(uv)[:, 1] * height - 0.5, 0, height - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), width - 2) if width > 1 else np.zeros(len(x), np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), height - 2) if height > 1 else np.zeros(len(y), np.int64)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = pixels[y0, x0] * (1 - fx) + pixels[y0, x1] * fx
    bottom = pixels[y1, x0] * (1 - fx) + pixels[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def interpolate(values: np.ndarray, faces: np.ndarray, face: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-vertex values (V x C) at points on faces `face` with barycentric `weights` (N x 3, vertices 0, 1, 2)."""
    values, weights, faces = np.asarray(values, np.float64), np.asarray(weights, np.float64), np.asarray(faces)
    out = np.empty((len(face), values.shape[1]))
    # rows a block at a time, a corner at a time: the temporaries stay in cache (a texel atlas's millions of
    # rows at once ran 2.3x slower, memory-bound), and an N x 3 x C gather is slower than three N x C ones
    for start in range(0, len(face), ROW_BLOCK):
        rows = slice(start, start + ROW_BLOCK)
        corner, weight, block = faces[face[rows]], weights[rows], out[rows]
        np.multiply(weight[:, :1], values[corner[:, 0]], out=block)
        block += weight[:, 1:2] * values[corner[:, 1]]
        block += weight[:, 2:] * values[corner[:, 2]]
    return out


def face_normals(corners: np.ndarray) -> np.ndarray:
    """F x 3 unit normals of triangles given as F x 3 x 3 corner positions (zero for degenerate ones)."""
    return _unit(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]))


def corner_angles(corners: np.ndarray) -> np.ndarray:
    """F x 3 interior angles of triangles given as F x 3 x 3 corner positions (0 for degenerate corners)."""
    angles = np.zeros(corners.shape[:2])
    for c in range(3):
        a = _unit(corners[:, (c + 1) % 3] - corners[:, c])
        b = _unit(corners[:, (c + 2) % 3] - corners[:, c])
        angles[:, c] = np.arccos(np.clip(np.sum(a * b, axis=1), -1.0, 1.0))
    degenerate = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    angles[degenerate <= LENGTH_EPSILON] = 0.0
    return angles


def perpendicular(normals: np.ndarray) -> np.ndarray:
    """Some unit vector perpendicular to each of N x 3 unit vectors."""
    normals = np.asarray(normals, np.float64)
    axis = np.zeros_like(normals)
    axis[np.arange(len(normals)), np.argmin(np.abs(normals), axis=1)] = 1.0
    return _unit(np.cross(normals, axis))


def _unit(vectors: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(length, LENGTH_EPSILON)
