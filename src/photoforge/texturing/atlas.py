"""Which surface point each texel of the atlas shows: UV triangles rasterised by ray casting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photoforge.render.raycast import MeshScene
from photoforge.texturing.tangents import interpolate


@dataclass
class Texels:
    index: np.ndarray  # flat indices into the size x size texture
    face: np.ndarray  # the face each texel lies on
    position: np.ndarray  # N x 3 surface points
    normal: np.ndarray  # N x 3 unit face normals
    size: int
    barycentric: np.ndarray  # N x 3 weights of the face's vertices 0, 1, 2 (to interpolate vertex attributes)


def rasterise(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, size: int) -> Texels:
    """Texel centres inside UV triangles, with their 3D points: one ray per texel down onto the flat UV mesh."""
    flat = np.concatenate([uvs * size, np.zeros((len(uvs), 1))], axis=1).astype(np.float32)
    scene = MeshScene(flat, faces.astype(np.uint32))
    centres = np.arange(size, dtype=np.float32) + np.float32(0.5)
    rays = np.zeros((size * size, 6), np.float32)  # from (x, y, 1) straight down: row by row, as the texture
    rays[:, 0] = np.tile(centres, size)
    rays[:, 1] = np.repeat(centres, size)
    rays[:, 2], rays[:, 5] = 1.0, -1.0
    hits = scene.intersect(rays)
    index = np.nonzero(hits.hit)[0]
    face = hits.face[index].astype(np.int64)
    b = hits.barycentric[index]
    weights = np.concatenate([1 - b[:, :1] - b[:, 1:], b], axis=1).astype(np.float64)
    position = interpolate(vertices, faces, face, weights)
    corners = np.asarray(vertices, np.float64)[faces]  # normals per face (F), then per texel (N)
    face_normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    face_normal /= np.maximum(np.linalg.norm(face_normal, axis=1, keepdims=True), 1e-20)
    normal = face_normal[face]
    return Texels(index, face, position, normal, size, weights)
