"""The splat stage's training run: a depth artefact's undistorted views in, splats.ply and scores out.

photoforge.stages.splat turns its params into a `FitJob`, checks the device, and makes its metrics
from the `Fit` returned here. This loads the views, picks the initial points, trains
(photoforge.splatting.train), scores the evaluation views and writes the artefact's files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from photoforge.camera.model import Camera
from photoforge.errors import StageError
from photoforge.geometry.pointcloud import read_ply
from photoforge.layout import CHECKPOINT, COMPARISONS_DIR, SPLATS_PLY, UNDISTORTED
from photoforge.splatting.data import CAMERAS_JSON, Capture, load_capture, scene_scale, write_cameras
from photoforge.splatting.evaluate import save_comparisons, score_views
from photoforge.splatting.gaussians import init_splats
from photoforge.splatting.ply import write_splat_ply
from photoforge.splatting.rasterize import Backend, CpuRasterizerOverflow
from photoforge.splatting.train import TrainResult, TrainSettings, TrainView, train

if TYPE_CHECKING:
    from photoforge.stage import Progress

MIN_POINTS = 10


@dataclass(frozen=True)
class FitJob:
    """One training run, as the splat stage asks for it."""

    backend: Backend
    settings: TrainSettings  # scene_scale is set here, from the capture's cameras
    max_size: int  # longest side of the training images in px (0: undistorted size)
    hold_out_every: int  # every n-th view is held out for evaluation (0: none)
    init: str  # the params' init (fused or sparse), for messages
    fused_ply: Path | None  # the fused cloud the Gaussians start from; None: the SfM points
    comparisons: int  # held-out render-vs-photo pictures to keep


@dataclass(frozen=True)
class Fit:
    result: TrainResult
    initial_gaussians: int
    train_views: int
    test_views: int  # 0: the scores are on the training views
    resolution: list[int]  # [width, height] of the training images
    comparisons: list[str]  # pictures, relative to the artefact dir


def fit_splats(
    depth_dir: Path,
    job: FitJob,
    out: Path,
    progress: Progress,
    checkpoint: Path | None = None,
    resume: Path | None = None,
) -> Fit:
    """Train, score and write splats.ply, cameras.json and the comparisons into `out`.

    checkpoint: where periodic checkpoints go (default: out/checkpoint.pt, dropped at the end);
    resume: a checkpoint of this same run (same settings.fingerprint) to continue from.
    """
    workspace = depth_dir / UNDISTORTED
    capture = load_capture(workspace / "images", workspace / "sparse", job.max_size, job.hold_out_every, "splat")
    if len(capture.train) < 2:
        raise StageError("splat", f"{len(capture.train)} training view(s): at least 2 are needed", depth_dir)
    xyz, rgb = initial_points(capture, job)
    settings = replace(job.settings, scene_scale=scene_scale(capture.train + capture.test))
    backend = job.backend
    init_scale, init_opacity = (0.1, 0.5) if settings.strategy == "mcmc" and backend == "cuda" else (1.0, 0.1)
    initial = init_splats(
        xyz, rgb, settings.sh_degree, max(1, settings.max_gaussians // 2), settings.seed, init_opacity, init_scale
    )
    device = torch.device("cuda" if backend == "cuda" else "cpu")
    eval_views, eval_images = (
        (capture.test, capture.test_images) if capture.test else (capture.train, capture.train_images)
    )

    def evaluate(step: int, splat_params: torch.nn.ParameterDict, sh_degree: int) -> dict[str, Any]:
        scores, _ = score_views(splat_params, eval_views, eval_images, sh_degree, backend, settings.background)
        progress(
            step, settings.steps, f"held-out PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f} at step {step}"
        )
        return scores

    own_checkpoint = checkpoint is None
    checkpoint = checkpoint or out / CHECKPOINT
    shown = min(job.comparisons, len(eval_views))
    try:  # everything that puts images or Gaussians on the GPU, the final scoring included
        views = [train_view(v, img, device) for v, img in zip(capture.train, capture.train_images, strict=True)]
        result = train(initial, views, settings, backend, evaluate, progress, checkpoint, resume)
        trained = result.splats.to(device).as_dict()  # untrained SH bands are zero: full degree renders the same
        _, renders = score_views(
            trained, eval_views[:shown], eval_images[:shown], result.splats.sh_degree, backend, settings.background
        )
        del trained
    except torch.cuda.OutOfMemoryError as exc:
        raise StageError(
            "splat",
            f"out of GPU memory ({len(initial)} initial Gaussians, images {job.max_size} px): lower "
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
    return Fit(
        result=result,
        initial_gaussians=len(initial),
        train_views=len(capture.train),
        test_views=len(capture.test),
        resolution=[views[0].width, views[0].height],
        comparisons=[f"{COMPARISONS_DIR}/{p}" for p in pictures],
    )


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


def initial_points(capture: Capture, job: FitJob) -> tuple[np.ndarray, np.ndarray]:
    """Where the Gaussians start: the fused cloud, or the SfM points of the undistorted model."""
    if job.fused_ply is not None:
        xyz, rgb, _ = read_ply(job.fused_ply)
    else:
        xyz, rgb = capture.points_xyz, capture.points_rgb
    if len(xyz) < MIN_POINTS:
        raise StageError(
            "splat", f"{len(xyz)} points to start from (init {job.init}): need {MIN_POINTS}", job.fused_ply
        )
    return np.asarray(xyz, np.float64), np.asarray(rgb, np.uint8)


def train_view(view: Camera, image: np.ndarray, device: torch.device) -> TrainView:
    """The camera on the device; the photo stays uint8 on the host (pinned for CUDA), uploaded per step."""
    pixels = torch.from_numpy(np.ascontiguousarray(image, np.uint8))
    return TrainView(view, pixels.pin_memory() if device.type == "cuda" else pixels, device)
