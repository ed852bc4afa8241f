"""Points seen in several posed views: a linear (DLT) guess refined on the pixel error, bad views dropped.

Pixels are in each pinhole `Camera`'s own frame (COLMAP's convention, lens distortion already taken
out). Several points are triangulated together (a marker's four corners): a view is judged on all of
them, so a view with one mis-detected corner drops out as a whole. Numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from photoforge.camera.model import Camera


@dataclass(frozen=True)
class Triangulation:
    """Points triangulated from the views kept, and how well those views agree."""

    points: np.ndarray  # k x 3, world
    views: tuple[int, ...]  # indices of the cameras kept
    errors: np.ndarray  # per kept view: RMS reprojection error over the points, in px
    min_angle_deg: float  # the narrowest of the points' widest ray angles (small: depth ill-conditioned)


def linear_point(cameras: Sequence[Camera], pixels: np.ndarray) -> np.ndarray:
    """One point by the DLT in normalised image coordinates (m views, m x 2 pixels)."""
    rows = []
    for camera, (u, v) in zip(cameras, pixels, strict=True):
        x, y, _ = np.linalg.solve(camera.k, [u, v, 1.0])
        pose = np.hstack([camera.cam_from_world.rotation, camera.cam_from_world.translation[:, None]])
        rows += [x * pose[2] - pose[0], y * pose[2] - pose[1]]
    _, _, vt = np.linalg.svd(np.asarray(rows))
    h = vt[-1]
    return h[:3] / h[3] if abs(h[3]) > 1e-15 else np.full(3, np.nan)


def refine_point(cameras: Sequence[Camera], pixels: np.ndarray, xyz: np.ndarray, iterations: int = 10) -> np.ndarray:
    """Gauss-Newton on the squared pixel error from a starting point (the DLT's algebraic error is biased)."""
    for _ in range(iterations):
        jacobian, residuals = [], []
        for camera, pixel in zip(cameras, pixels, strict=True):
            cam = camera.cam_from_world.apply(xyz[None])[0]
            p = camera.k @ cam
            uv = p[:2] / p[2]
            d_uv_d_cam = (camera.k[:2] - np.outer(uv, camera.k[2])) / p[2]
            jacobian.append(d_uv_d_cam @ camera.cam_from_world.rotation)
            residuals.append(uv - pixel)
        j, r = np.vstack(jacobian), np.concatenate(residuals)
        step = np.linalg.lstsq(j, -r, rcond=None)[0]
        xyz = xyz + step
        if np.linalg.norm(step) < 1e-12 * (1.0 + np.linalg.norm(xyz)):
            break
    return xyz


def ray_angle_deg(cameras: Sequence[Camera], xyz: np.ndarray) -> float:
    """The widest angle at the point between the rays of any two views."""
    rays = np.stack([c.centre - xyz for c in cameras])
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    cos = np.clip(rays @ rays.T, -1.0, 1.0)
    return float(np.degrees(np.arccos(cos.min())))


def triangulate(
    cameras: Sequence[Camera], pixels: np.ndarray, *, max_error: float, min_angle_deg: float
) -> Triangulation | None:
    """k points seen in m views (pixels m x k x 2); the worst view is dropped while any exceeds `max_error`
    px RMS. None when fewer than two views agree (a point behind a camera counts against its view) or the
    rays are nearly parallel (narrower than `min_angle_deg`)."""
    kept = list(range(len(cameras)))
    while len(kept) >= 2:
        views = [cameras[i] for i in kept]
        points = np.stack(
            [refine_point(views, pixels[kept, n], linear_point(views, pixels[kept, n])) for n in range(pixels.shape[1])]
        )
        if not np.all(np.isfinite(points)):
            return None
        errors = []
        for i, camera in zip(kept, views, strict=True):
            projected, depth = camera.project(points)
            error = np.sqrt(np.mean(np.sum((projected - pixels[i]) ** 2, axis=1)))
            errors.append(float(error) if np.all(depth > 0) else np.inf)  # behind the camera: a bad view
        worst = int(np.argmax(errors))
        if errors[worst] <= max_error:
            angle = min(ray_angle_deg(views, p) for p in points)
            if angle < min_angle_deg:
                return None
            return Triangulation(points, tuple(kept), np.asarray(errors), angle)
        del kept[worst]
    return None
