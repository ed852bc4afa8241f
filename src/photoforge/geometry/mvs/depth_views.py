"""Depth maps view by view: the undistorted workspace, one picklable job per view, its maps and record.

Both depth backends work on COLMAP-undistorted (pinhole) images: `cuda` reads the maps COLMAP
PatchMatch wrote for the whole workspace, `cpu` runs photoforge's plane sweep (PyTorch, on a GPU
too when torch sees one) per view: coarse to fine against the sources nearest in viewing angle
(`method` coarse_to_fine), or the earlier single full-size sweep against the sources sharing the
most sparse points (`method` sweep, kept to compare with). A job carries everything its view needs, so a task runner can
ship it to another worker; every job writes into the same artefact (temp) dir. A view whose frame has
the user's mask gets no depth outside it (photoforge.geometry.mvs.view_masks), so fusion ignores it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pycolmap
import torch

from photoforge.camera.model import Camera
from photoforge.camera.views import RegisteredView, depth_range, load_views, nearest_by_angle, rank_neighbours
from photoforge.errors import StageError
from photoforge.geometry.mvs import colmap_stereo
from photoforge.geometry.mvs.depthmaps import normals_from_depth, preview, save_view
from photoforge.geometry.mvs.planesweep import SourceView, SweepSettings, coarse_to_fine
from photoforge.geometry.mvs.view_masks import undistort_masks, view_mask
from photoforge.io.images import read_rgb, resize_longest
from photoforge.layout import MAPS_DIR, PREVIEWS_DIR, DepthViewRecord
from photoforge.stage import Progress

MIN_SPARSE_POINTS = 50
MAX_OVERLAPPING = 24  # views recorded per view for fusion's consistency checks

log = logging.getLogger("photoforge")


@dataclass(frozen=True)
class ViewSettings:
    """The depth params one view's maps need (plain values: a job travels to other workers)."""

    max_size: int  # longest side of the maps in px
    torch_device: str  # auto, cpu or cuda: where the sweep runs
    method: str  # coarse_to_fine or sweep (the cpu backend's)
    planes: int
    window: int
    top_k: int
    refine_planes: int
    foreground_planes: int
    min_confidence: float
    min_valid_fraction: float


@dataclass
class ViewJob:
    """Everything one view's depth map needs: picklable, so a task runner can ship it to a worker."""

    view: RegisteredView
    neighbours: list[RegisteredView]
    overlapping: list[str]
    bounds: tuple[float, float] | None
    workspace: Path  # the undistorted COLMAP workspace
    out: Path  # the artefact (temp) dir: maps/ and previews/ are written here
    backend: str
    settings: ViewSettings

    @property
    def name(self) -> str:
        return self.view.name


ViewMapper = Callable[[Callable[[ViewJob], DepthViewRecord], list[ViewJob], Progress], list[DepthViewRecord]]


def torch_device(choice: str) -> torch.device:
    """The device `auto`, `cpu` or `cuda` means on this machine."""
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def undistort(
    frames_dir: Path, sparse_dir: Path, workspace: Path, *, masks_dir: Path | None = None
) -> pycolmap.Reconstruction:
    """COLMAP undistortion: pinhole images and model, the input both backends expect; the frames'
    masks in `masks_dir` (if any) undistorted alike."""
    pycolmap.undistort_images(workspace, sparse_dir, frames_dir)
    model = pycolmap.Reconstruction(str(workspace / "sparse"))
    if masks_dir is not None and masks_dir.is_dir():
        undistort_masks(model, masks_dir=masks_dir, sparse_dir=sparse_dir, workspace=workspace)
    return model


def view_jobs(
    model: pycolmap.Reconstruction,
    *,
    workspace: Path,
    out: Path,
    backend: str,
    settings: ViewSettings,
    neighbours: int,
    depth_margin: float,
    sparse_dir: Path,
) -> list[ViewJob]:
    """A job per view of the undistorted model: its best `neighbours` as sources, its depth bounds."""
    views, points = load_views(model)
    if len(views) < 2 or len(points) < MIN_SPARSE_POINTS:
        raise StageError(
            "depth",
            f"the sparse model has {len(views)} views and {len(points)} points: stereo needs at least 2 views "
            f"and {MIN_SPARSE_POINTS} points (improve the capture's overlap, or lower poses.min_registered)",
            sparse_dir,
        )
    ranked = rank_neighbours(views, points)
    sources = ranked if settings.method == "sweep" else nearest_by_angle(views, points)
    return [
        ViewJob(
            view=view,
            neighbours=[views[j] for j in sources[view.index][:neighbours]],
            overlapping=[views[j].name for j in ranked[view.index][:MAX_OVERLAPPING]],
            bounds=depth_range(view, points, depth_margin),
            workspace=workspace,
            out=out,
            backend=backend,
            settings=settings,
        )
        for view in views
    ]


def patch_match(workspace: Path, max_size: int, window: int) -> None:
    """COLMAP PatchMatch over the whole workspace (the `cuda` backend): its maps are read view by view."""
    try:
        colmap_stereo.run_patch_match(workspace, max_size, window // 2, min_consistent=2)
    except (RuntimeError, ValueError) as exc:  # CUDA errors, out of GPU memory included
        raise StageError(
            "depth",
            f"COLMAP PatchMatch failed: {exc}; lower depth.max_size, or --set depth.backend=cpu",
            workspace,
        ) from exc


def serial_map(
    compute: Callable[[ViewJob], DepthViewRecord], jobs: list[ViewJob], progress: Progress
) -> list[DepthViewRecord]:
    """One view after another in this process: the library default (the flow maps through its task runner)."""
    records = []
    for done, job in enumerate(jobs):
        records.append(compute(job))
        progress(done + 1, len(jobs), view_message(records[-1]))
    return records


def view_message(record: DepthViewRecord) -> str:
    if not record.usable and record.map is None:
        return f"{record.name}: skipped"
    return f"{record.name}: {record.valid_fraction:.0%} of pixels with depth"


def compute_view(job: ViewJob) -> DepthViewRecord:
    """One view's depth, normal and confidence maps written to job.out; returns its record."""
    view, settings = job.view, job.settings
    # the device of the machine computing the view (a Dask worker may differ from the orchestrator)
    images = _ImageCache(job.workspace / "images", settings.max_size, torch_device(settings.torch_device))
    if job.backend == "cuda":
        result = _colmap_view(job.workspace, view, images)
    else:
        result = _sweep_view(view, job.neighbours, job.bounds, images, settings)
    if result is not None:
        mask = view_mask(job.workspace, view.name, result[3].width, result[3].height)
        result = _masked(result, mask, backend=job.backend)
    if result is None:
        return DepthViewRecord(
            name=view.name,
            neighbours=[n.name for n in job.neighbours],
            overlapping=job.overlapping,
            usable=False,
            valid_fraction=0.0,
        )
    depth, normal, confidence, scaled = result
    valid_fraction = float((depth > 0).mean())
    stem = f"{view.index:04d}"
    save_view(job.out / MAPS_DIR / f"{stem}.npz", depth, confidence, normal, images.color(view.name))
    preview(depth, job.out / PREVIEWS_DIR / f"{stem}.png")
    return DepthViewRecord(
        name=view.name,
        neighbours=[n.name for n in job.neighbours],
        overlapping=job.overlapping,
        map=f"{MAPS_DIR}/{stem}.npz",
        preview=f"{PREVIEWS_DIR}/{stem}.png",
        camera=scaled.to_json(),
        valid_fraction=round(valid_fraction, 4),
        usable=valid_fraction >= settings.min_valid_fraction,
    )


def _masked(
    result: tuple[np.ndarray, np.ndarray, np.ndarray, Camera], mask: np.ndarray | None, *, backend: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Camera]:
    """No depth outside the user's mask; the sweep's normals again from the masked depth (none from the background)."""
    depth, normal, confidence, scaled = result
    if mask is None:
        return result
    depth = np.where(mask, depth, 0).astype(np.float32)
    if backend == "cuda":
        normal = np.where(mask[..., None], normal, 0).astype(np.float32)
    else:
        normal = normals_from_depth(depth, scaled.k)
    return depth, normal, confidence, scaled


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
    view: RegisteredView,
    neighbours: list[RegisteredView],
    bounds: tuple[float, float] | None,
    images: _ImageCache,
    settings: ViewSettings,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Camera] | None:
    if not neighbours:
        log.warning("depth: %s has no neighbour view with enough shared points; skipped", view.name)
        return None
    if bounds is None:
        log.warning("depth: %s sees too few sparse points to bound its depth; skipped", view.name)
        return None
    ref = images.gray(view.name)
    scaled = view.camera.scaled(ref.shape[1], ref.shape[0])
    sources = []
    for neighbour in neighbours:
        gray = images.gray(neighbour.name)
        sources.append(SourceView(gray, neighbour.camera.scaled(gray.shape[1], gray.shape[0])))
    sweep = SweepSettings(
        planes=settings.planes,
        window=settings.window | 1,
        top_k=settings.top_k,
        coarse_factor=1 if settings.method == "sweep" else 2,
        refine_planes=settings.refine_planes,
        foreground_planes=settings.foreground_planes,
    )
    try:
        depth_t, conf_t = coarse_to_fine(ref, scaled, sources, near=bounds[0], far=bounds[1], settings=sweep)
    except torch.cuda.OutOfMemoryError as exc:
        raise StageError(
            "depth",
            f"out of GPU memory on {view.name}: lower depth.max_size or depth.planes, or --set depth.torch_device=cpu",
        ) from exc
    depth = depth_t.cpu().numpy()
    confidence = conf_t.cpu().numpy()
    depth[confidence < settings.min_confidence] = 0
    return depth, normals_from_depth(depth, scaled.k), confidence, scaled


def _colmap_view(
    workspace: Path, view: RegisteredView, images: _ImageCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Camera] | None:
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
    return depth, normal.astype(np.float32), confidence, view.camera.scaled(width, height)
