"""Scores of the splats on photos (PSNR, SSIM as the bake stage measures them) and comparison pictures.

Pure numpy/scipy (no open3d, scikit-image or pycolmap), so a bare GPU machine with torch and
gsplat can score a training run; the numbers equal photoforge.render's whole-frame masked_psnr
and masked_ssim (scikit-image's default SSIM: 7x7 uniform window, sample covariance).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from scipy.ndimage import uniform_filter

from photoforge.splatting.rasterize import Backend, camera_tensors, rasterize

if TYPE_CHECKING:
    from photoforge.views import View

SSIM_WINDOW = 7  # scikit-image's default (uniform, not Gaussian, weights)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images over the whole frame (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf")


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two H x W x 3 uint8 images, per channel, over every pixel (borders reflected).

    scikit-image's structural_similarity(channel_axis=2, data_range=255) map, averaged without its
    border crop: what masked_ssim gives for a whole-frame mask.
    """
    x, y = a.astype(np.float64), b.astype(np.float64)
    size = (SSIM_WINDOW, SSIM_WINDOW) + (1,) * (x.ndim - 2)
    n = SSIM_WINDOW**2
    cov_norm = n / (n - 1)
    ux, uy = uniform_filter(x, size), uniform_filter(y, size)
    vx = cov_norm * (uniform_filter(x * x, size) - ux * ux)
    vy = cov_norm * (uniform_filter(y * y, size) - uy * uy)
    vxy = cov_norm * (uniform_filter(x * y, size) - ux * uy)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return float(s.mean())


@torch.no_grad()
def render_rgb(
    params: Mapping[str, torch.Tensor],
    view: View,
    sh_degree: int,
    backend: Backend,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """H x W x 3 uint8 render of the Gaussians from a view."""
    device = params["means"].device
    view_t, k = camera_tensors(view.k, view.rotation, view.translation, device)
    bg = torch.tensor(background, dtype=torch.float32, device=device)
    out = rasterize(params, view_t, k, view.width, view.height, sh_degree, bg, "RGB", backend)
    return (out.colors.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def score_views(
    params: Mapping[str, torch.Tensor],
    views: list[View],
    photos: list[np.ndarray],
    sh_degree: int,
    backend: Backend,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Mean PSNR and SSIM over the views (whole frames), and the renders."""
    renders, psnrs, ssims = [], [], []
    for view, photo in zip(views, photos, strict=True):
        render = render_rgb(params, view, sh_degree, backend, background)
        psnrs.append(psnr(render, photo))
        ssims.append(ssim(render, photo))
        renders.append(render)
    return {"psnr": round(float(np.mean(psnrs)), 3), "ssim": round(float(np.mean(ssims)), 4)}, renders


def save_comparisons(folder: Path, names: list[str], renders: list[np.ndarray], photos: list[np.ndarray]) -> list[str]:
    """Side-by-side PNGs (render left, photo right) for the report; returns their file names."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (name, render, photo) in enumerate(zip(names, renders, photos, strict=True)):
        pair = np.concatenate([render, photo], axis=1)
        file = f"{i:02d}_{Path(name).name.split('.')[0]}.png"
        cv2.imwrite(str(folder / file), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
        written.append(file)
    return written
