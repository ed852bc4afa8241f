"""Photo-versus-render scores (PSNR, SSIM) for the bake stage's views and the splat stage's held-out views.

numpy, scipy and OpenCV only: a bare GPU machine with torch and gsplat (no open3d, no scikit-image) scores
a splat training with the same numbers the bake stage reports. SSIM is scikit-image's default
structural_similarity (7x7 uniform window, sample covariance, reflected borders), written out here for that
reason; tests check it against scikit-image.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import uniform_filter

SSIM_WINDOW = 7


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float(np.mean(diff**2)) if diff.size else float("nan")
    return float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf")


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel, per-channel SSIM of two uint8 images (scikit-image's `full` map, data range 255)."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    size = (SSIM_WINDOW, SSIM_WINDOW) + (1,) * (x.ndim - 2)
    n = SSIM_WINDOW**2
    cov_norm = n / (n - 1)
    ux, uy = uniform_filter(x, size), uniform_filter(y, size)
    vx = cov_norm * (uniform_filter(x * x, size) - ux * ux)
    vy = cov_norm * (uniform_filter(y * y, size) - uy * uy)
    vxy = cov_norm * (uniform_filter(x * y, size) - ux * uy)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM over the mask, eroded so windows stay on the object."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((SSIM_WINDOW, SSIM_WINDOW), np.uint8)) > 0
    return float(ssim_map(a, b)[inner].mean()) if inner.any() else float("nan")
