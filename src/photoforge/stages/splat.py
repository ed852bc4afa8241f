"""Stage splat: 3D Gaussian splatting (gsplat) on the undistorted views, scored on held-out views.

Initialised from the fused cloud (or the SfM points), trained on the depth artefact's
COLMAP-undistorted pinhole images and poses. On CUDA it runs gsplat's rasterizer and its
DefaultStrategy or MCMCStrategy densification; without CUDA only a small configuration runs
(the cpu_max_* limits), through the PyTorch path, with DefaultStrategy. Outputs: splats.ply
(the INRIA 3DGS layout), cameras.json (the cameras it trained with), splat.json (scores over
training) and comparisons/ (held-out render beside photo).

Checkpoints: `execute` keeps one per cache key beside the artefacts
(STAGE_DIR/.checkpoint-KEY.pt, every splat.checkpoint_every steps); a run interrupted and
started again with the same inputs and params resumes from it. `run(..., resume=PATH)`
resumes from a given checkpoint of the same run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from photoforge.camera.views import View
from photoforge.errors import StageError
from photoforge.geometry.pointcloud import read_ply
from photoforge.splatting.data import CAMERAS_JSON, Capture, load_capture, scene_scale, write_cameras
from photoforge.splatting.evaluate import save_comparisons, score_views
from photoforge.splatting.gaussians import init_splats
from photoforge.splatting.ply import write_splat_ply
from photoforge.splatting.rasterize import (
    Backend,
    CpuRasterizerOverflow,
    camera_tensors,
    resolve_backend,
    resolve_device,
)
from photoforge.splatting.render import SPLATS_PLY
from photoforge.splatting.train import (
    CheckpointError,
    LearningRates,
    TrainResult,
    TrainSettings,
    TrainView,
    train,
)
from photoforge.stage import Progress, Stage, StageParams, StageResult, no_progress
from photoforge.stages.depth import UNDISTORTED
from photoforge.stages.fusion import FUSED_PLY
from photoforge.store import ArtefactStore, write_json

# 2: opacities reset on gsplat's schedule (1.5.3's DefaultStrategy skips it), checkpoint format 2
STAGE = Stage("splat", version="2", libraries=("gsplat", "torch", "numpy", "plyfile"))
SPLAT_JSON = "splat.json"
COMPARISONS_DIR = "comparisons"
CHECKPOINT = "checkpoint.pt"
MIN_POINTS = 10

log = logging.getLogger("photoforge")


class SplatParams(StageParams):
    enabled: bool = Field(False, description="train Gaussian splats (beyond the cpu_max_* limits: a CUDA GPU)")
    device: Literal["auto", "cuda", "cpu"] = Field(
        "auto", description="cuda: gsplat's rasterizer; cpu: the PyTorch path (small runs only); auto: cuda if usable"
    )
    steps: int = Field(30_000, ge=1, description="optimisation steps (one view each)")
    max_size: int = Field(1600, ge=0, description="longest side of the training images in px (0: undistorted size)")
    strategy: Literal["default", "mcmc"] = Field(
        "default", description="densification: default (3DGS clone/split/prune) or mcmc (3DGS-MCMC, CUDA only)"
    )
    sh_degree: int = Field(3, ge=0, le=3, description="spherical-harmonics degree of the colours")
    init: Literal["fused", "sparse"] = Field("fused", description="initial Gaussians: the fused cloud or SfM points")
    max_gaussians: int = Field(
        1_000_000,
        ge=100,
        description="Gaussian budget: MCMC's cap_max; default densification drops the least opaque past it. "
        "At most half of it start from the points",
    )
    lr_means: float = Field(1.6e-4, gt=0, description="position learning rate (times the scene scale, decays 100x)")
    lr_scales: float = Field(5e-3, gt=0, description="log-scale learning rate")
    lr_quats: float = Field(1e-3, gt=0, description="rotation learning rate")
    lr_opacities: float = Field(5e-2, gt=0, description="logit-opacity learning rate")
    lr_sh0: float = Field(2.5e-3, gt=0, description="base colour (SH DC) learning rate")
    lr_shN: float = Field(1.25e-4, gt=0, description="view-dependent colour (SH bands 1-3) learning rate")
    background: tuple[float, float, float] = Field(
        (0.0, 0.0, 0.0), description="RGB in [0, 1] behind the Gaussians when training and scoring"
    )
    ssim_lambda: float = Field(0.2, ge=0.0, le=1.0, description="loss = (1-l) L1 + l (1 - SSIM)")
    hold_out_every: int = Field(8, ge=0, description="every n-th view is held out for evaluation (0: none)")
    eval_every: int = Field(7000, ge=0, description="score the held-out views every n steps (0: start and end)")
    checkpoint_every: int = Field(7000, ge=0, description="write a resumable checkpoint every n steps (0: never)")
    time_limit_s: float = Field(0.0, ge=0.0, description="stop training after this many seconds (0: no limit)")
    comparisons: int = Field(4, ge=0, description="held-out render-vs-photo pictures kept for the report")
    cpu_max_steps: int = Field(2000, ge=1, description="without CUDA, refuse more steps than this")
    cpu_max_gaussians: int = Field(20_000, ge=100, description="without CUDA, refuse a larger max_gaussians")
    cpu_max_size: int = Field(320, ge=32, description="without CUDA, refuse larger training images")
    seed: int = Field(0, description="random seed (initial subset, view order, densification)")


def key_inputs(depth: StageResult, fusion: StageResult | None, params: SplatParams) -> dict[str, Any]:
    """The fused cloud is an input only when it seeds the Gaussians."""
    inputs: dict[str, Any] = {"depth": depth.key}
    if params.init == "fused":
        if fusion is None:
            raise StageError("splat", "init fused needs the fusion artefact (or --set splat.init=sparse)")
        inputs["fusion"] = fusion.key
    return inputs


def execute(
    store: ArtefactStore,
    depth: StageResult,
    fusion: StageResult | None,
    params: SplatParams,
    progress: Progress = no_progress,
) -> StageResult:
    inputs = key_inputs(depth, fusion, params)
    key = STAGE.key(params, inputs)
    checkpoint = resume_checkpoint(store, key)
    fusion_dir = fusion.dir if fusion is not None else None

    def compute(out: Path) -> dict[str, Any]:
        resume = checkpoint if checkpoint.is_file() else None
        try:
            return run(depth.dir, fusion_dir, out, params, progress, checkpoint=checkpoint, resume=resume, key=key)
        except CheckpointError as exc:  # a damaged leftover must not block the stage: start afresh
            log.warning("splat: %s; training from the start", exc)
            checkpoint.unlink(missing_ok=True)
            return run(depth.dir, fusion_dir, out, params, progress, checkpoint=checkpoint, key=key)

    result = STAGE.execute(store, params, inputs, compute)
    if not result.reused:
        checkpoint.unlink(missing_ok=True)
    return result


def resume_checkpoint(store: ArtefactStore, key: str) -> Path:
    """Where a run with this key checkpoints: outside its temp dir, so an interrupted run can resume."""
    return store.stage_dir(STAGE.name, key).parent / f".checkpoint-{key}.pt"


def check_device(params: SplatParams, backend: Backend) -> None:
    """Refuse, before any work, a configuration the CPU path would take hours over."""
    if backend == "cuda":
        return
    too_big = []
    if params.steps > params.cpu_max_steps:
        too_big.append(f"splat.steps={params.steps} > splat.cpu_max_steps={params.cpu_max_steps}")
    if params.max_gaussians > params.cpu_max_gaussians:
        too_big.append(
            f"splat.max_gaussians={params.max_gaussians} > splat.cpu_max_gaussians={params.cpu_max_gaussians}"
        )
    if params.max_size == 0 or params.max_size > params.cpu_max_size:
        too_big.append(f"splat.max_size={params.max_size} > splat.cpu_max_size={params.cpu_max_size}")
    if too_big:
        raise StageError(
            "splat",
            f"this configuration needs a CUDA GPU ({'; '.join(too_big)}): lower splat.steps, splat.max_gaussians "
            "and splat.max_size to the cpu_max_* limits for a small CPU run, or run on the GPU pool",
        )


def cannot_run_here(params: SplatParams) -> str | None:
    """Why this configuration cannot train on this machine (None: it can), asked before any work."""
    try:
        check_device(params, resolve_backend(params.device))
    except StageError as exc:
        return str(exc)
    return None


def run(
    depth_dir: Path,
    fusion_dir: Path | None,
    out: Path,
    params: SplatParams,
    progress: Progress = no_progress,
    checkpoint: Path | None = None,
    resume: Path | None = None,
    key: str = "",
) -> dict[str, Any]:
    """Train, score and write the splats into `out`.

    checkpoint: where periodic checkpoints go (default: out/checkpoint.pt, dropped at the end);
    resume: a checkpoint of this same run (same `key`) to continue from.
    """
    backend, fallback = resolve_device(params.device)
    if fallback is not None and torch.cuda.is_available():  # a GPU is here but gsplat cannot use it
        log.warning("splat: device auto, but %s: training on the CPU path", fallback)
    check_device(params, backend)
    workspace = depth_dir / UNDISTORTED
    capture = load_capture(workspace / "images", workspace / "sparse", params.max_size, params.hold_out_every, "splat")
    if len(capture.train) < 2:
        raise StageError("splat", f"{len(capture.train)} training view(s): at least 2 are needed", depth_dir)
    xyz, rgb = _initial_points(capture, fusion_dir, params)
    init_scale, init_opacity = (0.1, 0.5) if params.strategy == "mcmc" and backend == "cuda" else (1.0, 0.1)
    initial = init_splats(
        xyz, rgb, params.sh_degree, max(1, params.max_gaussians // 2), params.seed, init_opacity, init_scale
    )
    device = torch.device("cuda" if backend == "cuda" else "cpu")
    eval_views, eval_images = (
        (capture.test, capture.test_images) if capture.test else (capture.train, capture.train_images)
    )

    def evaluate(step: int, splat_params: torch.nn.ParameterDict, sh_degree: int) -> dict[str, Any]:
        scores, _ = score_views(splat_params, eval_views, eval_images, sh_degree, backend, params.background)
        progress(step, params.steps, f"held-out PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f} at step {step}")
        return scores

    settings = TrainSettings(
        steps=params.steps,
        sh_degree=params.sh_degree,
        strategy=params.strategy,
        max_gaussians=params.max_gaussians,
        lrs=LearningRates(
            params.lr_means, params.lr_scales, params.lr_quats, params.lr_opacities, params.lr_sh0, params.lr_shN
        ),
        ssim_lambda=params.ssim_lambda,
        scene_scale=scene_scale(capture.train + capture.test),
        eval_every=params.eval_every,
        checkpoint_every=params.checkpoint_every,
        time_limit_s=params.time_limit_s,
        seed=params.seed,
        background=params.background,
        fingerprint=key,
    )
    own_checkpoint = checkpoint is None
    checkpoint = checkpoint or out / CHECKPOINT
    shown = min(params.comparisons, len(eval_views))
    try:  # everything that puts images or Gaussians on the GPU, the final scoring included
        views = [_train_view(v, img, device) for v, img in zip(capture.train, capture.train_images, strict=True)]
        result = train(initial, views, settings, backend, evaluate, progress, checkpoint, resume)
        trained = result.splats.to(device).as_dict()  # untrained SH bands are zero: full degree renders the same
        _, renders = score_views(
            trained, eval_views[:shown], eval_images[:shown], result.splats.sh_degree, backend, params.background
        )
        del trained
    except torch.cuda.OutOfMemoryError as exc:
        raise StageError(
            "splat",
            f"out of GPU memory ({len(initial)} initial Gaussians, images {params.max_size} px): lower "
            "splat.max_size or splat.max_gaussians",
        ) from exc
    except CpuRasterizerOverflow as exc:
        raise StageError(
            "splat", f"the CPU rasterizer ran out of room ({exc}): lower splat.max_size or splat.max_gaussians"
        ) from exc
    if own_checkpoint:
        checkpoint.unlink(missing_ok=True)

    write_splat_ply(out / SPLATS_PLY, result.splats)
    write_cameras(out / CAMERAS_JSON, capture.train, capture.test)
    pictures = save_comparisons(
        out / COMPARISONS_DIR, [v.name for v in eval_views[:shown]], renders, eval_images[:shown]
    )
    first, last = result.evaluations[0], result.evaluations[-1]
    metrics: dict[str, Any] = {
        "device": backend,
        "device_fallback": fallback,
        "strategy": result.strategy,
        "strategy_requested": params.strategy,
        "gaussians": len(result.splats),
        "gaussians_initial": len(initial),
        "steps": result.steps_done,
        "stopped_by": result.stopped_by,
        "train_seconds": round(result.train_seconds, 2),
        **speed_and_memory(result),
        "psnr_initial": first["psnr"],
        "ssim_initial": first["ssim"],
        "psnr": last["psnr"],
        "ssim": last["ssim"],
        "psnr_gain": round(last["psnr"] - first["psnr"], 3),
        "evaluated_on": "held-out" if capture.test else "training views (hold_out_every=0)",
        "train_views": len(capture.train),
        "test_views": len(capture.test),
        "resolution": [views[0].width, views[0].height],
        "evaluations": result.evaluations,
        "schedule": vars(result.schedule),
        "resumed_from_step": result.resumed_from_step,
        "notes": result.notes,
        "comparisons": [f"{COMPARISONS_DIR}/{p}" for p in pictures],
        "summary": f"{len(result.splats)} Gaussians, held-out PSNR {last['psnr']:.2f} dB "
        f"({last['psnr'] - first['psnr']:+.2f} over init), SSIM {last['ssim']:.3f}, {result.steps_done} steps "
        f"({backend}, {result.strategy})",
    }
    write_json(out / SPLAT_JSON, metrics)
    return metrics


def speed_and_memory(result: TrainResult) -> dict[str, Any]:
    """Steps/s of this process (a resumed run's earlier steps and seconds left out) and peak GPU memory.

    Reserved beside allocated: the caching allocator holds more than the tensors use, and reserved
    is what a second job on the same GPU cannot have.
    """
    steps = result.steps_done - (result.resumed_from_step or 0)
    seconds = result.train_seconds - result.resumed_seconds
    steps_per_s = steps / seconds if seconds > 0 else 0.0
    return {
        "steps_per_s": round(steps_per_s, 3),
        "seconds_per_1k_steps": round(1000 / steps_per_s, 2) if steps_per_s > 0 else None,
        "peak_gpu_memory_gb": round(result.peak_gpu_bytes / 1024**3, 3),
        "peak_gpu_memory_reserved_gb": round(result.peak_gpu_reserved_bytes / 1024**3, 3),
    }


def _initial_points(capture: Capture, fusion_dir: Path | None, params: SplatParams) -> tuple[np.ndarray, np.ndarray]:
    if params.init == "fused":
        if fusion_dir is None:
            raise StageError("splat", "init fused needs the fusion artefact (or --set splat.init=sparse)")
        xyz, rgb, _ = read_ply(fusion_dir / FUSED_PLY)
        source = fusion_dir / FUSED_PLY
    else:
        xyz, rgb = capture.points_xyz, capture.points_rgb
        source = None
    if len(xyz) < MIN_POINTS:
        raise StageError("splat", f"{len(xyz)} points to start from (init {params.init}): need {MIN_POINTS}", source)
    return np.asarray(xyz, np.float64), np.asarray(rgb, np.uint8)


def _train_view(view: View, image: np.ndarray, device: torch.device) -> TrainView:
    """The camera on the device; the photo stays uint8 on the host (pinned for CUDA), uploaded per step."""
    view_t, k = camera_tensors(view.k, view.rotation, view.translation, device)
    pixels = torch.from_numpy(np.ascontiguousarray(image, np.uint8))
    return TrainView(view_t, k, pixels.pin_memory() if device.type == "cuda" else pixels)
