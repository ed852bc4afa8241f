"""Gaussian splatting on the synthetic capture (CPU path): held-out gain, the 3DGS PLY, mesh from splats, limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
import torch
from plyfile import PlyData

from photoforge.errors import StageError
from photoforge.layout import CHECKPOINT, SPLAT_JSON
from photoforge.qa.image_scores import masked_psnr
from photoforge.qa.pose_errors import read_strecha_dir
from photoforge.qa.surface_scores import similarity_to_truth
from photoforge.render.raycast import MeshScene
from photoforge.splatting import Splats, load_splats, read_splat_ply, render_splats, splat_surface, write_splat_ply
from photoforge.splatting.data import CAMERAS_JSON, read_cameras
from photoforge.splatting.ply import property_names
from photoforge.splatting.rasterize import rasterize, viewmat
from photoforge.stage import StageResult, no_progress
from photoforge.stages import splat
from photoforge.stages.splat import SplatInputs, SplatLearningRates, SplatParams
from photoforge.synthetic import SyntheticCapture

GREY = (0.16, 0.16, 0.16)  # the synthetic capture's backdrop
# A small CPU run: 160 px, 5k Gaussians growing to 10k, 200 steps, learning rates raised for so few steps.
TINY = SplatParams(
    device="cpu",
    steps=200,
    max_size=160,
    max_gaussians=10_000,
    sh_degree=1,
    strategy="default",
    background=GREY,
    lr=SplatLearningRates(means=8e-4, scales=0.02, opacities=0.1, sh0=0.01),
    eval_every=100,
    checkpoint_every=0,
)
# Smaller still, for the resume and fallback checks.
MINI = TINY.model_copy(update={"steps": 40, "max_size": 64, "max_gaussians": 2000, "eval_every": 0})


def _artefact(stage: str, path: Path) -> StageResult:
    """An upstream artefact at `path` (run reads only its directory)."""
    return StageResult(
        stage=stage, key=f"{stage}-key", path=str(path), metrics={}, reused=False, seconds=0.0, compute_seconds=0.0
    )


def _inputs(dense_run: dict) -> SplatInputs:
    return SplatInputs(depth=dense_run["depth"], fusion=dense_run["fusion"])


@pytest.fixture(scope="module")
def splat_run(dense_run: dict):  # type: ignore[no-untyped-def]
    return splat.STAGE.execute(dense_run["store"], _inputs(dense_run), TINY)


def test_training_raises_held_out_psnr_over_the_initial_splats(splat_run) -> None:  # type: ignore[no-untyped-def]
    m = splat_run.metrics
    assert m["device"] == "cpu" and m["strategy"] == "default" and m["stopped_by"] == "steps"
    assert m["steps"] == 200 and m["train_views"] == 17 and m["test_views"] == 3
    assert m["resolution"] == [160, 120]
    # measured: 19.1 dB at initialisation, 25.6 dB after 200 steps
    assert m["psnr"] - m["psnr_initial"] >= 4.0, m
    assert m["ssim"] > m["ssim_initial"] + 0.1, m
    assert [e["step"] for e in m["evaluations"]] == [0, 100, 200]
    assert m["gaussians_initial"] == 5000 and 5000 < m["gaussians"] <= 10_000  # densified, capped
    assert m["peak_gpu_memory_gb"] == 0 and m["steps_per_s"] > 0
    assert "PSNR" in m["summary"]
    for picture in m["comparisons"]:
        assert (splat_run.dir / picture).stat().st_size > 1000
    assert (splat_run.dir / SPLAT_JSON).is_file() and (splat_run.dir / CAMERAS_JSON).is_file()
    assert not (splat_run.dir / CHECKPOINT).exists()


def test_splat_ply_has_the_inria_layout_and_round_trips(splat_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ply = PlyData.read(str(splat_run.dir / "splats.ply"))
    assert ply.text is False and ply.byte_order == "<"
    vertex = ply["vertex"]
    assert [p.name for p in vertex.properties] == property_names(1)
    assert property_names(1)[9:18] == [f"f_rest_{i}" for i in range(9)] and property_names(1)[-8:-7] == ["opacity"]
    assert all(p.val_dtype in ("f4", "float32", "float") for p in vertex.properties)
    assert vertex.count == splat_run.metrics["gaussians"]
    splats = read_splat_ply(splat_run.dir / "splats.ply")
    assert splats.sh_degree == 1 and len(splats) == vertex.count
    np.testing.assert_array_equal(splats.means[:, 1].numpy(), vertex["y"])
    np.testing.assert_array_equal(splats.opacities.numpy(), vertex["opacity"])

    # Degree 3, values chosen so that the order shows: f_rest is channel-major, rot is wxyz.
    n, rest = 7, 15
    shn = torch.zeros((n, rest, 3))
    for c in range(3):
        shn[:, :, c] = 100 * c + torch.arange(rest, dtype=torch.float32)
    original = Splats(
        means=torch.randn(n, 3),
        scales=torch.randn(n, 3),
        quats=torch.tensor([[1.0, 2.0, 3.0, 4.0]]).repeat(n, 1),
        opacities=torch.randn(n),
        sh0=torch.randn(n, 1, 3),
        shN=shn,
    )
    path = tmp_path / "three.ply"
    write_splat_ply(path, original)
    vertex = PlyData.read(str(path))["vertex"]
    assert [p.name for p in vertex.properties] == property_names(3) and len(property_names(3)) == 62
    assert vertex["f_rest_16"][0] == 101.0  # green (c=1), coefficient 1: index c * 15 + k
    assert (vertex["rot_0"][0], vertex["rot_3"][0]) == (1.0, 4.0)
    back = read_splat_ply(path)
    for name, value in original.as_dict().items():
        assert torch.equal(getattr(back, name), value), name


def test_render_function_reproduces_a_held_out_photo(splat_run, dense_run: dict) -> None:  # type: ignore[no-untyped-def]
    splats = load_splats(splat_run.dir)
    view = read_cameras(splat_run.dir / CAMERAS_JSON)["test"][0]
    image = render_splats(splats, view, GREY, with_depth=True, device="cpu")
    assert image.rgb.shape == (120, 160, 3) and image.rgb.dtype == np.uint8
    assert 0.25 < (image.alpha > 0.5).mean() < 0.6  # the blob covers about 40% of the frame
    assert image.depth is not None and 2.0 < np.median(image.depth[image.alpha > 0.5]) < 4.0  # cameras at 3.6
    from photoforge.io.images import read_rgb, resize_longest

    photo = resize_longest(read_rgb(dense_run["depth"].dir / "undistorted" / "images" / view.name, "test"), 160)
    psnr = masked_psnr(image.rgb, photo, np.ones(photo.shape[:2], bool))
    assert psnr > splat_run.metrics["psnr_initial"] + 3, psnr


def test_mesh_from_splats_lies_on_the_true_surface(splat_run, synthetic: SyntheticCapture) -> None:  # type: ignore[no-untyped-def]
    mesh = splat_surface(splat_run.dir, device="cpu")
    assert len(mesh.triangles) > 5000 and mesh.has_vertex_colors()
    cameras = read_cameras(splat_run.dir / CAMERAS_JSON)
    truth = read_strecha_dir(synthetic.cameras)
    views = cameras["train"] + cameras["test"]
    estimated = np.array([v.centre for v in views])
    true = np.array([truth[Path(v.name).name.removesuffix(".jpg")].centre for v in views])
    transform = similarity_to_truth(estimated, true)
    vertices = np.asarray(mesh.vertices) @ transform[:3, :3].T + transform[:3, 3]
    true_mesh = o3d.io.read_triangle_mesh(str(synthetic.mesh))
    distance = MeshScene(np.asarray(true_mesh.vertices), np.asarray(true_mesh.triangles)).distance(vertices)
    # measured: median 0.6%, 90th percentile 2.5% of the object size
    assert np.median(distance) < 0.012 * synthetic.object_size
    assert np.percentile(distance, 90) < 0.05 * synthetic.object_size
    extent = np.ptp(vertices, axis=0)
    true_extent = np.asarray(true_mesh.get_axis_aligned_bounding_box().get_extent())
    np.testing.assert_allclose(extent, true_extent, rtol=0.1)


def test_interrupted_run_resumes_from_its_checkpoint(dense_run: dict, tmp_path: Path) -> None:
    store, inputs = dense_run["store"], _inputs(dense_run)
    params = MINI.model_copy(update={"checkpoint_every": 20, "seed": 3})

    def interrupt_at_25(done: int, total: int, message: str = "") -> None:
        if message.startswith("loss") and done == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        splat.STAGE.execute(store, inputs, params, progress=interrupt_at_25)
    key = splat.STAGE.key(inputs, params)
    checkpoint = splat.resume_checkpoint(store, key)
    assert checkpoint.is_file()
    resumed = splat.STAGE.execute(store, inputs, params)
    assert resumed.metrics["resumed_from_step"] == 20 and resumed.metrics["steps"] == 40
    assert not checkpoint.exists()

    straight = tmp_path / "straight"
    straight.mkdir()
    splat.train_splats(inputs, out=straight, params=params, progress=no_progress, key=key)
    a, b = load_splats(resumed.dir), load_splats(straight)
    assert len(a) == len(b)
    for name, value in a.as_dict().items():
        torch.testing.assert_close(value, getattr(b, name), rtol=1e-4, atol=1e-5, msg=name)


def test_a_damaged_checkpoint_is_dropped_not_fatal(dense_run: dict) -> None:
    store, inputs = dense_run["store"], _inputs(dense_run)
    params = MINI.model_copy(update={"steps": 5, "sh_degree": 0, "seed": 4})
    key = splat.STAGE.key(inputs, params)
    checkpoint = splat.resume_checkpoint(store, key)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(b"not a checkpoint")
    result = splat.STAGE.execute(store, inputs, params)
    assert result.metrics["steps"] == 5 and result.metrics["resumed_from_step"] is None
    assert not checkpoint.exists()


def test_fused_cloud_is_an_input_only_when_it_seeds_the_gaussians(dense_run: dict) -> None:
    depth, fusion = dense_run["depth"], dense_run["fusion"]
    inputs = SplatInputs(depth=depth, fusion=fusion)
    assert inputs.used(TINY).key_part() == {"depth": depth.key, "fusion": fusion.key}
    sparse = TINY.model_copy(update={"init": "sparse"})
    assert inputs.used(sparse).key_part() == {"depth": depth.key, "fusion": None}
    assert splat.STAGE.key(inputs, sparse) == splat.STAGE.key(SplatInputs(depth=depth), sparse)
    with pytest.raises(StageError, match=r"splat\.init=sparse"):
        splat.STAGE.key(SplatInputs(depth=depth), TINY)


def test_cpu_training_never_touches_gsplats_cuda_backend() -> None:
    """On CPU, gsplat's CUDA backend would JIT-compile (or fail) where nvcc exists: it must stay unimported."""
    script = (
        "import sys, torch\n"
        "from gsplat.strategy import DefaultStrategy\n"
        "from photoforge.splatting.gaussians import init_splats\n"
        "from photoforge.splatting.rasterize import rasterize, viewmat\n"
        "from photoforge.splatting.train import _optimizers, TrainSettings\n"
        "import numpy as np\n"
        "xyz = np.random.default_rng(0).normal(size=(300, 3)) * 0.3 + [0, 0, 3]\n"
        "params = init_splats(xyz, np.full((300, 3), 128, np.uint8), 1, 300, 0).as_params()\n"
        "opt = _optimizers(params, TrainSettings(steps=10, sh_degree=1, strategy='default', max_gaussians=600))\n"
        "strategy = DefaultStrategy(refine_start_iter=0, refine_every=1, grow_grad2d=0.0)\n"
        "state = strategy.initialize_state()\n"
        "k = torch.tensor([[40.0, 0, 20], [0, 40.0, 15], [0, 0, 1]])\n"
        "for step in range(3):\n"
        "    out = rasterize(params, viewmat(torch.eye(3), torch.zeros(3)), k, 40, 30, 1, None, 'RGB', 'cpu')\n"
        "    strategy.step_pre_backward(params, opt, state, step, out.info)\n"
        "    out.colors.mean().backward()\n"
        "    [o.step() for o in opt.values()]\n"
        "    strategy.step_post_backward(params, opt, state, step, out.info, packed=False)\n"
        "assert len(params['means']) > 300, len(params['means'])\n"
        "print('backend imported:', 'gsplat.cuda._backend' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "backend imported: False" in run.stdout


def test_mcmc_falls_back_to_default_densification_on_cpu(dense_run: dict, tmp_path: Path) -> None:
    params = MINI.model_copy(update={"strategy": "mcmc", "steps": 10, "sh_degree": 0})
    metrics = splat.run(_inputs(dense_run), out=tmp_path, params=params, progress=no_progress)
    assert metrics.strategy == "default" and metrics.strategy_requested == "mcmc"
    assert any("mcmc" in note for note in metrics.notes)


def test_time_limit_stops_training_early(dense_run: dict, tmp_path: Path) -> None:
    params = MINI.model_copy(update={"steps": 1000, "time_limit_s": 0.5, "sh_degree": 0})
    metrics = splat.run(_inputs(dense_run), out=tmp_path, params=params, progress=no_progress)
    assert metrics.stopped_by == "time_limit" and 0 < metrics.steps < 1000
    assert metrics.evaluations[-1]["step"] == metrics.steps


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"steps": 30_000}, "splat.steps"),
        ({"max_gaussians": 1_000_000}, "max_gaussians"),
        ({"max_size": 1600}, "max_size"),
    ],
)
def test_a_gpu_sized_config_on_cpu_is_refused_before_any_work(tmp_path: Path, override: dict, named: str) -> None:
    params = TINY.model_copy(update=override)
    missing = SplatInputs(depth=_artefact("depth", tmp_path / "no-depth"), fusion=_artefact("fusion", tmp_path / "no"))
    with pytest.raises(StageError, match="needs a CUDA GPU") as error:
        splat.run(missing, out=tmp_path, params=params, progress=no_progress)
    assert named in str(error.value) and error.value.stage == "splat"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_device_cuda_without_cuda_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(StageError, match=r"splat.device=cpu"):
        inputs = SplatInputs(depth=_artefact("depth", tmp_path), fusion=_artefact("fusion", tmp_path))
        splat.run(inputs, out=tmp_path, params=TINY.model_copy(update={"device": "cuda"}), progress=no_progress)


def test_cpu_rasterizer_matches_sequential_compositing() -> None:
    """The vectorised CPU compositing equals a per-pixel front-to-back loop with gsplat's rules."""
    torch.manual_seed(0)
    n, width, height = 40, 24, 18
    params = {
        "means": torch.randn(n, 3) * 0.4 + torch.tensor([0.0, 0.0, 3.0]),
        "quats": torch.randn(n, 4),
        "scales": torch.rand(n, 3) * -2 - 2.0,
        "opacities": torch.randn(n),
        "sh0": torch.randn(n, 1, 3),
        "shN": torch.zeros(n, 0, 3),
    }
    k = torch.tensor([[24.0, 0, 12], [0, 24.0, 9], [0, 0, 1]])
    view = viewmat(torch.eye(3), torch.zeros(3))
    out = rasterize(params, view, k, width, height, 0, None, "RGB", "cpu")
    info = out.info
    order = torch.argsort(info["depths"][0])
    colors = torch.clamp_min(params["sh0"][:, 0] * 0.28209479177387814 + 0.5, 0)
    opacity = torch.sigmoid(params["opacities"])
    expected = torch.zeros(height, width, 3)
    for y in range(height):
        for x in range(width):
            transmittance = 1.0
            for g in order.tolist():
                rx, ry = info["radii"][0, g].tolist()
                mx, my = info["means2d"][0, g].tolist()
                if rx <= 0 or not (
                    np.floor(mx - rx) <= x < np.ceil(mx + rx) and np.floor(my - ry) <= y < np.ceil(my + ry)
                ):
                    continue
                a, b, c = info["conics"][0, g].tolist()
                dx, dy = x + 0.5 - mx, y + 0.5 - my
                sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                alpha = min(0.999, float(opacity[g]) * np.exp(-sigma))
                if sigma < 0 or alpha < 1 / 255:
                    continue
                if transmittance * (1 - alpha) <= 1e-4:
                    break
                expected[y, x] += alpha * transmittance * colors[g]
                transmittance *= 1 - alpha
    assert out.alphas.max() > 0.5
    torch.testing.assert_close(out.colors, expected, atol=1e-5, rtol=1e-4)
