"""Stage depth: a depth map (with normal and confidence) per registered view.

Two backends: `cuda` runs COLMAP PatchMatch (pycolmap-cuda12); `cpu` runs photoforge's own
coarse-to-fine plane sweep in PyTorch (on a GPU too, when torch sees one; `method` sweep: the
earlier single sweep). `auto` picks `cuda` when the
installed pycolmap has CUDA. Both work on COLMAP-undistorted (pinhole) images, kept in the
artefact for later stages with the user's masks undistorted alike (no depth outside a mask).
The per-view work is photoforge.geometry.mvs.depth_views.

The key hashes the backend that runs, never `auto` (the stage's `resolve`): plane sweep and
PatchMatch give different maps, so a CPU result must not stand in for a CUDA one (or the reverse).
A flow that hands depth to a GPU pool resolves `auto` itself before keying (flows/gpu.py::for_pool).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from photoforge.errors import StageError
from photoforge.layout import DEPTH_JSON, FRAMES_DIR, MAPS_DIR, MASKS_DIR, PREVIEWS_DIR, SPARSE_DIR, UNDISTORTED
from photoforge.metrics import DepthMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult, off_or_at_least
from photoforge.store import write_json

if TYPE_CHECKING:
    from photoforge.geometry.mvs.depth_views import ViewMapper

log = logging.getLogger("photoforge")


class DepthParams(StageParams):
    backend: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="cuda: COLMAP PatchMatch (pycolmap-cuda12); cpu: photoforge's plane sweep"
    )
    torch_device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where the cpu backend's sweep runs")
    method: Literal["coarse_to_fine", "sweep"] = Field(
        "coarse_to_fine",
        description="cpu backend: coarse_to_fine (half-size sweep, then a fine slant-following one at full size, "
        "sources nearest in viewing angle); sweep (one full-size sweep, sources sharing most points: the earlier "
        "method, which ran with neighbours 4 and top_k 2)",
    )
    max_size: int = Field(800, ge=64, description="longest side of the depth maps in px")
    neighbours: int = Field(6, ge=1, le=16, description="source views per reference view")
    planes: int = Field(96, ge=8, description="depth planes of the (coarse) sweep, uniform in inverse depth")
    refine_planes: int = Field(
        12, ge=3, le=64, description="coarse_to_fine: depths per pixel of the full-size pass around the coarse surface"
    )
    foreground_planes: Annotated[int, off_or_at_least(3, "a band needs a depth either side of its best")] = Field(
        8,
        ge=0,
        le=64,
        description="coarse_to_fine: depths per pixel of a second full-size band around the nearest coarse "
        "neighbour (object rims, thin parts, the strip above a table); 0 turns it off",
    )
    window: int = Field(
        7, ge=3, le=21, description="ZNCC / PatchMatch window side in px (odd); coarse_to_fine's half-size pass uses 5"
    )
    top_k: int = Field(3, ge=1, description="best source scores averaged per pixel (occlusion-robust)")
    min_confidence: float = Field(0.5, ge=-1.0, le=1.0, description="ZNCC below which a depth is dropped")
    depth_margin: float = Field(0.2, ge=0.0, le=2.0, description="widen the sparse points' depth range by this")
    min_valid_fraction: float = Field(
        0.01, ge=0.0, le=1.0, description="a view with less valid depth than this is reported unusable"
    )


class DepthInputs(StageInputs):
    ingest: StageResult
    poses: StageResult


def resolve(params: DepthParams) -> DepthParams:
    """`auto` replaced by the backend that runs on this machine (cuda when pycolmap has CUDA)."""
    if params.backend != "auto":
        return params
    from photoforge.geometry.mvs import colmap_stereo

    return params.model_copy(update={"backend": "cuda" if colmap_stereo.available() else "cpu"})


def choose_backend(params: DepthParams) -> str:
    from photoforge.geometry.mvs import colmap_stereo

    if params.backend == "cuda" and not colmap_stereo.available():
        raise StageError(
            "depth",
            "backend cuda needs pycolmap built with CUDA (pip install pycolmap-cuda12); "
            "use --set depth.backend=cpu on this machine",
        )
    return resolve(params).backend


def run(inputs: DepthInputs, *, out: Path, params: DepthParams, progress: Progress) -> DepthMetrics:
    """The views one after another in this process (the flow's task maps them through its task runner)."""
    return run_views(inputs, out=out, params=params, progress=progress, map_views=None)


def run_views(
    inputs: DepthInputs, *, out: Path, params: DepthParams, progress: Progress, map_views: ViewMapper | None
) -> DepthMetrics:
    """`run` with the per-view work spread by `map_views` (serial when None)."""
    import numpy as np

    from photoforge.camera.sfm import quiet_colmap
    from photoforge.geometry.mvs import depth_views

    backend = choose_backend(params)
    quiet_colmap(verbose=False)
    workspace = out / UNDISTORTED
    sparse_dir = inputs.poses.dir / SPARSE_DIR
    masks = inputs.ingest.dir / MASKS_DIR  # the user's object masks: no depth outside them
    model = depth_views.undistort(inputs.ingest.dir / FRAMES_DIR, sparse_dir, workspace, masks_dir=masks)
    settings = depth_views.ViewSettings(
        max_size=params.max_size,
        torch_device=params.torch_device,
        method=params.method,
        planes=params.planes,
        window=params.window,
        top_k=params.top_k,
        refine_planes=params.refine_planes,
        foreground_planes=params.foreground_planes,
        min_confidence=params.min_confidence,
        min_valid_fraction=params.min_valid_fraction,
    )
    jobs = depth_views.view_jobs(
        model,
        workspace=workspace,
        out=out,
        backend=backend,
        settings=settings,
        neighbours=params.neighbours,
        depth_margin=params.depth_margin,
        sparse_dir=sparse_dir,
    )
    (out / MAPS_DIR).mkdir()
    (out / PREVIEWS_DIR).mkdir()
    if backend == "cuda":
        depth_views.patch_match(workspace, params.max_size, params.window)

    device = depth_views.torch_device(params.torch_device)
    started = time.perf_counter()
    records = (map_views or depth_views.serial_map)(depth_views.compute_view, jobs, progress)
    usable = [r for r in records if r.usable]
    if not usable:
        names = ", ".join(r.name for r in records)
        raise StageError("depth", f"no view got usable depth (backend {backend}): {names}", inputs.poses.dir)
    unusable = [r.name for r in records if not r.usable]
    if unusable:
        log.warning("depth: %d view(s) without usable depth: %s", len(unusable), ", ".join(unusable))
    seconds = time.perf_counter() - started
    views = [r.model_dump(mode="json", exclude_none=True) for r in records]
    write_json(out / DEPTH_JSON, {"backend": backend, "device": str(device), "views": views})
    return DepthMetrics(
        backend=backend,
        device=str(device) if backend == "cpu" else "cuda",
        views=len(records),
        usable_views=len(usable),
        usable_fraction=round(len(usable) / len(records), 4),
        mean_valid_fraction=round(float(np.mean([r.valid_fraction for r in records])), 4),
        seconds_per_view=round(seconds / len(records), 3),
        unusable=unusable,
        summary=f"{len(usable)}/{len(records)} views with depth ({backend})",
    )


STAGE = Stage("depth", inputs=DepthInputs, params=DepthParams, metrics=DepthMetrics, run=run, resolve=resolve)
