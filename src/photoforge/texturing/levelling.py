"""Global colour levelling: one RGB gain per view so that views agree where they overlap.

Exposure and white balance differ between photos; left alone, a seam shows wherever the
chosen view changes. Least squares in log space (scipy's lsqr) over texels seen by several
views, with a weak pull of every gain towards 1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import lsqr


def shared_sample(views_per_texel: np.ndarray, max_texels: int = 40_000, seed: int = 0) -> np.ndarray:
    """Up to `max_texels` texel rows (a fixed random draw) among those seen by two views or more: the
    texels `view_gains` is solved over."""
    shared = np.flatnonzero(views_per_texel >= 2)
    return np.random.default_rng(seed).choice(shared, size=min(max_texels, len(shared)), replace=False)


def view_gains(colours: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """V x 3 multiplicative gains from N x V x 3 colours where visible (N x V) is true (`shared_sample`'s
    texels: each seen by two views or more)."""
    texels, v = visible.shape
    gains = np.ones((v, 3))
    if texels == 0:
        return gains
    rows_t, cols_v = np.nonzero(visible)
    m = len(rows_t)
    for channel in range(3):
        obs = np.log(np.maximum(colours[rows_t, cols_v, channel], 1.0))
        # unknowns: log-gain per view (v) then log-radiance per texel; g_v + log c = r_t
        a = sp.csr_matrix(
            (
                np.concatenate([np.ones(m), -np.ones(m)]),
                (np.concatenate([np.arange(m), np.arange(m)]), np.concatenate([cols_v, v + rows_t])),
            ),
            shape=(m, v + texels),
        )
        prior = sp.hstack([sp.identity(v) * 0.1, sp.csr_matrix((v, texels))])
        solution = lsqr(sp.vstack([a, prior]), np.concatenate([-obs, np.zeros(v)]), atol=1e-6, btol=1e-6)[0]
        log_gain = solution[:v]
        gains[:, channel] = np.exp(log_gain - log_gain.mean())
    return gains
