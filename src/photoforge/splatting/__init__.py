"""3D Gaussian splatting with gsplat: training, the 3DGS PLY, rendering from any camera, a mesh from splats.

CUDA runs gsplat's own rasterizer; without CUDA a PyTorch path (gsplat's reference projection
and SH, photoforge's compositing) trains small configurations. See rasterize.py for which is which.

The names below load on first use: the trainer, renderer and scorer must import on a bare GPU
machine (torch, gsplat, numpy, scipy, opencv) that lacks open3d, pycolmap and pydantic, which
only `splat_surface` and the stage need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from photoforge.splatting.gaussians import Splats
    from photoforge.splatting.ply import read_splat_ply, write_splat_ply
    from photoforge.splatting.render import SPLATS_PLY, SplatImage, load_splats, render_splats
    from photoforge.splatting.surface import splat_surface, surface_from_splats

_HOMES = {
    "Splats": "gaussians",
    "read_splat_ply": "ply",
    "write_splat_ply": "ply",
    "SPLATS_PLY": "render",
    "SplatImage": "render",
    "load_splats": "render",
    "render_splats": "render",
    "splat_surface": "surface",
    "surface_from_splats": "surface",
}

__all__ = [
    "SPLATS_PLY",
    "SplatImage",
    "Splats",
    "load_splats",
    "read_splat_ply",
    "render_splats",
    "splat_surface",
    "surface_from_splats",
    "write_splat_ply",
]


def __getattr__(name: str) -> Any:
    """Import a re-exported name's module when it is first asked for (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
