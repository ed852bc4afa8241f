"""A 4x4 similarity transform (scale x rotation, then a translation) taken apart.

The mesh artefact's world_to_asset is one (a rotation to upright, metres when the run found a scale):
the splats, the hand-offs and the cameras are moved into the asset frame by it.
"""

from __future__ import annotations

import numpy as np


def similarity_parts(transform: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(scale, rotation, translation) of a 4x4 x' = s R x + t; R re-orthonormalised (stored JSON rounds).

    ValueError when the 3x3 part is not a positive scale times a rotation (a mirror, a shear, a collapse).
    """
    matrix = np.asarray(transform, np.float64)
    linear = matrix[:3, :3]
    det = float(np.linalg.det(linear))
    if not np.isfinite(det) or det <= 0:
        raise ValueError(f"not a similarity: its 3x3 part has determinant {det:.3g}")
    scale = float(np.cbrt(det))
    u, singular, vt = np.linalg.svd(linear / scale)
    if not np.allclose(singular, 1.0, atol=1e-3):
        raise ValueError(f"not a similarity: its 3x3 part stretches unevenly ({np.round(singular * scale, 4)})")
    return scale, u @ vt, matrix[:3, 3]


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """N x 3 points through a 4x4 (affine) transform."""
    matrix = np.asarray(transform, np.float64)
    return np.asarray(points, np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
