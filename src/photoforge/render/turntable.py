"""Turntable frames of a textured mesh: an orbit around the asset's up axis (+Y), ray cast on CPU.

A key light plus ambient shade the albedo so shape reads. The framing is solved, not guessed: the
orbit turns about the vertical through the middle of the object's bounds, and the camera distance
is chosen from the object's projection at every azimuth of the orbit, so it fills about 70% of the
frame height, centred, and never more than 90% of its width, from every side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from photoforge.camera.model import Camera, Rigid3, look_at
from photoforge.render.raycast import MeshScene, sample_texture, shade

AIM_HEIGHT = 0.70  # share of the frame height the object fills, midway between its least and most
MAX_HEIGHT = 0.80  # nor more than this at any azimuth
MAX_WIDTH = 0.90  # share of the frame width, at any azimuth (a wide flat object stops here)
BOUNDS_PERCENTILES = (0.5, 99.5)  # per axis: a few stray vertices do not move the framing
MAX_SAMPLES = 20_000  # vertices whose hull is taken (a dense mesh's hull is slow and no better)
MAX_POINTS = 5_000  # hull vertices projected to solve the framing
MAX_AZIMUTHS = 72  # of the orbit's, evenly spread: the silhouette changes smoothly between them


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

    @property
    def focal(self) -> float:
        return self.height / 2 / math.tan(math.radians(self.fov_deg) / 2)

    def azimuths(self) -> np.ndarray:
        return 2 * np.pi * np.arange(self.frames) / self.frames


@dataclass(frozen=True)
class Framing:
    """Where every camera of the orbit looks, and from how far."""

    target: np.ndarray  # the look-at point, on the orbit's axis
    distance: float


def orbit_rotation(azimuth: float, elevation: float) -> np.ndarray:
    """cam_from_world rotation (rows: right, down, forward) of a camera looking at the axis from `azimuth`."""
    direction = np.array(
        [math.sin(azimuth) * math.cos(elevation), math.sin(elevation), math.cos(azimuth) * math.cos(elevation)]
    )
    return look_at(direction, np.zeros(3), np.array([0.0, 1.0, 0.0]))


def robust_bounds(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis percentile bounds: the object's box without the odd stray vertex."""
    low, high = np.percentile(vertices, BOUNDS_PERCENTILES, axis=0)
    return low, high


def frame_orbit(vertices: np.ndarray, orbit: Orbit) -> Framing:
    """The look-at point and distance that frame the object alike at every azimuth of the orbit.

    The vertices (clamped into their robust bounds) are projected for each azimuth; the distance
    puts the middle of the object's least and greatest height share at AIM_HEIGHT, backed off
    until no azimuth exceeds MAX_HEIGHT or MAX_WIDTH. The look-at point starts at the middle of
    the bounds and moves along the axis until the projection is vertically centred (seen from
    above, an object's top face pushes its silhouette upwards).
    """
    low, high = robust_bounds(vertices)
    points = _outline(np.clip(np.asarray(vertices, float), low, high))
    target = (low + high) / 2
    elevation = math.radians(orbit.elevation_deg)
    azimuths = orbit.azimuths()[:: math.ceil(orbit.frames / MAX_AZIMUTHS)]
    rotations = np.stack([orbit_rotation(a, elevation) for a in azimuths])
    distance = 0.0
    for _ in range(3):  # centring moves the target a little: solve again
        views = np.einsum("aij,nj->ani", rotations, points - target)  # camera frame at distance 0
        distance = _fit_distance(views, orbit)
        centre = np.mean([(top + bottom) / 2 for top, bottom in _vertical_spans(views, distance)])
        target = target - np.array([0.0, centre * distance / math.cos(elevation), 0.0])
    return Framing(target, distance)


def _outline(points: np.ndarray) -> np.ndarray:
    """The convex hull's vertices (at most MAX_POINTS): they alone reach the projection's extremes."""
    from scipy.spatial import ConvexHull, QhullError

    if len(points) > MAX_SAMPLES:  # a fixed draw: the same mesh is framed the same way every time
        points = points[np.random.default_rng(0).choice(len(points), MAX_SAMPLES, replace=False)]
    try:
        hull = points[ConvexHull(points, qhull_options="QJ").vertices]
    except (QhullError, ValueError):  # fewer than four points
        hull = points
    return hull[:: math.ceil(len(hull) / MAX_POINTS)]


def _vertical_spans(views: np.ndarray, distance: float) -> np.ndarray:
    """Per azimuth, the highest and lowest tan(angle) below the optical axis the object reaches."""
    tangent = views[..., 1] / (views[..., 2] + distance)
    return np.stack([tangent.min(axis=1), tangent.max(axis=1)], axis=1)


def _shares(views: np.ndarray, distance: float, orbit: Orbit) -> tuple[np.ndarray, np.ndarray]:
    """Per azimuth, the share of the frame's height and width the projected object spans."""
    depth = views[..., 2] + distance
    x, y = views[..., 0] / depth, views[..., 1] / depth
    height = (y.max(axis=1) - y.min(axis=1)) * orbit.focal / orbit.height
    width = (x.max(axis=1) - x.min(axis=1)) * orbit.focal / orbit.width
    return height, width


def _fit_distance(views: np.ndarray, orbit: Orbit) -> float:
    """The distance meeting AIM_HEIGHT, MAX_HEIGHT and MAX_WIDTH (the farthest of the three)."""
    size = float(np.ptp(views.reshape(-1, 3), axis=0).max()) or 1.0
    near = max(0.0, float(-views[..., 2].min())) + 0.05 * size  # every point well in front of the camera

    def aim(d: float) -> float:
        height, _ = _shares(views, d, orbit)
        return float(height.min() + height.max()) / 2

    return max(
        _solve(aim, AIM_HEIGHT, near),
        _solve(lambda d: float(_shares(views, d, orbit)[0].max()), MAX_HEIGHT, near),
        _solve(lambda d: float(_shares(views, d, orbit)[1].max()), MAX_WIDTH, near),
    )


def _solve(share: Callable[[float], float], goal: float, near: float) -> float:
    """The distance at which a share that shrinks with distance equals `goal` (bisection in log distance)."""
    if share(near) <= goal:
        return near
    low, high = near, 2 * near
    while share(high) > goal:
        low, high = high, 2 * high
    for _ in range(24):  # the distance to within a millionth
        middle = math.sqrt(low * high)
        low, high = (middle, high) if share(middle) > goal else (low, middle)
    return high


def orbit_cameras(vertices: np.ndarray, orbit: Orbit) -> Iterator[Camera]:
    """One camera per frame, on the orbit frame_orbit solves for the object."""
    framing = frame_orbit(vertices, orbit)
    k = np.array([[orbit.focal, 0, orbit.width / 2], [0, orbit.focal, orbit.height / 2], [0, 0, 1]])
    elevation = math.radians(orbit.elevation_deg)
    for i, azimuth in enumerate(orbit.azimuths()):
        rotation = orbit_rotation(float(azimuth), elevation)
        eye = framing.target - framing.distance * rotation[2]
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
