"""Scores of the splats on photos (PSNR, SSIM as the bake stage measures them) and comparison pictures.

No open3d, scikit-image or pycolmap (photoforge.qa.image_scores), so a bare GPU machine with torch and
gsplat can score a training run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from photoforge.qa.image_scores import masked_psnr, masked_ssim
from photoforge.splatting.rasterize import Backend, camera_tensors, rasterize

if TYPE_CHECKING:
    from photoforge.camera.model import Camera


def render_rgb(
    params: Mapping[str, torch.Tensor],
    view: Camera,
    sh_degree: int,
    backend: Backend,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """H x W x 3 uint8 render of the Gaussians from a view."""
    device = params["means"].device
    view_t, k = camera_tensors(view, device)
    bg = torch.tensor(background, dtype=torch.float32, device=device)
    out = rasterize(params, view_t, k, view.width, view.height, sh_degree, bg, "RGB", backend)
    return (out.colors.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def score_views(
    params: Mapping[str, torch.Tensor],
    views: list[Camera],
    photos: list[np.ndarray],
    sh_degree: int,
    backend: Backend,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Mean PSNR and SSIM over the views (whole frames), and the renders."""
    renders, psnrs, ssims = [], [], []
    for view, photo in zip(views, photos, strict=True):
        render = render_rgb(params, view, sh_degree, backend, background)
        whole = np.ones(photo.shape[:2], bool)
        psnrs.append(masked_psnr(render, photo, whole))
        ssims.append(masked_ssim(render, photo, whole))
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
