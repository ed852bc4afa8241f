"""3D Gaussian splatting with gsplat: training, the 3DGS PLY, rendering from any camera, a mesh from splats.

CUDA runs gsplat's own rasterizer; without CUDA a PyTorch path (gsplat's reference projection
and SH, photoforge's compositing) trains small configurations. See rasterize.py for which is which.
"""

from photoforge.splatting.gaussians import Splats
from photoforge.splatting.ply import read_splat_ply, write_splat_ply
from photoforge.splatting.render import SPLATS_PLY, SplatImage, load_splats, render_splats
from photoforge.splatting.surface import splat_surface, surface_from_splats

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
