"""Turntable frames of a textured mesh: an orbit around the asset's up axis (+Y), ray cast on CPU.

A key light plus ambient shade the albedo so shape reads; the camera distance fits the mesh's
bounding sphere in the field of view.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from photoforge.camera.model import Camera, Rigid3
from photoforge.render.raycast import MeshScene, sample_texture, shade


@dataclass(frozen=True)
class Orbit:
    frames: int
    width: int
    height: int
    elevation_deg: float
    fov_deg: float  # vertical field of view
    background: tuple[int, int, int]
    key_light: tuple[float, float, float]  # direction towards the light, camera frame (x right, y down, z fwd)
    ambient: float


def orbit_cameras(vertices: np.ndarray, orbit: Orbit) -> Iterator[Camera]:
    """One camera per frame, looking at the median vertex from outside the bulk's sphere."""
    # Frame the bulk of the surface: a stray strip of ground should not shrink the object to a speck.
    centre = np.median(vertices, axis=0)
    radius = float(np.percentile(np.linalg.norm(vertices - centre, axis=1), 97))
    focal = orbit.height / 2 / math.tan(math.radians(orbit.fov_deg) / 2)
    half_fov = math.atan(min(orbit.width, orbit.height) / 2 / focal)
    distance = radius / math.sin(half_fov) * 1.05
    k = np.array([[focal, 0, orbit.width / 2], [0, focal, orbit.height / 2], [0, 0, 1]])
    elevation = math.radians(orbit.elevation_deg)
    for i in range(orbit.frames):
        azimuth = 2 * math.pi * i / orbit.frames
        eye = centre + distance * np.array(
            [math.sin(azimuth) * math.cos(elevation), math.sin(elevation), math.cos(azimuth) * math.cos(elevation)]
        )
        forward = centre - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        rotation = np.stack([right, down, forward])
        yield Camera(f"frame_{i:04d}", k, Rigid3(rotation, -rotation @ eye), orbit.width, orbit.height)


def render_frames(
    vertices: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray, texture: np.ndarray, orbit: Orbit
) -> Iterator[np.ndarray]:
    """RGB uint8 frames of the orbit."""
    scene = MeshScene(vertices, faces)
    light_camera = np.asarray(orbit.key_light, float)
    for camera in orbit_cameras(vertices, orbit):
        hits = scene.cast(camera)
        albedo = sample_texture(hits, face_uvs, texture).astype(np.float32)
        # the key light moves with the camera: its direction in world coordinates is R^T l
        yield shade(hits, camera.world_from_cam.rotation @ light_camera, albedo, orbit.ambient, orbit.background)
