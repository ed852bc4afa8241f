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

from photoforge.geometry.similarity import similarity_parts
from photoforge.splatting.gaussians import Splats


def transformed(splats: Splats, transform: np.ndarray) -> Splats:
    """The same splats in the frame `transform` (4x4 similarity) maps them into, colour from SH band 0 only:
    view-dependent colour would have to be rotated too, and the viewer does not show it."""
    scale, rotation, translation = similarity_parts(transform)
    means = splats.means.detach().cpu().double().numpy() @ (scale * rotation).T + translation
    wxyz = splats.quats.detach().cpu().double().numpy()
    turned = Rotation.from_matrix(rotation) * Rotation.from_quat(wxyz[:, [1, 2, 3, 0]])  # scipy: xyzw
    as_float = {"dtype": torch.float32}
    return Splats(
        means=torch.tensor(means, **as_float),
        scales=splats.scales.detach().cpu().float() + float(np.log(scale)),  # log sizes
        quats=torch.tensor(turned.as_quat()[:, [3, 0, 1, 2]], **as_float),
        opacities=splats.opacities.detach().cpu().float().clone(),
        sh0=splats.sh0.detach().cpu().float().clone(),
        shN=torch.zeros((len(splats), 0, 3)),
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
