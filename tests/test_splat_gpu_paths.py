"""The splat trainer's GPU-facing paths, checked on CPU: bare-machine imports, opacity reset, host images,
out-of-memory handling, checkpoint compatibility, device fallback, speed and memory metrics."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from photoforge.camera.model import Camera, Rigid3
from photoforge.errors import StageError
from photoforge.splatting import fit
from photoforge.splatting import rasterize as rasterize_module
from photoforge.splatting.data import Capture
from photoforge.splatting.fit import speed_and_memory
from photoforge.splatting.gaussians import Splats
from photoforge.splatting.train import (
    CheckpointError,
    TrainSettings,
    TrainView,
    _load_checkpoint,
    _optimizers,
    _save_checkpoint,
    peak_gpu_memory,
    train,
)
from photoforge.stage import StageResult, no_progress
from photoforge.stages import splat
from photoforge.stages.splat import SplatInputs, SplatParams

SIZE = 32
K = np.array([[40.0, 0, SIZE / 2], [0, 40.0, SIZE / 2], [0, 0, 1]])


def _splats(n: int = 60, opacity: float = 0.9, seed: int = 0) -> Splats:
    g = torch.Generator().manual_seed(seed)
    return Splats(
        means=torch.randn(n, 3, generator=g) * 0.3,
        scales=torch.full((n, 3), math.log(0.05)),
        quats=torch.rand(n, 4, generator=g),
        opacities=torch.full((n,), math.log(opacity / (1 - opacity))),
        sh0=torch.randn(n, 1, 3, generator=g) * 0.5,
        shN=torch.zeros(n, 0, 3),
    )


def _view(index: int) -> Camera:
    translation = np.array([0.2 * (index - 1), 0.0, 3.0])
    return Camera(f"v{index}.png", K.copy(), Rigid3(np.eye(3), translation), SIZE, SIZE)


def _photo(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def _train_views(count: int = 3) -> list[TrainView]:
    return [fit.train_view(_view(i), _photo(i), torch.device("cpu")) for i in range(count)]


def _no_scores(step: int, params: torch.nn.ParameterDict, sh_degree: int) -> dict[str, float]:
    return {"psnr": 0.0, "ssim": 0.0}


def _settings(**overrides: object) -> TrainSettings:
    values: dict = {"steps": 6, "sh_degree": 0, "strategy": "default", "max_gaussians": 1000, "fingerprint": "k"}
    return TrainSettings(**(values | overrides))


@pytest.fixture(autouse=True)
def _fresh_kernel_probe() -> object:
    """The gsplat kernel check is cached per process: each test sees its own (monkeypatched) world."""
    rasterize_module._gsplat_kernels_problem.cache_clear()
    yield
    rasterize_module._gsplat_kernels_problem.cache_clear()


# --- item 0: the trainer imports on a bare GPU machine ---------------------------------------------

BARE_MACHINE = """
import sys
BLOCKED = {"open3d", "pycolmap", "pymeshlab", "prefect", "pydantic", "skimage"}
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed on this machine")
sys.meta_path.insert(0, Blocker())
import photoforge.splatting.train, photoforge.splatting.rasterize, photoforge.splatting.gaussians
import photoforge.splatting.losses, photoforge.splatting.ply, photoforge.splatting.evaluate
from photoforge.splatting import Splats, read_splat_ply, write_splat_ply
assert not BLOCKED & {m.split(".")[0] for m in sys.modules}, sorted(BLOCKED & set(sys.modules))
"""


def test_trainer_renderer_and_scorer_import_without_open3d_pycolmap_pydantic() -> None:
    done = subprocess.run([sys.executable, "-c", BARE_MACHINE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_package_names_still_load_for_existing_callers() -> None:
    from photoforge.splatting import SPLATS_PLY, load_splats, render_splats, splat_surface

    assert SPLATS_PLY == "splats.ply" and callable(load_splats) and callable(render_splats)
    assert splat_surface.__module__ == "photoforge.splatting.surface"


def test_scores_equal_scikit_images_psnr_and_ssim() -> None:
    """The scores the splat stage shares with the bake stage, without scikit-image, equal scikit-image's."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from photoforge.qa.image_scores import masked_psnr, masked_ssim, ssim_map

    a, b = _photo(1), np.clip(_photo(1).astype(int) + _photo(2) // 8, 0, 255).astype(np.uint8)
    full = np.ones((SIZE, SIZE), bool)
    _, reference = structural_similarity(a, b, channel_axis=2, data_range=255, full=True)
    assert ssim_map(a, b) == pytest.approx(reference, abs=1e-9)
    assert masked_psnr(a, b, full) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)
    assert masked_ssim(a, b, full) == pytest.approx(float(reference.mean()), abs=1e-9)
    assert masked_psnr(a, a, full) == float("inf") and masked_ssim(a, a, full) == pytest.approx(1.0)


# --- item 4: the opacity reset gsplat 1.5.3 skips -------------------------------------------------


def test_default_strategy_opacities_are_reset_on_the_schedule() -> None:
    # opacities start at 0.9 and barely learn (lr 1e-12): only a reset can bring them down
    settings = _settings(steps=420, lrs=_lrs(opacities=1e-12))
    result = train(_splats(opacity=0.9), _train_views(), settings, "cpu", _no_scores)
    assert result.schedule.reset_every == 200 and result.schedule.refine_stop == 210  # one reset, at step 200
    reset_value = 0.005 * 2  # 2 x DefaultStrategy's prune_opa, as gsplat
    assert float(torch.sigmoid(result.splats.opacities).max()) <= reset_value + 1e-6


def test_mcmc_schedule_has_no_opacity_reset() -> None:
    from photoforge.splatting.train import Schedule

    assert Schedule.for_run(30_000, "default", 3).reset_every == 3000
    assert Schedule.for_run(30_000, "mcmc", 3).reset_every == 0
    short = Schedule.for_run(200, "default", 3)  # too short to re-learn opacities after a reset
    assert not any(short.resets_opacities(step) for step in range(200))
    assert not Schedule.for_run(30_000, "mcmc", 3).resets_opacities(3000)


def _lrs(**overrides: float) -> object:
    from dataclasses import replace

    from photoforge.splatting.train import LearningRates

    return replace(LearningRates(), **overrides)


# --- item 5: host images, out of GPU memory inside the handler ------------------------------------


def _tiny_capture(*_: object) -> Capture:
    rng = np.random.default_rng(0)
    points = rng.normal(0, 0.3, (80, 3))
    colours = rng.integers(0, 256, (80, 3), dtype=np.uint8)
    return Capture(
        [_view(i) for i in range(3)], [_view(3)], [_photo(i) for i in range(3)], [_photo(3)], points, colours
    )


TINY = SplatParams(
    device="cpu", steps=6, max_size=64, max_gaussians=200, sh_degree=0, init="sparse", eval_every=0,
    checkpoint_every=0, comparisons=1, strategy="default",
)  # fmt: skip


def _out(tmp_path: Path) -> Path:
    """What STAGE.execute hands run(): an existing, empty directory."""
    out = tmp_path / "out"
    out.mkdir()
    return out


def _inputs(depth_dir: Path) -> SplatInputs:
    """A depth artefact at `depth_dir` (key "d" * 16) and no fused cloud: TINY starts from the SfM points."""
    depth = StageResult(
        stage="depth", key="d" * 16, path=str(depth_dir), metrics={}, reused=False, seconds=0.0, compute_seconds=0.0
    )
    return SplatInputs(depth=depth)


def test_training_views_keep_uint8_host_images(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fit, "load_capture", _tiny_capture)
    seen: list[TrainView] = []

    def spy(initial: Splats, views: list[TrainView], *args: object) -> object:
        seen.extend(views)
        return train(initial, views, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(fit, "train", spy)
    metrics = splat.run(_inputs(tmp_path), out=_out(tmp_path), params=TINY, progress=no_progress)
    assert metrics.steps == 6 and len(seen) == 3
    assert all(v.image.dtype == torch.uint8 and v.image.device.type == "cpu" for v in seen)
    assert seen[0].image.shape == (SIZE, SIZE, 3)


def test_out_of_gpu_memory_in_the_final_scoring_is_the_stages_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fit, "load_capture", _tiny_capture)
    real_score = fit.score_views
    calls: list[int] = []

    def score(*args: object, **kwargs: object) -> object:
        calls.append(len(calls))
        if len(calls) == 3:  # scoring at step 0 and at the end, then the comparisons' renders
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_score(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fit, "score_views", score)
    with pytest.raises(StageError, match="out of GPU memory") as caught:
        splat.run(_inputs(tmp_path), out=_out(tmp_path), params=TINY, progress=no_progress)
    assert str(caught.value).startswith("[splat] ") and "lower splat.max_size" in str(caught.value)
    assert len(calls) == 3


def test_out_of_gpu_memory_while_preparing_views_is_the_stages_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fit, "load_capture", _tiny_capture)

    def upload(*_: object) -> TrainView:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(fit, "train_view", upload)
    with pytest.raises(StageError, match="out of GPU memory"):
        splat.run(_inputs(tmp_path), out=_out(tmp_path), params=TINY, progress=no_progress)


# --- item 6 and 7: checkpoints ---------------------------------------------------------------------


def _saved_checkpoint(path: Path, settings: TrainSettings) -> None:
    params = _splats(8).as_params()
    optimizers = _optimizers(params, settings)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizers["means"], gamma=0.5)
    for name, optimizer in optimizers.items():
        params[name].grad = torch.ones_like(params[name])
        optimizer.step()
    state = {"grad2d": torch.ones(8), "count": torch.ones(8), "scene_scale": 1.0}
    _save_checkpoint(path, settings, 3, 1.5, params, optimizers, scheduler, state, [], "default")


def _fresh(settings: TrainSettings) -> tuple:
    params = _splats(8).as_params()
    optimizers = _optimizers(params, settings)
    return params, optimizers, torch.optim.lr_scheduler.ExponentialLR(optimizers["means"], gamma=0.5)


def test_a_checkpoint_of_another_strategy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    _saved_checkpoint(path, _settings())
    settings = _settings(strategy="mcmc")  # same fingerprint: the same key ran default on CPU
    params, optimizers, scheduler = _fresh(settings)
    with pytest.raises(CheckpointError, match="cpu run with default densification; this run is cpu with mcmc"):
        _load_checkpoint(path, settings, params, optimizers, scheduler, {}, torch.device("cpu"), "cpu", "mcmc")


def test_a_checkpoint_written_on_cuda_is_refused_on_cpu(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    _saved_checkpoint(path, _settings())
    data = torch.load(path, weights_only=True)
    torch.save({**data, "backend": "cuda"}, path)
    params, optimizers, scheduler = _fresh(_settings())
    with pytest.raises(CheckpointError, match="written by a cuda run") as caught:
        _load_checkpoint(path, _settings(), params, optimizers, scheduler, {}, torch.device("cpu"), "cpu", "default")
    assert str(caught.value).startswith("[splat] ")


def test_the_stage_trains_afresh_from_a_foreign_backends_checkpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused checkpoint is handled as a foreign fingerprint is: a warning, training from the start."""
    from photoforge.store import ArtefactStore

    monkeypatch.setattr(fit, "load_capture", _tiny_capture)
    store = ArtefactStore(tmp_path / "ws", "t")
    inputs = _inputs(tmp_path)
    params = TINY.model_copy(update={"checkpoint_every": 3, "steps": 6})
    key = splat.STAGE.key(inputs, params)
    checkpoint = splat.resume_checkpoint(store, key)
    _saved_checkpoint(checkpoint, _settings(fingerprint=key))
    torch.save({**torch.load(checkpoint, weights_only=True), "backend": "cuda"}, checkpoint)
    with caplog.at_level(logging.WARNING, logger="photoforge"):
        result = splat.STAGE.execute(store, inputs, params)
    assert result.metrics["resumed_from_step"] is None and result.metrics["steps"] == 6
    assert "written by a cuda run" in caplog.text and "training from the start" in caplog.text


def test_a_loaded_checkpoint_keeps_adams_step_on_the_cpu(tmp_path: Path) -> None:
    """Loaded on the CPU, then moved: on "meta" (standing in for cuda) moments move, step counters do not."""
    path = tmp_path / "c.pt"
    _saved_checkpoint(path, _settings())
    params, optimizers, scheduler = _fresh(_settings())
    meta = torch.device("meta")
    _, _, _, state = _load_checkpoint(path, _settings(), params, optimizers, scheduler, {}, meta, "cpu", "default")
    assert params["means"].device == meta and state["grad2d"].device == meta
    adam = optimizers["means"].state[params["means"]]
    assert adam["exp_avg"].device == meta and adam["step"].device.type == "cpu" and float(adam["step"]) == 1


def test_steps_per_second_after_a_resume_count_only_this_process(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    first = train(_splats(), _train_views(), _settings(checkpoint_every=3), "cpu", _no_scores, checkpoint=path)
    assert first.steps_done == 6
    data = torch.load(path, weights_only=True)
    torch.save({**data, "seconds": 1000.0}, path)  # the first process trained for a long time
    resumed = train(_splats(), _train_views(), _settings(steps=9), "cpu", _no_scores, resume=path)
    assert resumed.resumed_from_step == 6 and resumed.resumed_seconds == 1000.0 and resumed.train_seconds > 1000
    speed = speed_and_memory(resumed)
    assert speed["steps_per_s"] == pytest.approx(3 / (resumed.train_seconds - 1000), rel=1e-2)


def test_splats_move_to_a_device_once_for_many_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    splats = _splats(4)
    moves: list[str] = []
    real_to = Splats.to

    def to(self: Splats, device: torch.device | str) -> Splats:
        moves.append(str(device))
        return real_to(self, device)

    monkeypatch.setattr(Splats, "to", to)
    first = splats.on("meta")
    assert splats.on("meta") is first and first.device.type == "meta" and moves == ["meta"]
    assert splats.on("cpu") is splats


# --- item 8: device auto when gsplat's CUDA kernels fail to build ----------------------------------


class _FailingBuild:
    """What importing gsplat.cuda._backend does when nvcc/ninja fail: torch's JIT raises RuntimeError."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "gsplat.cuda._backend":
            raise RuntimeError("Error building extension 'gsplat_cuda': nvcc fatal : Unsupported gpu architecture")


@pytest.fixture
def broken_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delitem(sys.modules, "gsplat.cuda._backend", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_FailingBuild(), *sys.meta_path])


@pytest.mark.usefixtures("broken_kernels")
def test_device_auto_falls_back_to_cpu_when_the_kernels_fail_to_build() -> None:
    backend, reason = rasterize_module.resolve_device("auto")
    assert backend == "cpu" and reason is not None
    assert "failed to build or load" in reason and "Error building extension" in reason


@pytest.mark.usefixtures("broken_kernels")
def test_device_cuda_with_kernels_that_fail_to_build_is_a_clear_error() -> None:
    with pytest.raises(StageError, match="device cuda asked for, but gsplat's CUDA kernels failed to build") as exc:
        rasterize_module.resolve_device("cuda")
    assert "splat.device=cpu" in str(exc.value)


@pytest.mark.usefixtures("broken_kernels")
def test_the_stage_reports_the_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fit, "load_capture", _tiny_capture)
    auto = TINY.model_copy(update={"device": "auto"})
    with caplog.at_level(logging.WARNING, logger="photoforge"):
        metrics = splat.run(_inputs(tmp_path), out=_out(tmp_path), params=auto, progress=no_progress)
    assert metrics.device == "cpu" and "Error building extension" in (metrics.device_fallback or "")
    assert "training on the CPU path" in caplog.text


# --- item 9: peak GPU memory, reserved beside allocated ---------------------------------------------


def test_peak_gpu_memory_reports_reserved_beside_allocated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 3 * 1024**3)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda *a: 5 * 1024**3)
    assert peak_gpu_memory("cpu") == (0, 0)
    allocated, reserved = peak_gpu_memory("cuda")
    result = SimpleNamespace(
        steps_done=10, resumed_from_step=None, train_seconds=2.0, resumed_seconds=0.0,
        peak_gpu_bytes=allocated, peak_gpu_reserved_bytes=reserved,
    )  # fmt: skip
    metrics = speed_and_memory(result)  # type: ignore[arg-type]
    assert metrics["peak_gpu_memory_gb"] == 3.0 and metrics["peak_gpu_memory_reserved_gb"] == 5.0
    assert metrics["steps_per_s"] == 5.0
