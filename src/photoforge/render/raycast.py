"""CPU rendering by ray casting (open3d RaycastingScene): the one place photoforge casts rays.

`MeshScene` holds one triangle mesh and answers every ray question photoforge asks: what a
`Camera` sees (turntable frames, bake evaluation, synthetic photos in the tests), which points
a camera sees unoccluded (bake, F-score visibility), what arbitrary rays hit (UV rasterising),
and how far points lie from the surface. About 60 ms per 1280x720 frame against 100k triangles
on 2 cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np
import open3d as o3d

from photoforge.camera.model import Camera

if TYPE_CHECKING:
    import pycolmap


@dataclass
class RayHits:
    """What each of N rays hits first."""

    distance: np.ndarray  # N float32 along the (unit) direction, inf where the ray misses
    face: np.ndarray  # N uint32 triangle ids (open3d's invalid id where missed)
    barycentric: np.ndarray  # N x 2 (open3d's u, v: weights of vertices 1 and 2)
    normal: np.ndarray  # N x 3 face normals

    @property
    def hit(self) -> np.ndarray:
        return np.isfinite(self.distance)


@dataclass
class Hits:
    """What a camera sees, per pixel (H x W: the camera's size times the supersampling)."""

    mask: np.ndarray  # H x W bool
    face: np.ndarray  # H x W int (valid where mask)
    barycentric: np.ndarray  # H x W x 2 (open3d's u, v: weights of vertices 1 and 2)
    depth: np.ndarray  # ray distance (0 where missed)
    normal: np.ndarray  # H x W x 3 face normals
    rays: np.ndarray = field(repr=False)  # (H W) x 6 float32: origin, unit direction

    def points(self) -> np.ndarray:
        """World points of the hits (N x 3 float32, in the order of `mask`'s true pixels)."""
        hit = self.mask.ravel()
        rays = self.rays[hit]
        return rays[:, :3] + self.depth.ravel()[hit, None] * rays[:, 3:]


@dataclass
class SurfacePoints:
    """The closest surface point of each of N query points."""

    point: np.ndarray  # N x 3
    face: np.ndarray  # N int64
    barycentric: np.ndarray  # N x 3 weights of the face's vertices 0, 1, 2


def barycentric_weights(uv: np.ndarray) -> np.ndarray:
    """N x 3 weights of a face's vertices 0, 1, 2 from open3d's N x 2 (weights of vertices 1 and 2)."""
    uv = np.asarray(uv, np.float64)
    return np.concatenate([1.0 - uv[:, :1] - uv[:, 1:], uv], axis=1)


class MeshScene:
    """One mesh in a ray-casting scene, cast from pinhole cameras (COLMAP pixel convention)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        self.vertices = np.asarray(vertices, np.float32)
        self.faces = np.asarray(faces, np.uint32)
        self.scene = o3d.t.geometry.RaycastingScene()
        self.scene.add_triangles(o3d.core.Tensor(self.vertices), o3d.core.Tensor(self.faces))

    def intersect(self, rays: np.ndarray) -> RayHits:
        """First hits of N rays given as N x 6 (origin, unit direction)."""
        result = self.scene.cast_rays(o3d.core.Tensor(np.ascontiguousarray(rays, np.float32)))
        return RayHits(
            result["t_hit"].numpy(),
            result["primitive_ids"].numpy(),
            result["primitive_uvs"].numpy(),
            result["primitive_normals"].numpy(),
        )

    def cast(self, camera: Camera, supersample: int = 1) -> Hits:
        """One ray per pixel of `camera` (`supersample`^2 per pixel: an image that many times larger)."""
        width, height = camera.width * supersample, camera.height * supersample
        rays = camera.rays(supersample)
        result = self.intersect(rays)
        t_hit = result.distance.reshape(height, width)
        mask = np.isfinite(t_hit)
        face = result.face.reshape(height, width).astype(np.int64)
        face[~mask] = 0
        return Hits(
            mask,
            face,
            result.barycentric.reshape(height, width, 2),
            np.where(mask, t_hit, np.float32(0)),
            result.normal.reshape(height, width, 3),
            rays,
        )

    def silhouette(self, camera: Camera, lens: pycolmap.Camera | None = None) -> np.ndarray:
        """The pixels the mesh covers (H x W bool): `camera`'s pinhole pixels, or `lens`'s (a COLMAP camera
        at its own size, distortion kept) from `camera`'s pose."""
        return np.isfinite(self.distances(camera, lens))

    def distances(self, camera: Camera, lens: pycolmap.Camera | None = None) -> np.ndarray:
        """Ray distance to the mesh per pixel (H x W float32, inf where it misses): `camera`'s pinhole
        pixels, or `lens`'s (a COLMAP camera at its own size, distortion kept) from `camera`'s pose."""
        if lens is None:
            return self.intersect(camera.rays()).distance.reshape(camera.height, camera.width)
        u, v = np.meshgrid(np.arange(lens.width) + 0.5, np.arange(lens.height) + 0.5)
        normalised = np.asarray(lens.cam_from_img(np.stack([u.ravel(), v.ravel()], axis=1)))
        directions = np.concatenate([normalised, np.ones((len(normalised), 1))], axis=1)
        directions = directions @ camera.cam_from_world.rotation
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        rays = np.concatenate([np.broadcast_to(camera.centre, directions.shape), directions], axis=1)
        return self.intersect(rays).distance.reshape(lens.height, lens.width)

    def visible(self, centre: np.ndarray, points: np.ndarray, tolerance: float, relative: float = 0.0) -> np.ndarray:
        """Which points a camera at `centre` sees: no surface nearer than their distance d less
        `relative` d + `tolerance` (nothing of the mesh in between)."""
        direction = points - centre
        distance = np.linalg.norm(direction, axis=1)
        rays = np.concatenate([np.broadcast_to(centre, points.shape), direction / distance[:, None]], axis=1)
        t_hit = self.intersect(rays).distance
        return t_hit >= distance * (1 - relative) - tolerance

    def closest(self, points: np.ndarray) -> SurfacePoints:
        """The closest point of the surface to each of N x 3 `points`, with its face and barycentrics."""
        result = self.scene.compute_closest_points(o3d.core.Tensor(np.asarray(points).astype(np.float32)))
        uv = result["primitive_uvs"].numpy().astype(np.float64)
        return SurfacePoints(
            result["points"].numpy().astype(np.float64),
            result["primitive_ids"].numpy().astype(np.int64),
            barycentric_weights(uv),
        )

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Unsigned distance from each of N x 3 points to the surface."""
        return self.scene.compute_distance(o3d.core.Tensor(np.asarray(points).astype(np.float32))).numpy()


def shade(
    hits: Hits,
    light: np.ndarray,
    albedo: np.ndarray | float = 200.0,
    ambient: float = 0.3,
    background: tuple[int, int, int] = (0, 0, 0),
) -> np.ndarray:
    """Lambert with a key light (world direction towards it) plus ambient, so shape reads.

    Two-sided: open meshes show their inside. `albedo` is 0-255, per pixel (H x W x 3) or one value.
    """
    lambert = np.clip(np.abs(hits.normal @ (light / np.linalg.norm(light))), 0, 1)
    value = (ambient + (1 - ambient) * lambert)[..., None] * albedo
    colour = np.clip(value, 0, 255).astype(np.uint8)
    return np.where(hits.mask[..., None], colour, np.array(background, np.uint8))


def sample_texture(hits: Hits, face_uvs: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """Colour of each hit from a texture; face_uvs is F x 3 x 2 (glTF-style, v down from the top)."""
    tri = face_uvs[hits.face]  # H x W x 3 x 2
    b1, b2 = hits.barycentric[..., 0:1], hits.barycentric[..., 1:2]
    uv = (1 - b1 - b2) * tri[..., 0, :] + b1 * tri[..., 1, :] + b2 * tri[..., 2, :]
    height, width = texture.shape[:2]
    map_x = (uv[..., 0] * width - 0.5).astype(np.float32)
    map_y = (uv[..., 1] * height - 0.5).astype(np.float32)
    colour = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.where(hits.mask[..., None], colour, 0).astype(np.uint8)
