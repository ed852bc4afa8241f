"""The splat stage in the DAG: trained (tiny, on CPU), meshed, on the turntable, cached like every stage."""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import trimesh
from conftest import SMALL_RUN

from flows.gpu import GPU_DEPLOYMENT
from flows.reconstruct import reconstruct, why_not
from photoforge.presets import load_preset
from photoforge.synthetic import SyntheticCapture

pytestmark = pytest.mark.usefixtures("prefect_api")

TINY_SPLATS = {
    "splat.enabled": True,
    "splat.device": "cpu",
    "splat.steps": 150,
    "splat.max_size": 160,
    "splat.max_gaussians": 8000,
    "splat.sh_degree": 1,
    "splat.strategy": "default",
    "splat.background": [0.5, 0.5, 0.5],
    "splat.lr.means": 8e-4,
    "splat.lr.scales": 0.02,
    "splat.lr.opacities": 0.1,
    "splat.lr.sh0": 0.01,
    "splat.eval_every": 0,
    "splat.checkpoint_every": 0,
    "mesh.surface": "splats",
}


def _rows(summary: dict) -> dict[str, dict]:
    return {row["stage"]: row for row in summary["stages"]}


def test_splats_feed_mesh_and_turntable_and_are_cached(synthetic: SyntheticCapture, tmp_path: Path) -> None:
    workspace = str(tmp_path / "ws")
    first = reconstruct(str(synthetic.capture), "preview", SMALL_RUN | TINY_SPLATS, workspace)
    rows = _rows(first)
    assert first["status"] == "completed" and rows["splat"]["status"] == "ran"
    splat = rows["splat"]["metrics"]
    assert splat["device"] == "cpu" and splat["psnr"] > splat["psnr_initial"] + 2.0, splat
    assert rows["mesh"]["metrics"]["method"] == "splats" and rows["mesh"]["metrics"]["faces"] > 1000

    outputs = Path(first["outputs"])
    asset = trimesh.load(outputs / "asset.glb", force="mesh")
    assert len(asset.faces) > 1000
    reader = imageio_ffmpeg.read_frames(str(outputs / "splat_turntable.mp4"))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(180, 320, 3) for f in reader]
    assert meta["size"] == (320, 180) and len(frames) == 12
    background = np.array([32, 32, 36])
    object_share = [float((np.abs(f.astype(int) - background).sum(axis=2) > 30).mean()) for f in frames]
    assert min(object_share) > 0.05, object_share  # the splats are in frame on the whole orbit
    assert (outputs / "splats.ply").stat().st_size > 100_000
    assert "Gaussian splats" in (outputs / "report.html").read_text()

    # only a turntable param changed: no retraining, no remeshing
    second = reconstruct(str(synthetic.capture), "preview", SMALL_RUN | TINY_SPLATS | {"turntable.fps": 24}, workspace)
    status = {stage: row["status"] for stage, row in _rows(second).items()}
    assert status["splat"] == "cached" and status["mesh"] == "cached" and status["bake"] == "cached"
    assert status["turntable"] == "ran" and status["report"] == "ran"


def test_splats_left_out_when_off_or_too_big_for_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from photoforge.splatting import rasterize

    monkeypatch.delenv(GPU_DEPLOYMENT, raising=False)
    monkeypatch.setattr(rasterize, "cuda_ready", lambda: "no CUDA (test)")  # as on CI, even on a GPU machine
    assert why_not(load_preset("standard")) == "off in the preset (splat.enabled)"
    hero = load_preset("hero")
    assert hero.splat.enabled and hero.mesh.surface == "classical"
    reason = why_not(hero)
    assert reason is not None and "needs a CUDA GPU" in reason and "splat.steps=30000" in reason
    assert why_not(load_preset("preview", TINY_SPLATS)) is None
    monkeypatch.setenv(GPU_DEPLOYMENT, "gpu-stage/gpu")  # the GPU pool decides there
    assert why_not(hero) is None
