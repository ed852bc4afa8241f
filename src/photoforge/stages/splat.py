"""Stage splat: 3D Gaussian splatting (gsplat) on the undistorted views, scored on held-out views.

Initialised from the fused cloud (or the SfM points), trained on the depth artefact's
COLMAP-undistorted pinhole images and poses. On CUDA it runs gsplat's rasterizer and its
DefaultStrategy or MCMCStrategy densification; without CUDA only a small configuration runs
(the cpu_max_* limits), through the PyTorch path, with DefaultStrategy. Outputs: splats.ply
(the INRIA 3DGS layout), cameras.json (the cameras it trained with), splat.json (scores over
training) and comparisons/ (held-out render beside photo).

Checkpoints: `STAGE.execute` keeps one per cache key beside the artefacts
(STAGE_DIR/.checkpoint-KEY.pt, every splat.checkpoint_every steps); a run interrupted and
started again with the same inputs and params resumes from it. `train_splats(..., resume=PATH)`
resumes from a given checkpoint of the same run. The training run itself is
photoforge.splatting.fit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from photoforge.errors import StageError
from photoforge.layout import FUSED_PLY, SPLAT_JSON
from photoforge.metrics import SplatMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult, no_progress
from photoforge.store import ArtefactStore, write_json

if TYPE_CHECKING:
    from photoforge.splatting.rasterize import Backend

log = logging.getLogger("photoforge")


class SplatLearningRates(StageParams):
    """Adam learning rates per Gaussian attribute, named as gsplat names the parameters."""

    means: float = Field(1.6e-4, gt=0, description="position learning rate (times the scene scale, decays 100x)")
    scales: float = Field(5e-3, gt=0, description="log-scale learning rate")
    quats: float = Field(1e-3, gt=0, description="rotation learning rate")
    opacities: float = Field(5e-2, gt=0, description="logit-opacity learning rate")
    sh0: float = Field(2.5e-3, gt=0, description="base colour (SH DC) learning rate")
    shN: float = Field(1.25e-4, gt=0, description="view-dependent colour (SH bands 1-3) learning rate")


class SplatParams(StageParams):
    enabled: bool = Field(False, description="train Gaussian splats (beyond the cpu_max_* limits: a CUDA GPU)")
    device: Literal["auto", "cuda", "cpu"] = Field(
        "auto", description="cuda: gsplat's rasterizer; cpu: the PyTorch path (small runs only); auto: cuda if usable"
    )
    steps: int = Field(7000, ge=1, description="optimisation steps (one view each)")
    max_size: int = Field(1600, ge=0, description="longest side of the training images in px (0: undistorted size)")
    strategy: Literal["default", "mcmc"] = Field(
        "mcmc", description="densification: default (3DGS clone/split/prune) or mcmc (3DGS-MCMC, CUDA only)"
    )
    sh_degree: int = Field(3, ge=0, le=3, description="spherical-harmonics degree of the colours")
    init: Literal["fused", "sparse"] = Field("fused", description="initial Gaussians: the fused cloud or SfM points")
    max_gaussians: int = Field(
        1_000_000,
        ge=100,
        description="Gaussian budget: MCMC's cap_max; default densification drops the least opaque past it. "
        "At most half of it start from the points",
    )
    lr: SplatLearningRates = Field(default_factory=SplatLearningRates, description="learning rates (gsplat's names)")
    background: tuple[float, float, float] = Field(
        (0.0, 0.0, 0.0), description="RGB in [0, 1] behind the Gaussians when training and scoring"
    )
    ssim_lambda: float = Field(0.2, ge=0.0, le=1.0, description="loss = (1-l) L1 + l (1 - SSIM)")
    hold_out_every: int = Field(8, ge=0, description="every n-th view is held out for evaluation (0: none)")
    eval_every: int = Field(3500, ge=0, description="score the held-out views every n steps (0: start and end)")
    checkpoint_every: int = Field(3500, ge=0, description="write a resumable checkpoint every n steps (0: never)")
    time_limit_s: float = Field(1800.0, ge=0.0, description="stop training after this many seconds (0: no limit)")
    comparisons: int = Field(4, ge=0, description="held-out render-vs-photo pictures kept for the report")
    cpu_max_steps: int = Field(2000, ge=1, description="without CUDA, refuse more steps than this")
    cpu_max_gaussians: int = Field(20_000, ge=100, description="without CUDA, refuse a larger max_gaussians")
    cpu_max_size: int = Field(320, ge=32, description="without CUDA, refuse larger training images")
    seed: int = Field(0, description="random seed (initial subset, view order, densification)")


class SplatInputs(StageInputs):
    depth: StageResult
    fusion: StageResult | None = None  # an input only when it seeds the Gaussians (init fused)

    def used(self, params: SplatParams) -> SplatInputs:
        if params.init != "fused":
            return self.model_copy(update={"fusion": None})
        if self.fusion is None:
            raise StageError("splat", "init fused needs the fusion artefact (or --set splat.init=sparse)")
        return self


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
    from photoforge.splatting.rasterize import resolve_backend  # torch: only when asked

    try:
        check_device(params, resolve_backend(params.device))
    except StageError as exc:
        return str(exc)
    return None


def run(inputs: SplatInputs, *, out: Path, params: SplatParams, progress: Progress) -> SplatMetrics:
    return train_splats(inputs, out=out, params=params, progress=progress)


def train_splats(
    inputs: SplatInputs,
    *,
    out: Path,
    params: SplatParams,
    progress: Progress,
    checkpoint: Path | None = None,
    resume: Path | None = None,
    key: str = "",
) -> SplatMetrics:
    """`run`, with checkpoints: where they go (default: out/checkpoint.pt, dropped at the end), and
    `resume`, a checkpoint of this same run (same `key`) to continue from."""
    import torch

    from photoforge.splatting.fit import FitJob, fit_splats, speed_and_memory
    from photoforge.splatting.rasterize import resolve_device
    from photoforge.splatting.train import LearningRates, TrainSettings

    backend, fallback = resolve_device(params.device)
    if fallback is not None and torch.cuda.is_available():  # a GPU is here but gsplat cannot use it
        log.warning("splat: device auto, but %s: training on the CPU path", fallback)
    check_device(params, backend)
    fused = None
    if params.init == "fused":
        if inputs.fusion is None:
            raise StageError("splat", "init fused needs the fusion artefact (or --set splat.init=sparse)")
        fused = inputs.fusion.dir / FUSED_PLY
    settings = TrainSettings(
        steps=params.steps,
        sh_degree=params.sh_degree,
        strategy=params.strategy,
        max_gaussians=params.max_gaussians,
        lrs=LearningRates(**params.lr.model_dump()),
        ssim_lambda=params.ssim_lambda,
        eval_every=params.eval_every,
        checkpoint_every=params.checkpoint_every,
        time_limit_s=params.time_limit_s,
        seed=params.seed,
        background=params.background,
        fingerprint=key,
    )
    job = FitJob(backend, settings, params.max_size, params.hold_out_every, params.init, fused, params.comparisons)
    fit = fit_splats(inputs.depth.dir, job, out, progress, checkpoint, resume)
    result = fit.result
    first, last = result.evaluations[0], result.evaluations[-1]
    metrics = SplatMetrics(
        device=backend,
        device_fallback=fallback,
        strategy=result.strategy,
        strategy_requested=params.strategy,
        gaussians=len(result.splats),
        gaussians_initial=fit.initial_gaussians,
        steps=result.steps_done,
        stopped_by=result.stopped_by,
        train_seconds=round(result.train_seconds, 2),
        **speed_and_memory(result),
        psnr_initial=first["psnr"],
        ssim_initial=first["ssim"],
        psnr=last["psnr"],
        ssim=last["ssim"],
        psnr_gain=round(last["psnr"] - first["psnr"], 3),
        evaluated_on="held-out" if fit.test_views else "training views (hold_out_every=0)",
        train_views=fit.train_views,
        test_views=fit.test_views,
        resolution=fit.resolution,
        evaluations=result.evaluations,
        schedule=vars(result.schedule),
        resumed_from_step=result.resumed_from_step,
        notes=result.notes,
        comparisons=fit.comparisons,
        summary=f"{len(result.splats)} Gaussians, held-out PSNR {last['psnr']:.2f} dB "
        f"({last['psnr'] - first['psnr']:+.2f} over init), SSIM {last['ssim']:.3f}, {result.steps_done} steps "
        f"({backend}, {result.strategy})",
    )
    write_json(out / SPLAT_JSON, metrics.as_manifest())
    return metrics


def resume_checkpoint(store: ArtefactStore, key: str) -> Path:
    """Where a run with this key checkpoints: outside its temp dir, so an interrupted run can resume."""
    return store.stage_dir(STAGE.name, key).parent / f".checkpoint-{key}.pt"


@dataclass(frozen=True)
class SplatStage(Stage[SplatInputs, SplatParams, SplatMetrics]):
    """The splat stage, resumable: a run interrupted and started again with the same key resumes
    from the checkpoint it left beside the artefacts."""

    def execute(
        self, store: ArtefactStore, inputs: SplatInputs, params: SplatParams, *, progress: Progress = no_progress
    ) -> StageResult:
        params = self.resolve(params)
        inputs = inputs.used(params)
        key = self.key(inputs, params)
        checkpoint = resume_checkpoint(store, key)

        def compute(out: Path) -> SplatMetrics:
            from photoforge.splatting.train import CheckpointError

            def train(resume: Path | None) -> SplatMetrics:
                return train_splats(
                    inputs, out=out, params=params, progress=progress, checkpoint=checkpoint, resume=resume, key=key
                )

            try:
                return train(checkpoint if checkpoint.is_file() else None)
            except CheckpointError as exc:  # a damaged leftover must not block the stage: start afresh
                log.warning("splat: %s; training from the start", exc)
                checkpoint.unlink(missing_ok=True)
                return train(None)

        result = self.execute_with(store, inputs, params, compute)
        if not result.reused:
            checkpoint.unlink(missing_ok=True)
        return result


STAGE = SplatStage("splat", inputs=SplatInputs, params=SplatParams, metrics=SplatMetrics, run=run)
