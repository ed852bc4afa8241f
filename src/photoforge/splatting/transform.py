"""Splats moved into another frame, and thinned for a web viewer.

The splat stage trains in the reconstruction's (SfM) frame; the mesh, its GLBs and the report's viewer
are in the asset frame (upright, maybe metres): a similarity transform world -> asset, which moves the
means, turns the rotations and scales the sizes. Thinning keeps the most opaque splats with their colour
(SH band 0): what a browser can hold and sort, and what a viewer without view-dependent colour shows.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from photoforge.splatting.gaussians import Splats


def similarity_parts(transform: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """A 4x4 similarity (scale x rotation, translation) as (scale, 3x3 rotation, translation)."""
    matrix = np.asarray(transform, np.float64)
    linear = matrix[:3, :3]
    scale = float(np.cbrt(np.linalg.det(linear)))
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"not a similarity with positive scale (det {np.linalg.det(linear):.3g})")
    rotation = linear / scale
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4):
        raise ValueError("not a similarity: its 3x3 part is not a scaled rotation")
    return scale, rotation, matrix[:3, 3]


def transformed(splats: Splats, transform: np.ndarray) -> Splats:
    """The same splats in the frame `transform` (4x4 similarity) maps them into."""
    scale, rotation, translation = similarity_parts(transform)
    means = splats.means.detach().cpu().double().numpy() @ (scale * rotation).T + translation
    wxyz = splats.quats.detach().cpu().double().numpy()
    turned = Rotation.from_matrix(rotation) * Rotation.from_quat(wxyz, scalar_first=True)
    as_float = {"dtype": torch.float32}
    return Splats(
        means=torch.tensor(means, **as_float),
        scales=splats.scales.detach().cpu().float() + float(np.log(scale)),  # log sizes
        quats=torch.tensor(turned.as_quat(scalar_first=True), **as_float),
        opacities=splats.opacities.detach().cpu().float().clone(),
        sh0=splats.sh0.detach().cpu().float().clone(),
        shN=splats.shN.detach().cpu().float().clone(),  # view-dependent colour is not rotated: see thinned()
    )


def thinned(splats: Splats, max_count: int) -> Splats:
    """At most `max_count` splats, the most opaque first, colour from SH band 0 only."""
    keep = torch.argsort(splats.opacities.detach().cpu(), descending=True)[: max(int(max_count), 0)]
    keep = torch.sort(keep).values  # the file's order, less the dropped ones
    return Splats(
        means=splats.means[keep].detach().cpu().float(),
        scales=splats.scales[keep].detach().cpu().float(),
        quats=splats.quats[keep].detach().cpu().float(),
        opacities=splats.opacities[keep].detach().cpu().float(),
        sh0=splats.sh0[keep].detach().cpu().float(),
        shN=torch.zeros((len(keep), 0, 3)),
    )
