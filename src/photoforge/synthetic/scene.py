"""An object in its surroundings, rendered by photoforge's ray casting: photos and object masks.

`MeshScene` holds one mesh, so the parts (the object, the printed planes, any props) are
concatenated and a hit's triangle id says which part it landed on. Shading is Lambert under one
fixed world light plus ambient, with cast shadows (an object on a table throws one, and a
reconstruction must not take it for part of the object), so every view sees the same radiance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from photoforge.camera.model import Camera
from photoforge.render.raycast import MeshScene

Albedo = Callable[[np.ndarray], np.ndarray]  # N x 3 world points -> N x 3 float albedo in [0, 1]


@dataclass(frozen=True, eq=False)
class Part:
    """One surface of the scene: its triangles, albedo, and whether normals are interpolated (curved)."""

    vertices: np.ndarray  # V x 3
    faces: np.ndarray  # F x 3
    albedo: Albedo
    vertex_normals: np.ndarray | None = None  # V x 3 for smooth shading, None for flat faces
    casts_shadow: bool = True  # False for a plane everything else stands in front of


class ObjectScene:
    """The object (part 0) and its surroundings, lit by one light with shadows."""

    def __init__(
        self, parts: list[Part], *, light: np.ndarray, background: tuple[float, float, float], ambient: float = 0.42
    ) -> None:
        self.parts = parts
        self.light = np.asarray(light, float) / np.linalg.norm(light)
        self.background = np.asarray(background, np.float32)
        self.ambient = ambient
        offsets = np.cumsum([0] + [len(p.vertices) for p in parts])
        self.face_starts = np.cumsum([0] + [len(p.faces) for p in parts])
        blockers = np.concatenate([p.vertices for p in parts if p.casts_shadow])
        margin = 1e-3
        self.occluders = (
            (blockers.min(axis=0) - margin).astype(np.float32),
            (blockers.max(axis=0) + margin).astype(np.float32),
        )
        self.mesh = MeshScene(
            np.concatenate([p.vertices for p in parts]),
            np.concatenate([p.faces + offset for p, offset in zip(parts, offsets, strict=False)]),
        )

    def render(self, camera: Camera, supersample: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """The RGB photo (H x W x 3 uint8) and the object's mask (H x W bool: over half the pixel is object)."""
        rays = camera.rays(supersample)
        hits = self.mesh.intersect(rays)
        index = np.flatnonzero(hits.hit)
        directions = rays[index, 3:]
        points = rays[index, :3] + hits.distance[index, None] * directions
        face = hits.face[index].astype(np.int64)
        normal = hits.normal[index]
        part_of = np.searchsorted(self.face_starts, face, side="right") - 1
        albedo = np.empty((len(index), 3), np.float32)
        for number, part in enumerate(self.parts):
            on = np.flatnonzero(part_of == number)
            if len(on) == 0:
                continue
            albedo[on] = part.albedo(points[on])
            if part.vertex_normals is not None:
                normal[on] = _interpolated(part, face[on] - self.face_starts[number], hits.barycentric[index[on]])
        facing = np.where((np.einsum("ij,ij->i", normal, directions) > 0)[:, None], -normal, normal)  # to the camera
        colour = np.empty((len(rays), 3), np.float32)
        colour[:] = self.background
        colour[index] = albedo * self._light(points, facing)[:, None]
        share = np.zeros(len(rays), np.float32)  # how much of each sample is object
        share[index[part_of == 0]] = 1.0
        shape, size = (camera.height * supersample, camera.width * supersample), (camera.width, camera.height)
        image = cv2.resize(colour.reshape(*shape, 3), size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(share.reshape(shape), size, interpolation=cv2.INTER_AREA) > 0.5
        return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), mask

    def _light(self, points: np.ndarray, facing: np.ndarray) -> np.ndarray:
        """Ambient plus Lambert where the light reaches: no part blocks a shadow ray from the point.

        Only the object and the props cast shadows (a plane blocks nothing in front of it), so only
        points whose ray towards the light passes their bounding box cast one.
        """
        light = self.light.astype(np.float32)
        lambert = np.clip(facing @ light, 0, None)
        enter = np.zeros(len(points), np.float32)
        leave = np.full(len(points), np.inf, np.float32)
        low, high = self.occluders
        for axis in range(3):  # the slab test, axis by axis
            coordinate = points[:, axis]
            if light[axis] == 0:  # parallel to the slab: in it or never
                leave[(coordinate < low[axis]) | (coordinate > high[axis])] = -np.inf
                continue
            near = (low[axis] - coordinate) / light[axis]
            far = (high[axis] - coordinate) / light[axis]
            np.maximum(enter, np.minimum(near, far), out=enter)
            np.minimum(leave, np.maximum(near, far), out=leave)
        test = np.flatnonzero((lambert > 0) & (leave >= enter))
        rays = np.empty((len(test), 6), np.float32)
        rays[:, :3] = points[test] + np.float32(2e-4) * facing[test]
        rays[:, 3:] = light
        lambert[test] *= ~self.mesh.intersect(rays).hit
        return self.ambient + (1 - self.ambient) * lambert


def _interpolated(part: Part, faces: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
    """Unit normals mixed from the hit triangles' vertex normals (open3d's u, v weigh vertices 1 and 2)."""
    assert part.vertex_normals is not None
    corners = part.vertex_normals[part.faces[faces]]  # N x 3 x 3
    u, v = barycentric[:, :1], barycentric[:, 1:]
    normal = (1 - u - v) * corners[:, 0] + u * corners[:, 1] + v * corners[:, 2]
    return (normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)).astype(np.float32)
