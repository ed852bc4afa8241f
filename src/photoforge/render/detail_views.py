"""How faithful a low-poly level's shading is: high-res | low-poly | low-poly + normal map, one view, one light."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from photoforge.camera.model import Camera, Rigid3, look_at
from photoforge.render.raycast import Hits, MeshScene, barycentric_weights, shade
from photoforge.texturing.tangents import HighResSurface, ShadedMesh, interpolate, shading_normals

VIEW_DIRECTION = np.array([1.0, 0.55, 1.3])  # from the object towards the camera: a 3/4 view from above (+Y up)
UP = np.array([0.0, 1.0, 0.0])
KEY_LIGHT = np.array([-0.6, -0.8, -0.35])  # towards the light, camera frame (x right, y down, z forward): upper left
FOV_DEG = 30.0
AMBIENT = 0.25
ALBEDO = 210.0
BACKGROUND = (24, 24, 28)
LABEL_HEIGHT = 22
SUPERSAMPLE = 2


def detail_camera(vertices: np.ndarray, width: int, height: int) -> Camera:
    """A 3/4 view from above framing the bounding sphere of `vertices` (centre: the middle of their box)."""
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    target = (low + high) / 2
    radius = max(float(np.max(np.linalg.norm(vertices - target, axis=1))), 1e-9)
    half = math.radians(FOV_DEG) / 2
    distance = radius / math.sin(half) * 1.05
    centre = target + distance * VIEW_DIRECTION / np.linalg.norm(VIEW_DIRECTION)
    rotation = look_at(centre, target, UP)
    focal = min(width, height) / 2 / math.tan(half)
    k = np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    return Camera("detail", k, Rigid3(rotation, -rotation @ centre), width, height)


def detail_comparison(
    low: ShadedMesh, normal_map: np.ndarray, *, high: HighResSurface, width: int = 480, height: int = 480
) -> np.ndarray:
    """H x 3W x 3 uint8 RGB: the high-res mesh shaded with its interpolated normals | the low-poly with
    its own | the low-poly with the normal map, from one camera under one key light (grey Lambert + ambient)."""
    camera = detail_camera(np.asarray(high.scene.vertices, np.float64), width, height)
    light = camera.cam_from_world.rotation.T @ KEY_LIGHT
    high_hits = high.scene.cast(camera, SUPERSAMPLE)
    low_hits = MeshScene(low.vertices, low.faces).cast(camera, SUPERSAMPLE)
    high_at, low_at = _hit_faces(high_hits), _hit_faces(low_hits)
    panels = [
        (high_hits, high.normals_at(*high_at), f"high-res {_count(len(high.scene.faces))} faces"),
        (low_hits, interpolate(low.normals, low.faces, *low_at), f"low-poly {_count(len(low.faces))} faces"),
        (low_hits, shading_normals(*low_at, low, normal_map), "low-poly + normal map"),
    ]
    return np.concatenate([_panel(hits, normals, light, label, width, height) for hits, normals, label in panels], 1)


def _hit_faces(hits: Hits) -> tuple[np.ndarray, np.ndarray]:
    mask = hits.mask
    return hits.face[mask], barycentric_weights(hits.barycentric[mask])


def _panel(hits: Hits, normals: np.ndarray, light: np.ndarray, label: str, width: int, height: int) -> np.ndarray:
    """Shade with per-hit `normals` (in the order of the mask's true pixels), downsample, label."""
    field = np.zeros((*hits.mask.shape, 3), np.float32)
    field[hits.mask] = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-20)
    image = shade(dataclasses.replace(hits, normal=field), light, ALBEDO, AMBIENT, BACKGROUND)
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    image[:LABEL_HEIGHT] = (image[:LABEL_HEIGHT] * 0.35).astype(np.uint8)
    cv2.putText(image, label, (8, LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
    cv2.line(image, (width - 1, 0), (width - 1, height - 1), (70, 70, 70), 1)
    return image


def _count(faces: int) -> str:
    return f"{faces / 1000:.0f}k" if faces >= 10_000 else f"{faces / 1000:.1f}k" if faces >= 1000 else str(faces)
