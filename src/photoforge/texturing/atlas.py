"""Which surface point each texel of the atlas shows: UV triangles rasterised by ray casting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photoforge.render.raycast import MeshScene, barycentric_weights
from photoforge.texturing.tangents import face_normals, interpolate


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
    weights = barycentric_weights(hits.barycentric[index])
    position = interpolate(vertices, faces, face, weights)
    normal = face_normals(np.asarray(vertices, np.float64)[faces])[face]  # per face (F), then per texel (N)
    return Texels(index, face, position, normal, size, weights)
