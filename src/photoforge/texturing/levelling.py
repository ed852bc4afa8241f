"""Global colour levelling: one RGB gain per view so that views agree where they overlap.

Exposure and white balance differ between photos; left alone, a seam shows wherever the
chosen view changes. Least squares in log space (scipy's lsqr) over texels seen by several
views, with a weak pull of every gain towards 1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import lsqr


def view_gains(colours: np.ndarray, visible: np.ndarray, max_texels: int = 40_000, seed: int = 0) -> np.ndarray:
    """V x 3 multiplicative gains from N x V x 3 colours where visible (N x V) is true."""
    v = visible.shape[1]
    shared = np.nonzero(visible.sum(axis=1) >= 2)[0]
    gains = np.ones((v, 3))
    if len(shared) == 0:
        return gains
    rng = np.random.default_rng(seed)
    pick = rng.choice(shared, size=min(max_texels, len(shared)), replace=False)
    rows_t, cols_v = np.nonzero(visible[pick])
    m = len(rows_t)
    for channel in range(3):
        obs = np.log(np.maximum(colours[pick[rows_t], cols_v, channel], 1.0))
        # unknowns: log-gain per view (v) then log-radiance per texel (len(pick)); g_v + log c = r_t
        a = sp.csr_matrix(
            (
                np.concatenate([np.ones(m), -np.ones(m)]),
                (np.concatenate([np.arange(m), np.arange(m)]), np.concatenate([cols_v, v + rows_t])),
            ),
            shape=(m, v + len(pick)),
        )
        prior = sp.hstack([sp.identity(v) * 0.1, sp.csr_matrix((v, len(pick)))])
        solution = lsqr(sp.vstack([a, prior]), np.concatenate([-obs, np.zeros(v)]), atol=1e-6, btol=1e-6)[0]
        log_gain = solution[:v]
        gains[:, channel] = np.exp(log_gain - log_gain.mean())
    return gains
