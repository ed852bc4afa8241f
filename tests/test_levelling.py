"""Colour levelling (photoforge.texturing.levelling): one RGB gain per view, from texels several views see."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from photoforge.texturing.levelling import view_gains


def _capture(texels: int, views: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colours of texels (random radiance) through views with known gains and 3% noise; each texel seen by 2+ views."""
    rng = np.random.default_rng(seed)
    visible = rng.random((texels, views)) < 0.3
    rows = np.arange(texels)
    first = rng.integers(0, views, texels)
    visible[rows, first] = True
    visible[rows, (first + rng.integers(1, views, texels)) % views] = True
    gains = rng.uniform(0.7, 1.4, (views, 3))
    radiance = rng.uniform(30.0, 200.0, (texels, 1, 3))
    colours = radiance / gains[None] * rng.lognormal(0.0, 0.03, (texels, views, 3))
    return colours.astype(np.float32), visible, gains


def _normalised(gains: np.ndarray) -> np.ndarray:
    """Gains up to one common factor per channel (what levelling can know): geometric mean 1."""
    return gains / np.exp(np.log(gains).mean(axis=0))


def test_gains_undo_each_view_s_exposure() -> None:
    colours, visible, truth = _capture(4000, 12, seed=3)
    gains = view_gains(colours, visible)
    assert np.max(np.abs(gains / _normalised(truth) - 1.0)) < 0.01


def test_gains_are_the_least_squares_minimum_over_views_and_texels() -> None:
    """The gains alone (texels eliminated) solve the full problem: log-gain per view and log-radiance per
    texel, g_v + log c_tv = r_t, plus 0.1 g_v = 0, solved directly by scipy over all V + N unknowns."""
    colours, visible, _ = _capture(600, 7, seed=5)
    texels, views = visible.shape
    rows, cols = np.nonzero(visible)
    m = len(rows)
    system = sp.vstack(
        [
            sp.csr_matrix(
                (np.r_[np.ones(m), -np.ones(m)], (np.r_[np.arange(m), np.arange(m)], np.r_[cols, views + rows])),
                shape=(m, views + texels),
            ),
            sp.hstack([sp.identity(views) * 0.1, sp.csr_matrix((views, texels))]),
        ]
    ).tocsc()
    expected = np.ones((views, 3))
    for channel in range(3):
        target = np.r_[-np.log(np.maximum(colours[rows, cols, channel], 1.0)), np.zeros(views)]
        log_gain = spsolve((system.T @ system).tocsc(), system.T @ target)[:views]
        expected[:, channel] = np.exp(log_gain - log_gain.mean())
    np.testing.assert_allclose(view_gains(colours, visible), expected, rtol=1e-9)


def test_no_shared_texels_leaves_every_gain_at_one() -> None:
    gains = view_gains(np.zeros((0, 4, 3), np.float32), np.zeros((0, 4), bool))
    assert gains.shape == (4, 3) and np.all(gains == 1.0)
