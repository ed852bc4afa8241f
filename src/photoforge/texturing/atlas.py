"""Which surface point each texel of the atlas shows: UV triangles rasterised by ray casting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photoforge.render.raycast import MeshScene


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
    x, y = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    origins = np.stack([x.ravel(), y.ravel(), np.ones(size * size)], axis=1)
    directions = np.broadcast_to([0.0, 0.0, -1.0], origins.shape)
    hits = scene.intersect(np.concatenate([origins, directions], axis=1))
    index = np.nonzero(hits.hit)[0]
    face = hits.face[index].astype(np.int64)
    b = hits.barycentric[index]
    corners = vertices[faces[face]]  # N x 3 x 3
    position = (1 - b[:, :1] - b[:, 1:]) * corners[:, 0] + b[:, :1] * corners[:, 1] + b[:, 1:] * corners[:, 2]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-20)
    weights = np.concatenate([1 - b[:, :1] - b[:, 1:], b], axis=1).astype(np.float64)
    return Texels(index, face, position.astype(np.float64), normal, size, weights)
