"""Splats moved by a similarity (the SfM world to the asset frame) and thinned for the report's viewer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from photoforge.geometry.similarity import similarity_parts
from photoforge.splatting.gaussians import Splats
from photoforge.splatting.transform import thinned, transformed


def _random_splats(count: int, seed: int = 0) -> Splats:
    rng = np.random.default_rng(seed)
    return Splats(
        means=torch.tensor(rng.normal(size=(count, 3)), dtype=torch.float32),
        scales=torch.tensor(np.log(rng.uniform(0.01, 0.3, (count, 3))), dtype=torch.float32),  # anisotropic
        quats=torch.tensor(rng.normal(size=(count, 4)), dtype=torch.float32),  # wxyz, unnormalised
        opacities=torch.tensor(rng.normal(size=count), dtype=torch.float32),
        sh0=torch.tensor(rng.normal(size=(count, 1, 3)), dtype=torch.float32),
        shN=torch.tensor(rng.normal(size=(count, 3, 3)), dtype=torch.float32),
    )


def _covariances(splats: Splats) -> np.ndarray:
    wxyz = splats.quats.double().numpy()
    rotations = Rotation.from_quat(wxyz[:, [1, 2, 3, 0]]).as_matrix()
    sizes = np.exp(splats.scales.double().numpy())
    return rotations @ (sizes[:, :, None] ** 2 * np.transpose(rotations, (0, 2, 1)))


def test_a_similarity_moves_means_and_turns_and_scales_covariances() -> None:
    splats = _random_splats(200)
    rotation = Rotation.from_euler("xyz", [30, -70, 110], degrees=True).as_matrix()
    transform = np.eye(4)
    transform[:3, :3], transform[:3, 3] = 2.5 * rotation, [1.0, -2.0, 0.5]
    moved = transformed(splats, transform)
    expected_means = splats.means.double().numpy() @ (2.5 * rotation).T + transform[:3, 3]
    np.testing.assert_allclose(moved.means.numpy(), expected_means, atol=1e-5)
    expected = 2.5**2 * rotation @ _covariances(splats) @ rotation.T  # s^2 R Sigma R^T
    np.testing.assert_allclose(_covariances(moved), expected, rtol=1e-4, atol=1e-7)
    assert moved.shN.shape == (200, 0, 3)  # view-dependent colour is not turned: left out, not kept wrong
    assert torch.equal(moved.opacities, splats.opacities) and torch.equal(moved.sh0, splats.sh0)


def test_thinning_keeps_the_most_opaque_in_file_order() -> None:
    splats = _random_splats(1000, seed=1)
    kept = thinned(splats, 100)
    assert len(kept) == 100 and kept.shN.shape == (100, 0, 3)
    cut = torch.sort(splats.opacities, descending=True).values[99]
    assert bool((kept.opacities >= cut).all())
    order = [int(np.flatnonzero((splats.means.numpy() == m).all(axis=1))[0]) for m in kept.means.numpy()]
    assert order == sorted(order)
    assert len(thinned(splats, 5000)) == 1000


@pytest.mark.parametrize(
    "linear", [np.diag([1.0, 1.0, -1.0]), np.diag([1.0, 2.0, 1.0]), np.zeros((3, 3))], ids=["mirror", "stretch", "flat"]
)
def test_what_is_not_a_similarity_is_refused(linear: np.ndarray) -> None:
    transform = np.eye(4)
    transform[:3, :3] = linear
    with pytest.raises(ValueError, match="not a similarity"):
        similarity_parts(transform)
