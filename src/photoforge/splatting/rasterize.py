"""One camera's render of the Gaussians: gsplat's CUDA rasterizer, or a PyTorch path on CPU.

On CUDA, `gsplat.rasterization` does everything (its kernels JIT-compile on first use). Without
CUDA, gsplat has no complete rasterizer: its `_torch_impl` projects (`_quat_scale_to_covar_preci`,
`_fully_fused_projection`) and evaluates SH (`_spherical_harmonics`) in pure PyTorch, but its
`_rasterize_to_pixels` calls the CUDA `rasterize_to_indices_in_range` and needs nerfacc, and its
`_isect_tiles` is a Python loop per Gaussian. So the CPU path uses gsplat's projection and SH and
composites here: every (Gaussian, pixel) pair inside the Gaussian's 3-sigma box, sorted per pixel
front to back, alpha-blended as gsplat's kernel does (alpha capped at 0.999, pairs under 1/255
skipped, a pixel stops at transmittance 1e-4), differentiable through autograd. It returns the
same `info` keys gsplat's DefaultStrategy reads (`means2d` with its gradient, `radii`, ...).
"""

from __future__ import annotations

import functools
import math
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics

from photoforge.camera.model import Camera

Backend = Literal["cuda", "cpu"]
RenderMode = Literal["RGB", "RGB+ED", "ED"]

ALPHA_MAX = 0.999
ALPHA_MIN = 1.0 / 255.0
TRANSMITTANCE_MIN = 1e-4
# The CPU compositor materialises every Gaussian-pixel pair; past this it would swap, not finish.
MAX_CPU_PAIRS = 40_000_000


class CpuRasterizerOverflow(RuntimeError):
    """The CPU path would need more Gaussian-pixel pairs than it can hold (Gaussians too big or many)."""


@dataclass
class Rendered:
    colors: torch.Tensor  # H x W x D (D = 3, 4 for RGB+ED, 1 for ED)
    alphas: torch.Tensor  # H x W x 1
    info: dict[str, Any]


def cuda_ready() -> str | None:
    """None if gsplat can rasterize on CUDA here, else why not (for the error the user sees)."""
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    return _gsplat_kernels_problem()


@functools.lru_cache(maxsize=1)
def _gsplat_kernels_problem() -> str | None:
    """Importing gsplat.cuda._backend JIT-compiles its kernels on first use, and that can fail.

    Asked once per process: a failed build would otherwise be retried, for minutes, on every render.
    """
    try:
        from gsplat.cuda._backend import _C
    except (ImportError, OSError, RuntimeError, subprocess.SubprocessError) as exc:
        # RuntimeError: nvcc/ninja failed ("Error building extension"); ImportError/OSError: a built .so
        # that does not load (ABI or driver mismatch)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return f"gsplat's CUDA kernels failed to build or load ({type(exc).__name__}: {first})"
    if _C is None:
        return "gsplat's CUDA kernels are unavailable (no CUDA toolkit to JIT-compile them: install nvcc / CUDA_HOME)"
    return None


def camera_tensors(camera: Camera, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """(4x4 cam_from_world, 3x3 K) float32 tensors of a camera, as gsplat takes them."""
    rotation_t = torch.as_tensor(camera.cam_from_world.rotation, dtype=torch.float32, device=device)
    translation_t = torch.as_tensor(camera.cam_from_world.translation, dtype=torch.float32, device=device)
    return viewmat(rotation_t, translation_t), torch.as_tensor(camera.k, dtype=torch.float32, device=device)


def viewmat(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """4x4 cam_from_world matrix from its rotation and translation (OpenCV axes, as COLMAP and gsplat use)."""
    out = torch.eye(4, dtype=torch.float32, device=rotation.device)
    out[:3, :3] = rotation
    out[:3, 3] = translation
    return out


def rasterize(
    params: Mapping[str, torch.Tensor],
    view: torch.Tensor,
    k: torch.Tensor,
    width: int,
    height: int,
    sh_degree: int,
    background: torch.Tensor | None = None,
    render_mode: RenderMode = "RGB",
    backend: Backend = "cpu",
) -> Rendered:
    """Render raw parameters (gsplat layout) from one camera: 4x4 cam_from_world `view`, 3x3 `k`.

    Colours come out in [0, 1] (not clamped above), the background blended in where alpha < 1.
    """
    means = params["means"]
    quats = params["quats"]
    scales = torch.exp(params["scales"])
    opacities = torch.sigmoid(params["opacities"])
    shs = torch.cat([params["sh0"], params["shN"]], dim=1)
    if backend == "cuda":
        from gsplat import rasterization

        colors, alphas, info = rasterization(
            means, quats, scales, opacities, shs, view[None], k[None], width, height,
            sh_degree=sh_degree, packed=False, backgrounds=None if background is None else background[None],
            render_mode=render_mode,
        )  # fmt: skip
        return Rendered(colors[0], alphas[0], info)
    return _rasterize_cpu(
        means, quats, scales, opacities, shs, view, k, width, height, sh_degree, background, render_mode
    )


def _rasterize_cpu(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    shs: torch.Tensor,
    view: torch.Tensor,
    k: torch.Tensor,
    width: int,
    height: int,
    sh_degree: int,
    background: torch.Tensor | None,
    render_mode: RenderMode,
) -> Rendered:
    covars, _ = _quat_scale_to_covar_preci(quats, scales, compute_covar=True, compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(means, covars, view[None], k[None], width, height)
    visible = (radii[0] > 0).all(dim=-1)
    ids = torch.nonzero(visible).squeeze(1)
    order = ids[torch.argsort(depths[0, ids])]  # visible Gaussians, front to back
    campos = torch.linalg.inv(view)[:3, 3]
    colors = _spherical_harmonics(sh_degree, means[order] - campos, shs[order])
    colors = torch.clamp_min(colors + 0.5, 0.0)  # gsplat's (and the INRIA renderer's) convention
    if render_mode == "RGB+ED":
        colors = torch.cat([colors, depths[0, order, None]], dim=-1)
    elif render_mode == "ED":
        colors = depths[0, order, None]
    image, alpha = _composite(
        means2d[0, order], conics[0, order], opacities[order], colors, radii[0, order], width, height
    )
    if render_mode in ("RGB+ED", "ED"):
        image = torch.cat([image[..., :-1], image[..., -1:] / alpha.clamp_min(1e-10)], dim=-1)
    if background is not None and render_mode != "ED":
        rgb = image[..., :3] + background * (1.0 - alpha)
        image = torch.cat([rgb, image[..., 3:]], dim=-1)
    info = {
        "means2d": means2d,
        "radii": radii,
        "depths": depths,
        "conics": conics,
        "width": width,
        "height": height,
        "n_cameras": 1,
        "gaussian_ids": None,
    }
    return Rendered(image, alpha, info)


def _composite(
    means2d: torch.Tensor,  # M x 2, front to back
    conics: torch.Tensor,  # M x 3
    opacities: torch.Tensor,  # M
    colors: torch.Tensor,  # M x D
    radii: torch.Tensor,  # M x 2
    width: int,
    height: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Front-to-back alpha blending of depth-sorted 2D Gaussians over their pixel boxes.

    The pairs that count (alpha >= 1/255) are found without autograd first; the differentiable
    part then gathers each kept pair's Gaussian once (index_select: its backward is one index_add).
    """
    device = means2d.device
    channels = colors.shape[-1]
    pixels = width * height
    with torch.no_grad():
        centre = means2d.detach()
        x0 = torch.floor(centre[:, 0] - radii[:, 0]).clamp(0, width).long()
        x1 = torch.ceil(centre[:, 0] + radii[:, 0]).clamp(0, width).long()
        y0 = torch.floor(centre[:, 1] - radii[:, 1]).clamp(0, height).long()
        y1 = torch.ceil(centre[:, 1] + radii[:, 1]).clamp(0, height).long()
        box_w = x1 - x0
        counts = box_w * (y1 - y0)
        total = int(counts.sum())
        if total > MAX_CPU_PAIRS:
            raise CpuRasterizerOverflow(f"{total} Gaussian-pixel pairs (limit {MAX_CPU_PAIRS})")
        rank = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)
        boxes = torch.stack([x0, y0, box_w, torch.cumsum(counts, 0) - counts], dim=1).index_select(0, rank)
        local = torch.arange(total, device=device) - boxes[:, 3]
        px = boxes[:, 0] + local % boxes[:, 2]
        py = boxes[:, 1] + local // boxes[:, 2]
        shape = torch.cat([centre, conics.detach(), opacities.detach()[:, None]], dim=1).index_select(0, rank)
        sigma, alpha = _alpha(shape[:, 0:2], shape[:, 2:5], shape[:, 5], px, py)
        kept = torch.nonzero((sigma >= 0) & (alpha >= ALPHA_MIN)).squeeze(1)
        rank, px, py = rank[kept], px[kept], py[kept]
        pixel = py * width + px
        # rank is the depth order: sorting by (pixel, rank) lists each pixel's Gaussians front to back
        order = torch.argsort(pixel * len(counts) + rank)
        pixel, rank, px, py = pixel[order], rank[order], px[order], py[order]
        _, run_lengths = torch.unique_consecutive(pixel, return_counts=True)
        run_starts = torch.repeat_interleave(torch.cumsum(run_lengths, 0) - run_lengths, run_lengths)
    packed = torch.cat([means2d, conics, opacities[:, None], colors], dim=1)
    pair = torch.index_select(packed, 0, rank)
    _, alpha = _alpha(pair[:, 0:2], pair[:, 2:5], pair[:, 5], px, py)
    log_keep = torch.log1p(-alpha).double()  # float64: cumulative sums over millions of pairs
    exclusive = torch.cumsum(log_keep, 0) - log_keep
    log_t = exclusive - exclusive[run_starts]  # log transmittance in front of each pair
    alive = (log_t + log_keep) > math.log(TRANSMITTANCE_MIN)  # gsplat stops a pixel below 1e-4
    weights = (alpha.double() * torch.exp(log_t) * alive).to(colors.dtype)
    image = torch.zeros((pixels, channels), device=device, dtype=colors.dtype)
    image = image.index_add(0, pixel, weights[:, None] * pair[:, 6:])
    acc = torch.zeros(pixels, device=device, dtype=colors.dtype).index_add(0, pixel, weights)
    return image.reshape(height, width, channels), acc.reshape(height, width, 1)


def _alpha(
    centre: torch.Tensor, conic: torch.Tensor, opacity: torch.Tensor, px: torch.Tensor, py: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian exponent and alpha of each pair at its pixel centre, as gsplat's kernel computes them."""
    dx = px.to(centre.dtype) + 0.5 - centre[:, 0]
    dy = py.to(centre.dtype) + 0.5 - centre[:, 1]
    sigma = 0.5 * (conic[:, 0] * dx * dx + conic[:, 2] * dy * dy) + conic[:, 1] * dx * dy
    return sigma, torch.clamp_max(opacity * torch.exp(-sigma), ALPHA_MAX)


def resolve_backend(device: Literal["auto", "cuda", "cpu"], stage: str = "splat") -> Backend:
    """auto: CUDA when gsplat's kernels work here, else the CPU path; cuda: CUDA or a clear error."""
    return resolve_device(device, stage)[0]


def resolve_device(device: Literal["auto", "cuda", "cpu"], stage: str = "splat") -> tuple[Backend, str | None]:
    """The backend, and why auto fell back to the CPU path (None: it did not, or cpu was asked for)."""
    if device == "cpu":
        return "cpu", None
    problem = cuda_ready()
    if problem is None:
        return "cuda", None
    if device == "cuda":
        from photoforge.errors import StageError

        raise StageError(stage, f"device cuda asked for, but {problem}; use --set {stage}.device=cpu for a small run")
    return "cpu", problem
