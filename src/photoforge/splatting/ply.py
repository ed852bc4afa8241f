"""Splats as a standard 3DGS PLY (the INRIA layout every viewer and editor reads), and back.

Binary little-endian, float32 properties in this order: x y z, nx ny nz (zeros), f_dc_0..2,
f_rest_0..(3*((d+1)^2-1)-1) channel-major (all red coefficients, then green, then blue, as the
original implementation flattens its N x 3 x (K-1) features), opacity (logit), scale_0..2 (log),
rot_0..3 (wxyz quaternion, unnormalised). Written and read with plyfile.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement, PlyParseError

from photoforge.errors import StageError
from photoforge.splatting.gaussians import Splats


def property_names(sh_degree: int) -> list[str]:
    rest = 3 * ((sh_degree + 1) ** 2 - 1)
    return [
        "x", "y", "z", "nx", "ny", "nz",
        *(f"f_dc_{i}" for i in range(3)),
        *(f"f_rest_{i}" for i in range(rest)),
        "opacity",
        *(f"scale_{i}" for i in range(3)),
        *(f"rot_{i}" for i in range(4)),
    ]  # fmt: skip


def write_splat_ply(path: Path, splats: Splats) -> None:
    n = len(splats)
    means = splats.means.detach().cpu().numpy()
    f_dc = splats.sh0.detach().cpu().numpy().reshape(n, 3)
    f_rest = splats.shN.detach().cpu().numpy().transpose(0, 2, 1).reshape(n, -1)  # channel-major
    columns = [
        means,
        np.zeros((n, 3), np.float32),
        f_dc,
        f_rest,
        splats.opacities.detach().cpu().numpy().reshape(n, 1),
        splats.scales.detach().cpu().numpy(),
        splats.quats.detach().cpu().numpy(),
    ]
    data = np.concatenate([c.astype(np.float32) for c in columns], axis=1)
    names = property_names(splats.sh_degree)
    vertex = np.empty(n, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        vertex[name] = data[:, i]
    PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(str(path))


def read_splat_ply(path: Path) -> Splats:
    """A 3DGS PLY back into Splats (any SH degree 0-3, inferred from the f_rest count)."""
    try:
        vertex = PlyData.read(str(path))["vertex"]
    except (OSError, KeyError, ValueError, PlyParseError) as exc:  # PlyParseError: a truncated or garbled file
        raise StageError("splat", f"not a readable 3DGS PLY: {exc}", path) from exc
    names = [p.name for p in vertex.properties]
    rest = sum(1 for name in names if name.startswith("f_rest_"))
    degree = math.isqrt(rest // 3 + 1) - 1
    if 3 * ((degree + 1) ** 2 - 1) != rest or any(n not in names for n in property_names(degree)):
        raise StageError("splat", f"not a 3DGS PLY (properties: {', '.join(names[:12])} ...)", path)
    n = vertex.count

    def stack(keys: list[str]) -> torch.Tensor:
        return torch.from_numpy(np.stack([np.asarray(vertex[k], np.float32) for k in keys], axis=1))

    rest_keys = [f"f_rest_{i}" for i in range(rest)]
    shn = stack(rest_keys).reshape(n, 3, -1).transpose(1, 2) if rest else torch.zeros((n, 0, 3))
    return Splats(
        means=stack(["x", "y", "z"]),
        scales=stack([f"scale_{i}" for i in range(3)]),
        quats=stack([f"rot_{i}" for i in range(4)]),
        opacities=torch.from_numpy(np.asarray(vertex["opacity"], np.float32)),
        sh0=stack([f"f_dc_{i}" for i in range(3)]).reshape(n, 1, 3),
        shN=shn.contiguous(),
    )
