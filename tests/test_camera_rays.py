"""Camera.rays: one unit ray per pixel (or per sub-pixel), from the centre through the pixel's centre."""

from __future__ import annotations

import numpy as np
import pytest

from photoforge.camera.model import Camera, Rigid3, look_at


@pytest.mark.parametrize("supersample", [1, 2])
def test_each_ray_leaves_the_centre_through_its_pixel_centre(supersample: int) -> None:
    centre = np.array([0.4, -1.5, 3.0])
    rotation = look_at(centre, np.array([0.1, 0.2, -0.3]), np.array([0.0, 1.0, 0.0]))
    k = np.array([[610.0, 0.5, 151.0], [0.0, 590.0, 97.0], [0.0, 0.0, 1.0]])
    camera = Camera("view", k, Rigid3(rotation, -rotation @ centre), 300, 200)
    rays = camera.rays(supersample)
    assert rays.shape == (300 * 200 * supersample**2, 6) and rays.dtype == np.float32
    np.testing.assert_allclose(rays[:, :3], np.broadcast_to(centre, (len(rays), 3)), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(rays[:, 3:], axis=1), 1.0, atol=1e-6)
    pixels, depth = camera.project(rays[:, :3].astype(np.float64) + 2.0 * rays[:, 3:].astype(np.float64))
    s = supersample
    u, v = np.meshgrid((np.arange(300 * s) + 0.5) / s, (np.arange(200 * s) + 0.5) / s)  # row by row
    np.testing.assert_allclose(pixels, np.stack([u.ravel(), v.ravel()], axis=1), atol=2e-3)
    assert np.all(depth > 0)
