"""Procedural albedo: value noise in 3D (object surfaces) and 2D (printed planes).

Deterministic from a seed and defined everywhere, so every view sees the same albedo (as
photo-consistency assumes) and fine octaves give SIFT and stereo something to match.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import map_coordinates


class ValueNoise3D:
    """Multi-octave 3D value noise: a deterministic albedo defined everywhere on the surface."""

    def __init__(self, seed: int, frequencies: tuple[float, ...] = (4.0, 9.0, 19.0, 40.0)) -> None:
        rng = np.random.default_rng(seed)
        self.frequencies = frequencies
        self.grids = [rng.random((int(f * 2.6) + 3,) * 3 + (3,)).astype(np.float32) for f in frequencies]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        colour = np.zeros((len(points), 3), np.float32)
        weight_sum = 0.0
        for octave, (freq, grid) in enumerate(zip(self.frequencies, self.grids, strict=True)):
            weight = 0.85**octave  # strong fine detail: features and stereo windows need it
            colour += weight * _trilinear(grid, (points + 1.3) * freq)
            weight_sum += weight
        colour /= weight_sum
        # A fixed contrast stretch (never a per-image one: every view must see the same albedo).
        return np.clip(0.5 + (colour - 0.5) * 3.0, 0, 1)


def _trilinear(grid: np.ndarray, coords: np.ndarray) -> np.ndarray:
    size = np.array(grid.shape[:3]) - 1
    coords = np.clip(coords, 0, size - 1e-4).T
    return np.stack([map_coordinates(grid[..., c], coords, order=1) for c in range(grid.shape[3])], axis=1)


def value_noise_image(
    shape: tuple[int, int], *, texel: float, cells: tuple[float, ...], seed: int, contrast: float = 2.5
) -> np.ndarray:
    """H x W float32 noise in [0, 1] for a texture of `texel` metres per pixel.

    `cells` are the octaves' cell sizes in metres (coarse to fine): the finest sets the
    smallest feature a camera can match.
    """
    rng = np.random.default_rng(seed)
    height, width = shape
    value = np.zeros(shape, np.float32)
    weight_sum = 0.0
    for octave, cell in enumerate(cells):
        grid = rng.random((int(height * texel / cell) + 2, int(width * texel / cell) + 2)).astype(np.float32)
        weight = 0.8**octave
        value += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        weight_sum += weight
    return np.clip(0.5 + (value / weight_sum - 0.5) * contrast, 0, 1)
