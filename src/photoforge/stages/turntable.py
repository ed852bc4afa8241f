"""Stage turntable: the textured asset on an orbit, as H.264 mp4, a poster and a contact sheet."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import Field

from photoforge.errors import StageError
from photoforge.io.images import read_rgb
from photoforge.io.video_encode import contact_sheet, write_mp4
from photoforge.render.turntable import Orbit, orbit_cameras, render_frames
from photoforge.splatting.rasterize import CpuRasterizerOverflow
from photoforge.splatting.render import load_splats, render_splats
from photoforge.stage import Progress, Stage, StageParams, StageResult, no_progress
from photoforge.stages.bake import ALBEDO_PNG
from photoforge.stages.mesh import load_transform
from photoforge.stages.uv import load_uv_mesh
from photoforge.store import ArtefactStore

STAGE = Stage("turntable", version="2", libraries=("open3d", "imageio-ffmpeg", "opencv-python-headless"))
VIDEO = "turntable.mp4"
SPLAT_VIDEO = "splat_turntable.mp4"
POSTER = "poster.png"
SHEET = "contact_sheet.png"
SHEET_TILES = 12


class TurntableParams(StageParams):
    frames: int = Field(120, ge=SHEET_TILES, description="frames in one full turn")
    fps: int = Field(30, ge=1, le=120, description="frames per second")
    width: int = Field(1280, ge=64, description="video width in px (even)")
    height: int = Field(720, ge=64, description="video height in px (even)")
    elevation_deg: float = Field(20.0, ge=-89, le=89, description="camera height above the horizon")
    fov_deg: float = Field(35.0, gt=5, lt=120, description="vertical field of view")
    background: list[int] = Field([32, 32, 36], description="background RGB")
    key_light: list[float] = Field([-0.5, -0.7, -0.5], description="direction to the key light, camera frame")
    ambient: float = Field(0.35, ge=0.0, le=1.0, description="ambient share of the lighting")
    quality: int = Field(7, ge=1, le=10, description="H.264 quality (imageio-ffmpeg scale, 10 best)")


def key_inputs(
    uv: StageResult, bake: StageResult, splat: StageResult | None = None, mesh: StageResult | None = None
) -> dict[str, Any]:
    inputs = {"uv": uv.key, "bake": bake.key}
    if splat is not None and mesh is not None:  # the splats too, on the same orbit (mesh: the asset frame)
        inputs |= {"splat": splat.key, "mesh": mesh.key}
    return inputs


def execute(
    store: ArtefactStore,
    uv: StageResult,
    bake: StageResult,
    params: TurntableParams,
    progress: Progress = no_progress,
    splat: StageResult | None = None,
    mesh: StageResult | None = None,
) -> StageResult:
    splats = (splat.dir, mesh.dir) if splat is not None and mesh is not None else None
    return STAGE.execute(
        store,
        params,
        key_inputs(uv, bake, splat, mesh),
        lambda out: run(uv.dir, bake.dir, out, params, progress, splats),
    )


def run(
    uv_dir: Path,
    bake_dir: Path,
    out: Path,
    params: TurntableParams,
    progress: Progress = no_progress,
    splats: tuple[Path, Path] | None = None,
) -> dict[str, Any]:
    """The textured mesh's turntable; with `splats` (splat dir, mesh dir) the splats' on the same orbit too."""
    mesh = load_uv_mesh(uv_dir)
    orbit = Orbit(
        params.frames, params.width // 2 * 2, params.height // 2 * 2, params.elevation_deg, params.fov_deg,
        tuple(params.background), tuple(params.key_light), params.ambient,
    )  # fmt: skip
    metrics = _mesh_turntable(mesh, bake_dir, orbit, out, params, progress)
    if splats is not None:
        try:
            metrics["splats"] = _splat_turntable(*splats, mesh[0], orbit, out, params, progress)
        except CpuRasterizerOverflow as exc:
            raise StageError(
                "turntable",
                f"the splats are too many to render on this machine's CPU ({exc}): run on the GPU pool, "
                "or lower turntable.width/height or splat.max_gaussians",
                splats[0],
            ) from exc
        metrics["summary"] += f"; splats: {metrics['splats']['summary']}"
    return metrics


def _splat_turntable(
    splat_dir: Path,
    mesh_dir: Path,
    vertices: np.ndarray,
    orbit: Orbit,
    out: Path,
    params: TurntableParams,
    progress: Progress,
) -> dict[str, Any]:
    """gsplat renders of the trained splats from the mesh turntable's cameras (mapped back to the SfM frame)."""
    width, height = orbit.width, orbit.height
    world_to_asset = load_transform(mesh_dir)
    splats = load_splats(splat_dir)
    background = tuple(c / 255.0 for c in params.background)
    started = time.perf_counter()

    def frames() -> Any:
        for i, (k, rotation, translation) in enumerate(orbit_cameras(vertices, orbit)):
            world_rotation, world_translation = camera_in_world(rotation, translation, world_to_asset)
            image = render_splats(splats, k, world_rotation, world_translation, width, height, background)
            progress(i + 1, params.frames, f"splat frame {i + 1}")
            yield image.rgb

    count = write_mp4(out / SPLAT_VIDEO, frames(), params.fps, width, height, params.quality)
    seconds = time.perf_counter() - started
    return {
        "video": SPLAT_VIDEO,
        "frames": count,
        "seconds": round(seconds, 2),
        "render_fps": round(count / seconds, 2),
        "summary": f"{count} frames in {seconds:.0f} s",
    }


def camera_in_world(
    rotation: np.ndarray, translation: np.ndarray, world_to_asset: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """An asset-frame camera as a world-frame one: x_cam = R (s Q x + p) + t, divided by s (same image)."""
    linear = world_to_asset[:3, :3]
    scale = float(np.cbrt(np.linalg.det(linear)))
    return rotation @ (linear / scale), (rotation @ world_to_asset[:3, 3] + translation) / scale


def _mesh_turntable(
    mesh: tuple[np.ndarray, np.ndarray, np.ndarray, int],
    bake_dir: Path,
    orbit: Orbit,
    out: Path,
    params: TurntableParams,
    progress: Progress,
) -> dict[str, Any]:
    width, height = orbit.width, orbit.height
    vertices, faces, uvs, _ = mesh
    texture = read_rgb(bake_dir / ALBEDO_PNG, "turntable", "baked texture")
    sheet_every = params.frames // SHEET_TILES
    tiles: list[np.ndarray] = []
    poster_index = params.frames // 8  # an eighth of a turn: a three-quarter view
    coverage: list[float] = []
    started = time.perf_counter()

    def frames() -> Any:
        for i, frame in enumerate(render_frames(vertices, faces, uvs[faces], texture, orbit)):
            coverage.append(float((frame != np.array(params.background, np.uint8)).any(axis=2).mean()))
            if i == poster_index:
                cv2.imwrite(str(out / POSTER), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            if i % sheet_every == 0 and len(tiles) < SHEET_TILES:
                tiles.append(frame)
            progress(i + 1, params.frames, f"frame {i + 1}")
            yield frame

    count = write_mp4(out / VIDEO, frames(), params.fps, width, height, params.quality)
    seconds = time.perf_counter() - started
    cv2.imwrite(str(out / SHEET), cv2.cvtColor(contact_sheet(tiles, 4, 320), cv2.COLOR_RGB2BGR))
    return {
        "frames": count,
        "fps": params.fps,
        "size": [width, height],
        "seconds": round(seconds, 2),
        "render_fps": round(count / seconds, 2),
        "object_coverage_min": round(min(coverage), 4),
        "object_coverage_mean": round(float(np.mean(coverage)), 4),
        "bytes": (out / VIDEO).stat().st_size,
        "summary": f"{count} frames {width}x{height} in {seconds:.0f} s ({count / seconds:.1f} fps)",
    }
