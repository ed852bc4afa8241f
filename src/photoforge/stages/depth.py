"""Stage depth: a depth map (with normal and confidence) per registered view.

Two backends: `cuda` runs COLMAP PatchMatch (pycolmap-cuda12); `cpu` runs photoforge's own
plane sweep in PyTorch (on a GPU too, when torch sees one). `auto` picks `cuda` when the
installed pycolmap has CUDA. Both work on COLMAP-undistorted (pinhole) images, kept in the
artefact for later stages.

The key hashes the backend that runs, never `auto`: plane sweep and PatchMatch give different
maps, so a CPU result must not stand in for a CUDA one (or the reverse). A flow that hands depth
to a GPU pool resolves `auto` itself before keying (flows/gpu.py::for_pool).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import pycolmap
import torch
from pydantic import Field

from photoforge.camera.sfm import quiet_colmap
from photoforge.camera.views import View, depth_range, load_views, rank_neighbours
from photoforge.errors import StageError
from photoforge.geometry.mvs import colmap_stereo
from photoforge.geometry.mvs.depthmaps import normals_from_depth, preview, save_view
from photoforge.geometry.mvs.planesweep import SourceView, SweepSettings, plane_sweep
from photoforge.io.images import read_rgb, resize_longest
from photoforge.stage import Progress, Stage, StageParams, StageResult, no_progress
from photoforge.stages.ingest import FRAMES_DIR
from photoforge.stages.poses import SPARSE_DIR
from photoforge.store import ArtefactStore, write_json


class DepthStage(Stage):
    """A Stage whose key hashes the resolved backend: `auto` keys as `cpu` or `cuda`, as it will run here."""

    def key(self, params: StageParams, inputs: Mapping[str, Any]) -> str:
        if isinstance(params, DepthParams):
            params = resolve(params)
        return super().key(params, inputs)


STAGE = DepthStage("depth", version="1", libraries=("pycolmap", "torch", "opencv-python-headless", "numpy"))
UNDISTORTED = "undistorted"
MAPS_DIR = "maps"
PREVIEWS_DIR = "previews"
DEPTH_JSON = "depth.json"
MIN_SPARSE_POINTS = 50
MAX_OVERLAPPING = 24  # views recorded per view for fusion's consistency checks

log = logging.getLogger("photoforge")


class DepthParams(StageParams):
    backend: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="cuda: COLMAP PatchMatch (pycolmap-cuda12); cpu: photoforge's plane sweep"
    )
    torch_device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where the cpu backend's sweep runs")
    max_size: int = Field(800, ge=64, description="longest side of the depth maps in px")
    neighbours: int = Field(4, ge=1, le=16, description="source views per reference view")
    planes: int = Field(96, ge=8, description="depth planes of the sweep (uniform in inverse depth)")
    window: int = Field(7, ge=3, le=21, description="ZNCC / PatchMatch window side in px (odd)")
    top_k: int = Field(2, ge=1, description="best source scores averaged per pixel (occlusion-robust)")
    min_confidence: float = Field(0.5, ge=-1.0, le=1.0, description="ZNCC below which a depth is dropped")
    depth_margin: float = Field(0.2, ge=0.0, le=2.0, description="widen the sparse points' depth range by this")
    min_valid_fraction: float = Field(
        0.01, ge=0.0, le=1.0, description="a view with less valid depth than this is reported unusable"
    )


def resolve(params: DepthParams) -> DepthParams:
    """`auto` replaced by the backend that runs on this machine (cuda when pycolmap has CUDA)."""
    if params.backend != "auto":
        return params
    return params.model_copy(update={"backend": "cuda" if colmap_stereo.available() else "cpu"})


def key_inputs(frames: StageResult, sparse: StageResult) -> dict[str, Any]:
    return {"frames": frames.key, "poses": sparse.key}


def execute(
    store: ArtefactStore,
    frames: StageResult,
    sparse: StageResult,
    params: DepthParams,
    progress: Progress = no_progress,
    map_views: ViewMapper | None = None,
) -> StageResult:
    """`map_views` spreads the per-view work (the flow passes its task runner's map); serial by default.

    The manifest records the resolved params, so it names the backend that ran.
    """
    params = resolve(params)
    return STAGE.execute(
        store,
        params,
        key_inputs(frames, sparse),
        lambda out: run(frames.dir, sparse.dir, out, params, progress, map_views or serial_map),
    )


def choose_backend(params: DepthParams) -> str:
    if params.backend == "cuda" and not colmap_stereo.available():
        raise StageError(
            "depth",
            "backend cuda needs pycolmap built with CUDA (pip install pycolmap-cuda12); "
            "use --set depth.backend=cpu on this machine",
        )
    return resolve(params).backend


def torch_device(params: DepthParams) -> torch.device:
    if params.torch_device == "cuda" or (params.torch_device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def undistort(frames_dir: Path, sparse_dir: Path, workspace: Path) -> pycolmap.Reconstruction:
    """COLMAP undistortion: pinhole images and model, the input both backends expect."""
    pycolmap.undistort_images(workspace, sparse_dir, frames_dir)
    return pycolmap.Reconstruction(str(workspace / "sparse"))


def run(
    ingest_dir: Path,
    poses_dir: Path,
    out: Path,
    params: DepthParams,
    progress: Progress = no_progress,
    map_views: ViewMapper | None = None,
) -> dict[str, Any]:
    backend = choose_backend(params)
    quiet_colmap(verbose=False)
    workspace = out / UNDISTORTED
    model = undistort(ingest_dir / FRAMES_DIR, poses_dir / SPARSE_DIR, workspace)
    views, points = load_views(model)
    if len(views) < 2 or len(points) < MIN_SPARSE_POINTS:
        raise StageError(
            "depth",
            f"the sparse model has {len(views)} views and {len(points)} points: stereo needs at least 2 views "
            f"and {MIN_SPARSE_POINTS} points (improve the capture's overlap, or lower poses.min_registered)",
            poses_dir / SPARSE_DIR,
        )
    ranked = rank_neighbours(views, points)
    neighbours = {i: ranked[i][: params.neighbours] for i in ranked}
    (out / MAPS_DIR).mkdir()
    (out / PREVIEWS_DIR).mkdir()
    if backend == "cuda":
        try:
            colmap_stereo.run_patch_match(workspace, params.max_size, params.window // 2, min_consistent=2)
        except (RuntimeError, ValueError) as exc:  # CUDA errors, out of GPU memory included
            raise StageError(
                "depth",
                f"COLMAP PatchMatch failed: {exc}; lower depth.max_size, or --set depth.backend=cpu",
                workspace,
            ) from exc

    device = torch_device(params)
    started = time.perf_counter()
    jobs = [
        ViewJob(
            view=view,
            neighbours=[views[j] for j in neighbours[view.index]],
            overlapping=[views[j].name for j in ranked[view.index][:MAX_OVERLAPPING]],
            bounds=depth_range(view, points, params.depth_margin),
            workspace=workspace,
            out=out,
            backend=backend,
            params=params,
        )
        for view in views
    ]
    records = (map_views or serial_map)(compute_view, jobs, progress)
    usable = [r for r in records if r["usable"]]
    if not usable:
        names = ", ".join(r["name"] for r in records)
        raise StageError("depth", f"no view got usable depth (backend {backend}): {names}", poses_dir)
    unusable = [r["name"] for r in records if not r["usable"]]
    if unusable:
        log.warning("depth: %d view(s) without usable depth: %s", len(unusable), ", ".join(unusable))
    seconds = time.perf_counter() - started
    write_json(out / DEPTH_JSON, {"backend": backend, "device": str(device), "views": records})
    fraction = len(usable) / len(records)
    return {
        "backend": backend,
        "device": str(device) if backend == "cpu" else "cuda",
        "views": len(records),
        "usable_views": len(usable),
        "usable_fraction": round(fraction, 4),
        "mean_valid_fraction": round(float(np.mean([r["valid_fraction"] for r in records])), 4),
        "seconds_per_view": round(seconds / len(records), 3),
        "unusable": unusable,
        "summary": f"{len(usable)}/{len(records)} views with depth ({backend})",
    }


@dataclass
class ViewJob:
    """Everything one view's depth map needs: picklable, so a task runner can ship it to a worker."""

    view: View
    neighbours: list[View]
    overlapping: list[str]
    bounds: tuple[float, float] | None
    workspace: Path  # the undistorted COLMAP workspace
    out: Path  # the artefact (temp) dir: maps/ and previews/ are written here
    backend: str
    params: DepthParams

    @property
    def name(self) -> str:
        return self.view.name


ViewMapper = Callable[[Callable[[ViewJob], dict[str, Any]], list[ViewJob], Progress], list[dict[str, Any]]]


def serial_map(compute: Callable[[ViewJob], dict[str, Any]], jobs: list[ViewJob], progress: Progress) -> list[dict]:
    """One view after another in this process: the library default (the flow maps through its task runner)."""
    records = []
    for done, job in enumerate(jobs):
        records.append(compute(job))
        progress(done + 1, len(jobs), view_message(records[-1]))
    return records


def view_message(record: dict[str, Any]) -> str:
    if not record["usable"] and "map" not in record:
        return f"{record['name']}: skipped"
    return f"{record['name']}: {record['valid_fraction']:.0%} of pixels with depth"


def compute_view(job: ViewJob) -> dict[str, Any]:
    """One view's depth, normal and confidence maps written to job.out; returns its record."""
    view, params = job.view, job.params
    record: dict[str, Any] = {
        "name": view.name,
        "neighbours": [n.name for n in job.neighbours],
        "overlapping": job.overlapping,
    }
    # the device of the machine computing the view (a Dask worker may differ from the orchestrator)
    images = _ImageCache(job.workspace / "images", params.max_size, torch_device(params))
    if job.backend == "cuda":
        result = _colmap_view(job.workspace, view, images)
    else:
        result = _sweep_view(view, job.neighbours, job.bounds, images, params)
    if result is None:
        return {**record, "usable": False, "valid_fraction": 0.0}
    depth, normal, confidence, scaled = result
    valid_fraction = float((depth > 0).mean())
    stem = f"{view.index:04d}"
    save_view(job.out / MAPS_DIR / f"{stem}.npz", depth, confidence, normal, images.color(view.name))
    preview(depth, job.out / PREVIEWS_DIR / f"{stem}.png")
    return {
        **record,
        "map": f"{MAPS_DIR}/{stem}.npz",
        "preview": f"{PREVIEWS_DIR}/{stem}.png",
        "camera": scaled.to_json(),
        "valid_fraction": round(valid_fraction, 4),
        "usable": valid_fraction >= params.min_valid_fraction,
    }


class _ImageCache:
    """Undistorted images at depth resolution: grey tensors for matching, colour for fusion."""

    def __init__(self, folder: Path, max_size: int, device: torch.device) -> None:
        self.folder = folder
        self.max_size = max_size
        self.device = device
        self._rgb: dict[str, np.ndarray] = {}
        self._gray: dict[str, torch.Tensor] = {}

    def color(self, name: str) -> np.ndarray:
        if name not in self._rgb:
            rgb = read_rgb(self.folder / name, "depth", "undistorted image")
            self._rgb[name] = resize_longest(rgb, self.max_size)
        return self._rgb[name]

    def match_size(self, name: str, width: int, height: int) -> None:
        """Keep the colour at another backend's depth-map size (COLMAP picks its own)."""
        color = self.color(name)
        if color.shape[:2] != (height, width):
            self._rgb[name] = cv2.resize(color, (width, height), interpolation=cv2.INTER_AREA)

    def gray(self, name: str) -> torch.Tensor:
        if name not in self._gray:
            gray = cv2.cvtColor(self.color(name), cv2.COLOR_RGB2GRAY).astype(np.float32)
            self._gray[name] = torch.from_numpy(gray).to(self.device)
        return self._gray[name]


def _sweep_view(
    view: View,
    neighbours: list[View],
    bounds: tuple[float, float] | None,
    images: _ImageCache,
    params: DepthParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, View] | None:
    if not neighbours:
        log.warning("depth: %s has no neighbour view with enough shared points; skipped", view.name)
        return None
    if bounds is None:
        log.warning("depth: %s sees too few sparse points to bound its depth; skipped", view.name)
        return None
    ref = images.gray(view.name)
    scaled = view.scaled(ref.shape[1], ref.shape[0])
    sources = []
    for neighbour in neighbours:
        gray = images.gray(neighbour.name)
        src = neighbour.scaled(gray.shape[1], gray.shape[0])
        rotation = src.rotation @ view.rotation.T
        translation = src.translation - rotation @ view.translation
        sources.append(SourceView(gray, src.k, rotation, translation))
    settings = SweepSettings(planes=params.planes, window=params.window | 1, top_k=params.top_k)
    try:
        depth_t, conf_t = plane_sweep(ref, scaled.k, sources, bounds[0], bounds[1], settings)
    except torch.cuda.OutOfMemoryError as exc:
        raise StageError(
            "depth",
            f"out of GPU memory on {view.name}: lower depth.max_size or depth.planes, or --set depth.torch_device=cpu",
        ) from exc
    depth = depth_t.cpu().numpy()
    confidence = conf_t.cpu().numpy()
    depth[confidence < params.min_confidence] = 0
    return depth, normals_from_depth(depth, scaled.k), confidence, scaled


def _colmap_view(
    workspace: Path, view: View, images: _ImageCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, View] | None:
    maps = colmap_stereo.geometric_maps(workspace, view.name)
    if maps is None:
        log.warning(
            "depth: %s: COLMAP PatchMatch wrote no depth map (it found no source images for it: near-duplicate "
            "frames, or too small a triangulation angle); skipped",
            view.name,
        )
        return None
    depth, normal = maps
    height, width = depth.shape
    images.match_size(view.name, width, height)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
    confidence = (depth > 0).astype(np.float32)
    return depth, normal.astype(np.float32), confidence, view.scaled(width, height)


def load_depth_views(depth_dir: Path) -> list[dict[str, Any]]:
    """The usable views of a depth artefact, with their cameras at depth resolution."""
    data = json.loads((depth_dir / DEPTH_JSON).read_text())
    return [v for v in data["views"] if v.get("usable")]
