"""Gaussian parameters in gsplat's layout, their initialisation from a point cloud, and SH helpers.

Parameters are stored raw, as gsplat's trainer and the 3DGS PLY keep them: log scales, logit
opacities, unnormalised wxyz quaternions, SH DC (`sh0`, N x 1 x 3) and higher bands (`shN`,
N x (K-1) x 3). gsplat's densification strategies edit a ParameterDict with exactly these keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial import cKDTree

SH_C0 = 0.28209479177387814  # the degree-0 SH basis: colour = SH_C0 * sh0 + 0.5
PARAM_KEYS = ("means", "scales", "quats", "opacities", "sh0", "shN")


def sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def rgb_to_sh(rgb: np.ndarray) -> np.ndarray:
    """Colours in [0, 1] as SH DC coefficients (what the renderer maps back with +0.5)."""
    return (rgb - 0.5) / SH_C0


def sh_to_rgb(sh0: np.ndarray) -> np.ndarray:
    return np.clip(sh0 * SH_C0 + 0.5, 0.0, 1.0)


@dataclass
class Splats:
    """Trained (or loaded) Gaussians, detached: what rendering, meshing and the PLY work on."""

    means: torch.Tensor
    scales: torch.Tensor
    quats: torch.Tensor
    opacities: torch.Tensor
    sh0: torch.Tensor
    shN: torch.Tensor
    _copies: dict[str, Splats] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.means)

    @property
    def sh_degree(self) -> int:
        return math.isqrt(self.shN.shape[1] + 1) - 1

    @property
    def device(self) -> torch.device:
        return self.means.device

    def to(self, device: torch.device | str) -> Splats:
        return Splats(*(getattr(self, k).to(device) for k in PARAM_KEYS))

    def on(self, device: torch.device | str) -> Splats:
        """These splats on `device`, copied there once: a turntable renders the same splats per frame.

        The copy is kept with these splats; edit them in place and ask for a fresh copy with `to`.
        """
        target = torch.device(device)
        if self.device.type == target.type:
            return self
        key = str(target)
        if key not in self._copies:
            self._copies[key] = self.to(target)
        return self._copies[key]

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k) for k in PARAM_KEYS}

    @classmethod
    def from_params(cls, params: torch.nn.ParameterDict | dict[str, torch.Tensor]) -> Splats:
        return cls(*(params[k].detach().clone() for k in PARAM_KEYS))

    def as_params(self) -> torch.nn.ParameterDict:
        return torch.nn.ParameterDict({k: torch.nn.Parameter(getattr(self, k).clone()) for k in PARAM_KEYS})


def initial_scales(xyz: np.ndarray, neighbours: int = 3) -> np.ndarray:
    """Mean distance to the nearest neighbours per point, as 3DGS and gsplat initialise scales."""
    if len(xyz) < 2:
        return np.full(len(xyz), 0.01)
    k = min(neighbours, len(xyz) - 1)
    distances, _ = cKDTree(xyz).query(xyz, k=k + 1)
    mean = np.sqrt(np.mean(np.square(distances[:, 1:]), axis=1))
    positive = mean[mean > 0]
    floor = float(np.median(positive)) * 0.1 if len(positive) else 1e-4
    return np.maximum(mean, floor)


def init_splats(
    xyz: np.ndarray,
    rgb: np.ndarray,
    sh_degree: int,
    max_points: int,
    seed: int,
    init_opacity: float = 0.1,
    init_scale: float = 1.0,
) -> Splats:
    """Gaussians on (a random subset of at most max_points of) the points, coloured from them.

    xyz: N x 3; rgb: N x 3 uint8. Scales come from the full cloud's spacing thinned to the subset.
    """
    rng = np.random.default_rng(seed)
    if len(xyz) > max_points:
        keep = np.sort(rng.choice(len(xyz), max_points, replace=False))
        xyz, rgb = xyz[keep], rgb[keep]
    xyz = np.asarray(xyz, np.float64)
    scales = np.log(initial_scales(xyz) * init_scale)
    generator = torch.Generator().manual_seed(seed)
    n = len(xyz)
    sh0 = rgb_to_sh(np.asarray(rgb, np.float32) / 255.0)[:, None, :]
    return Splats(
        means=torch.from_numpy(xyz.astype(np.float32)),
        scales=torch.from_numpy(np.repeat(scales[:, None], 3, axis=1).astype(np.float32)),
        quats=torch.rand((n, 4), generator=generator),
        opacities=torch.full((n,), math.log(init_opacity / (1 - init_opacity))),
        sh0=torch.from_numpy(sh0.astype(np.float32)),
        shN=torch.zeros((n, sh_bases(sh_degree) - 1, 3)),
    )
