"""A marker's corners from its four edges: blur-proof, where a corner detector is not.

OpenCV's sub-pixel corners sit inside the true ones by about 0.4 px per pixel of blur (sigma): blur
rounds a corner off. On an ArUco marker of 100 px that shortens every side alike, biasing the scale
by ~0.5% per px of blur, and no spread reveals it. A straight edge keeps its place under symmetric
blur instead (where the profile crosses halfway between dark and light), so each side is located
from many profiles across its middle, a line fitted to them, and the corners are where lines meet.

Pixels in OpenCV's convention (a pixel's centre at its integer coordinates). Numpy and OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np

# Farther from the detector's corner than this (px, or this share of the side if more): an edge bent or
# partly hidden, so the corner is kept as detected.
MAX_SHIFT_PX, MAX_SHIFT_OF_SIDE = 1.5, 0.03
MIN_CONTRAST = 20.0  # grey levels between the border's black and the margin's white, for a profile to count


def edge_corners(gray: np.ndarray, quad: np.ndarray, cells: int) -> np.ndarray:
    """The 4 x 2 corners where the fitted edge lines of `quad` (clockwise, as detected) meet.

    `cells`: the marker's side in cells (black border included), which bounds how far a profile may
    reach inside before it meets the code's cells. A corner whose edges cannot be measured stays as given.
    """
    image = gray.astype(np.float32)
    side = float(np.mean(np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)))
    reach = float(np.clip(0.45 * side / cells, 1.5, 6.0))
    lines = [_edge_line(image, quad, i, reach) for i in range(4)]
    corners = quad.astype(np.float64).copy()
    for i in range(4):
        before, after = lines[i - 1], lines[i]  # corner i joins side i-1 (into it) and side i (out of it)
        if before is None or after is None:
            continue
        corner = _intersect(before, after)
        if corner is not None and np.linalg.norm(corner - quad[i]) <= max(MAX_SHIFT_PX, MAX_SHIFT_OF_SIDE * side):
            corners[i] = corner
    return corners


def _edge_line(image: np.ndarray, quad: np.ndarray, side: int, reach: float) -> tuple[np.ndarray, np.ndarray] | None:
    """A point on side `side` and its direction, fitted to the halfway crossings of profiles across it."""
    a, b = quad[side].astype(np.float64), quad[(side + 1) % 4].astype(np.float64)
    length = float(np.linalg.norm(b - a))
    along = (b - a) / length
    outward = np.array([along[1], -along[0]])
    if np.dot(outward, a - quad.mean(axis=0)) < 0:
        outward = -outward
    fractions = np.linspace(0.2, 0.8, max(6, int(length * 0.6)))
    offsets = np.arange(-reach, reach + 1e-9, 0.25)
    points = a + fractions[:, None] * (b - a)
    samples = points[:, None, :] + offsets[None, :, None] * outward
    profiles = cv2.remap(
        image, samples[..., 0].astype(np.float32), samples[..., 1].astype(np.float32), cv2.INTER_LINEAR
    )
    dark, light = profiles[:, :3].mean(axis=1), profiles[:, -3:].mean(axis=1)
    half = (dark + light) / 2
    past = profiles >= half[:, None]
    j = np.argmax(past, axis=1)  # the first sample past halfway, going outward: interpolate from the one before
    rows = np.nonzero((light - dark >= MIN_CONTRAST) & past.any(axis=1) & (j > 0))[0]
    if len(rows) < 4:
        return None
    j = j[rows]
    before, after = profiles[rows, j - 1], profiles[rows, j]
    fraction = (half[rows] - before) / np.where(after > before, after - before, 1.0)
    offset = offsets[j - 1] + (offsets[j] - offsets[j - 1]) * fraction
    found = points[rows] + offset[:, None] * outward
    centre = found.mean(axis=0)
    _, _, vt = np.linalg.svd(found - centre)
    return centre, vt[0]


def _intersect(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    (p, d), (q, e) = first, second
    matrix = np.column_stack([d, -e])
    if abs(np.linalg.det(matrix)) < 1e-6:
        return None
    s, _ = np.linalg.solve(matrix, q - p)
    return p + s * d
