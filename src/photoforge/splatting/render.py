"""Render splats from any camera: what the turntable (orbit) and the mesh-from-splats use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from photoforge.camera.model import Camera
from photoforge.splatting.gaussians import Splats
from photoforge.splatting.ply import read_splat_ply
from photoforge.splatting.rasterize import Backend, camera_tensors, rasterize, resolve_backend

SPLATS_PLY = "splats.ply"


@dataclass
class SplatImage:
    rgb: np.ndarray  # H x W x 3 uint8
    alpha: np.ndarray  # H x W float32 in [0, 1]
    depth: np.ndarray | None  # H x W float32 expected depth along the optical axis (0 where alpha is 0)


def load_splats(path: Path) -> Splats:
    """Splats from a splat artefact directory (its splats.ply) or from any 3DGS PLY file."""
    return read_splat_ply(path / SPLATS_PLY if path.is_dir() else path)


@torch.no_grad()
def render_splats(
    splats: Splats,
    camera: Camera,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    with_depth: bool = False,
    device: Literal["auto", "cuda", "cpu"] = "auto",
) -> SplatImage:
    """What `camera` sees of the splats, at the camera's size.

    Uses every SH band the splats have. `device` auto renders on CUDA when gsplat can, else on CPU
    (fine for small splats and frames; a million Gaussians at 1080p wants the GPU).
    """
    backend: Backend = resolve_backend(device)
    torch_device = "cuda" if backend == "cuda" else "cpu"
    splats = splats.on(torch_device)  # moved once, then reused for every frame of these splats
    view, k_t = camera_tensors(camera, torch_device)
    bg = torch.tensor(background, dtype=torch.float32, device=torch_device)
    mode = "RGB+ED" if with_depth else "RGB"
    out = rasterize(splats.as_dict(), view, k_t, camera.width, camera.height, splats.sh_degree, bg, mode, backend)
    colors = out.colors.float().cpu().numpy()
    alpha = out.alphas[..., 0].float().cpu().numpy()
    rgb = (np.clip(colors[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8)
    depth = np.where(alpha > 0, colors[..., 3], 0).astype(np.float32) if with_depth else None
    return SplatImage(rgb, alpha, depth)
