"""The camera: pinhole intrinsics and a pose named for the frames it maps, as pycolmap names it.

One type for every posed camera photoforge handles: registered photos, the cameras of depth maps
and splat training views, turntable orbits and ground truth. Poses are `Rigid3` transforms called
`b_from_a` (x_b = rotation @ x_a + translation): `cam_from_world` takes world points into the
camera frame (OpenCV axes: x right, y down, z forward), `world_from_cam` back. Pixels follow
COLMAP: pixel (i, j) covers [i, i+1) x [j, j+1), so its centre is at (i + 0.5, j + 0.5).

Numpy only: a bare GPU machine (bench/splat_bundle.py, splatting.train) can read cameras too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Rigid3:
    """x_b = rotation @ x_a + translation, for a transform named `b_from_a` (pycolmap's Rigid3d).

    `inverse()` of an inverse gives back the original arrays exactly (no round trip through
    floating point): a camera built from a known centre reports that centre unchanged.
    """

    rotation: np.ndarray  # 3x3
    translation: np.ndarray  # 3
    _inverse: Rigid3 | None = field(default=None, repr=False)

    def inverse(self) -> Rigid3:
        """`a_from_b` of this `b_from_a`."""
        if self._inverse is None:
            rotation = self.rotation.T
            object.__setattr__(self, "_inverse", Rigid3(rotation, -rotation @ self.translation, self))
        assert self._inverse is not None
        return self._inverse

    def __dask_tokenize__(self) -> tuple[bytes, bytes]:
        """What Dask hashes (it would otherwise walk the fields, round the cached inverse's cycle forever)."""
        return self.rotation.tobytes(), self.translation.tobytes()

    def __matmul__(self, other: Rigid3) -> Rigid3:
        """Composition: `c_from_b @ b_from_a` is `c_from_a`."""
        return Rigid3(self.rotation @ other.rotation, self.rotation @ other.translation + self.translation)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """N x 3 points mapped from frame a to frame b."""
        return points @ self.rotation.T + self.translation

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix (pycolmap's `matrix()` is the top 3x4 of it)."""
        out = np.eye(4)
        out[:3, :3], out[:3, 3] = self.rotation, self.translation
        return out


@dataclass(frozen=True, eq=False)
class Camera:
    """A posed pinhole camera: intrinsics `k` at width x height, and its `cam_from_world` pose."""

    name: str  # the image it took (relative to its images folder), or a label such as a frame number
    k: np.ndarray  # 3x3 intrinsics at width x height
    cam_from_world: Rigid3
    width: int
    height: int

    @property
    def world_from_cam(self) -> Rigid3:
        return self.cam_from_world.inverse()

    @property
    def centre(self) -> np.ndarray:
        """The projection centre in world coordinates."""
        return self.world_from_cam.translation

    def scaled(self, width: int, height: int) -> Camera:
        """The same camera for its image resampled to width x height."""
        sx, sy = width / self.width, height / self.height
        return Camera(self.name, np.diag([sx, sy, 1.0]) @ self.k, self.cam_from_world, width, height)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N x 2) and camera-frame depths (N) of N x 3 world points."""
        cam = self.cam_from_world.apply(points)
        z = cam[:, 2]
        safe = np.where(z > 1e-12, z, 1e-12)
        pixels = np.stack([cam[:, 0] / safe, cam[:, 1] / safe, np.ones_like(z)], axis=1) @ self.k.T
        return pixels[:, :2], z

    def rays(self, supersample: int = 1) -> np.ndarray:
        """float32 rays (origin, unit direction in world), one per pixel row by row, or `supersample`^2 per pixel."""
        s = supersample
        u = ((np.arange(self.width * s) + 0.5) / s).astype(np.float32)
        v = ((np.arange(self.height * s) + 0.5) / s).astype(np.float32)
        # pixel (u, v, 1) to a world direction: d = (u, v, 1) @ inv(K)^T @ R, one 3 x 3 for the whole image,
        # broadcast in float32 (the rays' own precision): millions of rays at a turntable's or a bake's size
        to_world = (np.linalg.inv(self.k).T @ self.cam_from_world.rotation).astype(np.float32)
        directions = u[None, :, None] * to_world[0] + v[:, None, None] * to_world[1] + to_world[2]
        directions /= np.sqrt(np.einsum("hwc,hwc->hw", directions, directions))[..., None]
        rays = np.empty((directions.shape[0] * directions.shape[1], 6), np.float32)
        rays[:, :3] = self.centre
        rays[:, 3:] = directions.reshape(-1, 3)
        return rays

    def to_json(self) -> dict[str, Any]:
        """The keys depth.json and cameras.json store (`rotation`, `translation`: cam_from_world)."""
        return {
            "name": self.name,
            "k": self.k.tolist(),
            "rotation": self.cam_from_world.rotation.tolist(),
            "translation": self.cam_from_world.translation.tolist(),
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Camera:
        pose = Rigid3(np.array(data["rotation"]), np.array(data["translation"]))
        return cls(data["name"], np.array(data["k"]), pose, int(data["width"]), int(data["height"]))


def look_at(centre: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The cam_from_world rotation of a camera at `centre` looking at `target` (OpenCV axes), `up` up."""
    forward = target - centre
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def camera_in_frame(camera: Camera, frame_from_world: np.ndarray) -> Camera:
    """The same photo's camera for points in another frame, x_f = s Q x + b (a 4x4 similarity: the asset frame,
    metres). x_cam = R Q^T (x_f - b) / s + t, times s (a camera's image does not change with the scale of its
    frame): its depths are in the frame's units."""
    linear, offset = frame_from_world[:3, :3], frame_from_world[:3, 3]
    scale = float(np.cbrt(np.linalg.det(linear)))
    rotation = camera.cam_from_world.rotation @ (linear / scale).T
    pose = Rigid3(rotation, scale * camera.cam_from_world.translation - rotation @ offset)
    return Camera(camera.name, camera.k, pose, camera.width, camera.height)


def camera_in_world(camera: Camera, frame_from_world: np.ndarray) -> Camera:
    """`camera_in_frame` undone: a frame camera (a turntable's) for world points, the same image."""
    rotation, translation = camera.cam_from_world.rotation, camera.cam_from_world.translation
    linear = frame_from_world[:3, :3]
    scale = float(np.cbrt(np.linalg.det(linear)))
    pose = Rigid3(rotation @ (linear / scale), (rotation @ frame_from_world[:3, 3] + translation) / scale)
    return Camera(camera.name, camera.k, pose, camera.width, camera.height)
