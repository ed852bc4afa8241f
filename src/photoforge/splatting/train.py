"""3DGS optimisation: Adam per parameter, gsplat's densification strategies, checkpoints, resume.

It follows gsplat's `simple_trainer`: one view per step, L1 + SSIM loss, the means' learning
rate scaled by the scene and decayed 100x over the run, SH bands switched on one at a time. The
densification schedule is gsplat's 30k-step one, compressed for shorter runs. On CPU only
`DefaultStrategy` runs: `MCMCStrategy` relocates Gaussians and injects noise through gsplat's
CUDA ops (`relocation`, `quat_scale_to_covar_preci`), so a CPU run asking for it falls back to
`DefaultStrategy`, and says so in `TrainResult.notes`.

gsplat 1.5.3's DefaultStrategy never resets opacities (`step % reset_every == 0 & step > 0` is
always false: `&` binds before `==`), so the trainer does gsplat's reset itself on the schedule.
Training images stay uint8 on the host (pinned on CUDA) and go to the device one per step, so
their upload cannot run the GPU out of memory before training starts.

Imports only torch, gsplat, numpy and scipy (no pydantic, open3d, pycolmap): a bare GPU machine
can run it (bench/splat_bundle.py).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from gsplat.strategy import DefaultStrategy, MCMCStrategy
from gsplat.strategy.ops import remove, reset_opa

from photoforge.camera.model import Camera
from photoforge.errors import StageError
from photoforge.splatting.gaussians import PARAM_KEYS, Splats
from photoforge.splatting.losses import photometric_loss
from photoforge.splatting.rasterize import Backend, camera_tensors, rasterize

if TYPE_CHECKING:
    from photoforge.stage import Progress

log = logging.getLogger("photoforge")

CHECKPOINT_FORMAT = 2  # 2: records the backend and the strategy that wrote it
MCMC_REGULARISATION = 0.01  # gsplat's opacity_reg and scale_reg for MCMC
# Opacities reset to 0.01 need this many Adam steps (lr 0.05 per step) to climb back past 0.9 with room
# to spare: runs too short for it (under 400 steps: the first reset would fall past refine_stop) get none.
MIN_RESET_INTERVAL = 200


def no_progress(done: int, total: int, message: str = "") -> None:
    """A Progress that reports nothing (photoforge.stage's, without importing pydantic)."""


class CheckpointError(StageError):
    """A checkpoint that cannot be resumed from (unreadable, or another run's)."""


@dataclass(frozen=True)
class LearningRates:
    means: float = 1.6e-4  # times the scene scale, decayed to 1% over the run
    scales: float = 5e-3
    quats: float = 1e-3
    opacities: float = 5e-2
    sh0: float = 2.5e-3
    shN: float = 2.5e-3 / 20


@dataclass(frozen=True)
class TrainSettings:
    steps: int
    sh_degree: int
    strategy: Literal["default", "mcmc"]
    max_gaussians: int
    lrs: LearningRates = LearningRates()
    ssim_lambda: float = 0.2
    scene_scale: float = 1.0
    eval_every: int = 0  # 0: evaluate only before and after
    checkpoint_every: int = 0  # 0: no periodic checkpoints
    time_limit_s: float = 0.0  # 0: no limit
    seed: int = 0
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fingerprint: str = ""  # identifies the run a checkpoint belongs to (the stage passes its cache key)


@dataclass(frozen=True)
class Schedule:
    """When densification starts, stops, and how often it runs; when each SH band switches on."""

    refine_start: int
    refine_stop: int
    refine_every: int
    sh_interval: int
    reset_every: int  # DefaultStrategy's opacity reset (0: none, as MCMC)

    @classmethod
    def for_run(cls, steps: int, strategy: str, sh_degree: int) -> Schedule:
        # gsplat at 30k steps: refine from 500 to 15k (MCMC 25k) every 100; one SH band per 1000 steps;
        # DefaultStrategy resets opacities every 3000 (never between two refinements)
        stop_fraction = 25 / 30 if strategy == "mcmc" else 0.5
        refine_every = min(100, max(10, steps // 30))
        return cls(
            refine_start=min(500, steps // 20),
            refine_stop=int(steps * stop_fraction),
            refine_every=refine_every,
            sh_interval=min(1000, max(1, steps // (2 * (sh_degree + 1)))),
            reset_every=0 if strategy == "mcmc" else min(3000, max(MIN_RESET_INTERVAL, steps // 10)),
        )

    def resets_opacities(self, step: int) -> bool:
        """gsplat's intended condition: every reset_every steps while densification runs."""
        return self.reset_every > 0 and 0 < step < self.refine_stop and step % self.reset_every == 0


@dataclass
class TrainView:
    """A training photo and its camera, whose tensors are made once on the training device."""

    camera: Camera  # at the image's size
    image: torch.Tensor  # H x W x 3 uint8 on the host (pinned on CUDA), uploaded per step; float [0, 1] works too
    device: torch.device | str  # the training device
    tensors: tuple[torch.Tensor, torch.Tensor] = field(init=False, repr=False)  # (4x4 cam_from_world, K)

    def __post_init__(self) -> None:
        self.tensors = camera_tensors(self.camera, self.device)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass
class TrainResult:
    splats: Splats
    steps_done: int
    stopped_by: Literal["steps", "time_limit"]
    train_seconds: float  # optimisation only (evaluation and checkpoints excluded)
    strategy: str  # the strategy that ran
    evaluations: list[dict[str, Any]]
    peak_gpu_bytes: int  # torch.cuda.max_memory_allocated
    resumed_from_step: int | None
    schedule: Schedule
    notes: list[str] = field(default_factory=list)
    peak_gpu_reserved_bytes: int = 0  # torch.cuda.max_memory_reserved (what the caching allocator held)
    resumed_seconds: float = 0.0  # training seconds before the resume (in train_seconds, not this process's)
    backend: str = "cpu"


Evaluate = Callable[[int, torch.nn.ParameterDict, int], dict[str, Any]]  # (step, params, sh degree) -> scores


def train(
    initial: Splats,
    views: list[TrainView],
    settings: TrainSettings,
    backend: Backend,
    evaluate: Evaluate,
    progress: Progress = no_progress,
    checkpoint: Path | None = None,
    resume: Path | None = None,
) -> TrainResult:
    """Optimise the Gaussians on `views`; `evaluate` scores them at step 0, every eval_every, and at the end.

    Checkpoints (params, Adam state, strategy state, step) go to `checkpoint` every
    checkpoint_every steps; `resume` continues from one written with the same fingerprint.
    """
    device = torch.device("cuda" if backend == "cuda" else "cpu")
    torch.manual_seed(settings.seed)
    notes: list[str] = []
    strategy_name = settings.strategy
    if strategy_name == "mcmc" and backend != "cuda":
        strategy_name = "default"
        notes.append("mcmc needs gsplat's CUDA ops (relocation, noise injection): ran default densification")
    schedule = Schedule.for_run(settings.steps, strategy_name, settings.sh_degree)
    params = initial.to(device).as_params()
    optimizers = _optimizers(params, settings)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizers["means"], gamma=0.01 ** (1.0 / settings.steps))
    strategy: DefaultStrategy | MCMCStrategy
    if strategy_name == "mcmc":
        strategy = MCMCStrategy(
            cap_max=settings.max_gaussians,
            refine_start_iter=schedule.refine_start,
            refine_stop_iter=schedule.refine_stop,
            refine_every=schedule.refine_every,
        )
        state = strategy.initialize_state()
    else:
        strategy = DefaultStrategy(
            refine_start_iter=schedule.refine_start,
            refine_stop_iter=schedule.refine_stop,
            refine_every=schedule.refine_every,
            reset_every=schedule.reset_every,
        )
        state = strategy.initialize_state(scene_scale=settings.scene_scale)
    strategy.check_sanity(params, optimizers)
    background = torch.tensor(settings.background, dtype=torch.float32, device=device)

    start_step, elapsed, evaluations, resumed_from = 0, 0.0, [], None
    if resume is not None:
        start_step, elapsed, evaluations, state = _load_checkpoint(
            resume, settings, params, optimizers, scheduler, state, device, backend, strategy_name
        )
        resumed_from = start_step
        notes.append(f"resumed from step {start_step} ({resume.name}, {backend}, {strategy_name})")
        log.info("splat: resuming from step %d of %s", start_step, resume)
    if backend == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if not evaluations:
        evaluations.append({**evaluate(0, params, 0), "step": 0, "gaussians": len(params["means"]), "seconds": 0.0})

    stopped_by: Literal["steps", "time_limit"] = "steps"
    report_every = max(1, settings.steps // 100)
    step = start_step
    started = time.perf_counter() - elapsed
    paused = 0.0  # evaluation and checkpoint time, not training
    for step in range(start_step, settings.steps):
        if settings.time_limit_s > 0 and time.perf_counter() - started - paused >= settings.time_limit_s:
            stopped_by = "time_limit"
            break
        target = views[_view_index(step, len(views), settings.seed)]
        sh_degree = min(step // schedule.sh_interval, settings.sh_degree)
        image = _upload(target.image, device)
        out = rasterize(params, *target.tensors, target.width, target.height, sh_degree, background, "RGB", backend)
        strategy.step_pre_backward(params, optimizers, state, step, out.info)
        loss = photometric_loss(out.colors, image, settings.ssim_lambda)
        if strategy_name == "mcmc":
            loss = loss + MCMC_REGULARISATION * (
                torch.sigmoid(params["opacities"]).mean() + torch.exp(params["scales"]).mean()
            )
        loss.backward()
        for optimizer in optimizers.values():
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        if isinstance(strategy, MCMCStrategy):
            strategy.step_post_backward(params, optimizers, state, step, out.info, lr=scheduler.get_last_lr()[0])
        else:
            strategy.step_post_backward(params, optimizers, state, step, out.info, packed=False)
            if schedule.resets_opacities(step):  # what gsplat 1.5.3 means to do, and does not
                reset_opa(params=params, optimizers=optimizers, state=state, value=strategy.prune_opa * 2.0)
            _cap(params, optimizers, state, settings.max_gaussians)
        done = step + 1
        if done % report_every == 0 or done == settings.steps:
            with torch.no_grad():
                mse = float(torch.mean((out.colors.clamp(0, 1) - image) ** 2))
            psnr = -10 * math.log10(max(mse, 1e-12))
            progress(
                done,
                settings.steps,
                f"loss {float(loss.detach()):.4f} psnr {psnr:.2f} ({len(params['means'])} Gaussians)",
            )
        if settings.eval_every > 0 and done % settings.eval_every == 0 and done < settings.steps:
            tic = _clock(device)
            seconds = tic - started - paused
            scores = evaluate(done, params, sh_degree)
            evaluations.append({**scores, "step": done, "gaussians": len(params["means"]), "seconds": seconds})
            paused += time.perf_counter() - tic
        if checkpoint is not None and settings.checkpoint_every > 0 and done % settings.checkpoint_every == 0:
            tic = _clock(device)
            seconds = tic - started - paused
            _save_checkpoint(
                checkpoint, settings, done, seconds, params, optimizers, scheduler, state, evaluations, strategy_name
            )
            paused += time.perf_counter() - tic
    else:
        step = settings.steps
    train_seconds = _clock(device) - started - paused
    final_degree = min(max(step - 1, 0) // schedule.sh_interval, settings.sh_degree)
    scores = evaluate(step, params, final_degree)
    evaluations.append({**scores, "step": step, "gaussians": len(params["means"]), "seconds": train_seconds})
    peak, reserved = peak_gpu_memory(backend)
    splats = Splats.from_params(params).to("cpu")
    if final_degree < settings.sh_degree:  # bands never switched on stay zero: say so, keep the layout
        notes.append(f"stopped before SH degree {settings.sh_degree} switched on (degree {final_degree} trained)")
    return TrainResult(
        splats, step, stopped_by, train_seconds, strategy_name, evaluations, peak, resumed_from, schedule, notes,
        peak_gpu_reserved_bytes=reserved, resumed_seconds=elapsed, backend=backend,
    )  # fmt: skip


def peak_gpu_memory(backend: Backend) -> tuple[int, int]:
    """(max allocated, max reserved) bytes since the last reset: reserved is what other processes lose."""
    if backend != "cuda":
        return 0, 0
    return int(torch.cuda.max_memory_allocated()), int(torch.cuda.max_memory_reserved())


def _upload(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """One training photo on the device as float in [0, 1] (uint8 on the host: a quarter of the bytes)."""
    image = image.to(device, non_blocking=True)
    return image.float() / 255.0 if image.dtype == torch.uint8 else image


def _clock(device: torch.device) -> float:
    """perf_counter once queued GPU work is done, so the seconds are the training's, not the queue's."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _view_index(step: int, count: int, seed: int) -> int:
    """A fresh permutation of the views per epoch, a pure function of the step (so resume repeats it)."""
    epoch, position = divmod(step, count)
    return int(np.random.default_rng([seed, epoch]).permutation(count)[position])


def _optimizers(params: torch.nn.ParameterDict, settings: TrainSettings) -> dict[str, torch.optim.Optimizer]:
    lrs = {
        "means": settings.lrs.means * settings.scene_scale,
        "scales": settings.lrs.scales,
        "quats": settings.lrs.quats,
        "opacities": settings.lrs.opacities,
        "sh0": settings.lrs.sh0,
        "shN": settings.lrs.shN,
    }
    return {
        name: torch.optim.Adam([{"params": params[name], "lr": lrs[name], "name": name}], eps=1e-15)
        for name in PARAM_KEYS
    }


def _cap(
    params: torch.nn.ParameterDict, optimizers: dict[str, torch.optim.Optimizer], state: dict[str, Any], limit: int
) -> None:
    """DefaultStrategy has no budget: past `limit`, drop the least opaque Gaussians."""
    excess = len(params["means"]) - limit
    if excess <= 0:
        return
    with torch.no_grad():
        weakest = torch.topk(params["opacities"].flatten(), excess, largest=False).indices
        mask = torch.zeros(len(params["means"]), dtype=torch.bool, device=params["means"].device)
        mask[weakest] = True
    remove(params=params, optimizers=optimizers, state=state, mask=mask)


def _save_checkpoint(
    path: Path,
    settings: TrainSettings,
    step: int,
    seconds: float,
    params: torch.nn.ParameterDict,
    optimizers: dict[str, torch.optim.Optimizer],
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict[str, Any],
    evaluations: list[dict[str, Any]],
    strategy_name: str | None = None,
) -> None:
    """Written beside and renamed over, so a kill mid-write keeps the previous checkpoint.

    Tensors and plain values only, so `_load_checkpoint` can read it with weights_only=True.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")  # two runs of one key never share a temp file
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": settings.fingerprint,
            "backend": "cuda" if params["means"].is_cuda else "cpu",
            "strategy": strategy_name or settings.strategy,
            "step": step,
            "seconds": seconds,
            "params": {k: v.detach() for k, v in params.items()},
            "optimizers": {k: opt.state_dict() for k, opt in optimizers.items()},
            "scheduler": scheduler.state_dict(),
            "strategy_state": state,
            "evaluations": evaluations,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if params["means"].is_cuda else None,
        },
        tmp,
    )
    tmp.replace(path)


def _load_checkpoint(
    path: Path,
    settings: TrainSettings,
    params: torch.nn.ParameterDict,
    optimizers: dict[str, torch.optim.Optimizer],
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict[str, Any],
    device: torch.device,
    backend: str | None = None,
    strategy_name: str | None = None,
) -> tuple[int, float, list[dict[str, Any]], dict[str, Any]]:
    """Tensors and plain containers only (weights_only): a checkpoint sits in the shared workspace,
    and unpickling anything else would run whatever code its writer put there.

    Read onto the CPU, then moved: Adam keeps its `step` counters on the CPU (load_state_dict
    moves the moments to the parameters' device and leaves `step` where it finds it). A checkpoint
    from another backend or strategy is refused: the same key runs mcmc on CUDA but default on CPU,
    and their Adam and densification states do not mix.
    """
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise CheckpointError("splat", f"cannot read the checkpoint: {exc}", path) from exc
    if not isinstance(data, dict):
        raise CheckpointError("splat", "cannot read the checkpoint: not a photoforge checkpoint", path)
    if data.get("format") != CHECKPOINT_FORMAT or data.get("fingerprint") != settings.fingerprint:
        raise CheckpointError("splat", "the checkpoint belongs to another run (other inputs or settings)", path)
    backend, strategy_name = backend or device.type, strategy_name or settings.strategy
    if (data.get("backend"), data.get("strategy")) != (backend, strategy_name):
        raise CheckpointError(
            "splat",
            f"the checkpoint was written by a {data.get('backend')} run with {data.get('strategy')} densification; "
            f"this run is {backend} with {strategy_name}: their optimiser and densification states do not carry over",
            path,
        )
    for name in PARAM_KEYS:
        params[name] = torch.nn.Parameter(data["params"][name].to(device))
        optimizer = optimizers[name]
        optimizer.param_groups[0]["params"] = [params[name]]
        optimizer.state.clear()
        optimizer.load_state_dict(data["optimizers"][name])
    scheduler.load_state_dict(data["scheduler"])
    torch.set_rng_state(data["torch_rng"].cpu())
    if device.type == "cuda" and data.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(data["cuda_rng"].cpu())
    loaded = data["strategy_state"]
    state.update({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in loaded.items()})
    return int(data["step"]), float(data["seconds"]), list(data["evaluations"]), state
