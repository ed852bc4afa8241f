"""The turntable's videos: the textured mesh on an orbit as H.264 mp4 with a poster and a contact
sheet, and the trained splats from the same cameras (photoforge.render.turntable makes the frames)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from photoforge.camera.model import camera_in_world
from photoforge.io.video_encode import contact_sheet, write_mp4
from photoforge.render.turntable import Orbit, orbit_cameras, render_frames
from photoforge.stage import Progress


@dataclass(frozen=True)
class Encoded:
    """A video written: its frames, and the seconds rendering and encoding them took."""

    frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


@dataclass(frozen=True)
class MeshVideo(Encoded):
    coverage: list[float]  # the share of each frame the object covers
    heights: list[float]  # the share of each frame's height the object spans (the framing, measured)

    @property
    def coverage_mean(self) -> float:
        return float(np.mean(self.coverage))


def object_mask(frame: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The pixels of a rendered frame that are not the background."""
    return (frame != background).any(axis=2)


def height_share(mask: np.ndarray) -> float:
    """The share of the frame's height between the object's top and bottom pixel rows (0: no object)."""
    rows = np.flatnonzero(mask.any(axis=1))
    return float(rows[-1] - rows[0] + 1) / mask.shape[0] if len(rows) else 0.0


@dataclass(frozen=True)
class VideoFiles:
    """Where the mesh turntable goes: the video, its poster (a three-quarter view) and its contact sheet."""

    video: Path
    poster: Path
    sheet: Path


def mesh_turntable(
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    texture: np.ndarray,
    orbit: Orbit,
    files: VideoFiles,
    *,
    fps: int,
    quality: int,
    tiles: int,
    progress: Progress,
) -> MeshVideo:
    """The textured mesh's orbit (uvs per vertex, v down from the top); `tiles` frames on the contact sheet."""
    sheet_every = orbit.frames // tiles
    sheet: list[np.ndarray] = []
    poster_index = orbit.frames // 8  # an eighth of a turn: a three-quarter view
    background = np.array(orbit.background, np.uint8)
    coverage: list[float] = []
    heights: list[float] = []
    started = time.perf_counter()

    def frames() -> Iterator[np.ndarray]:
        for i, frame in enumerate(render_frames(vertices, faces, uvs[faces], texture, orbit)):
            mask = object_mask(frame, background)
            coverage.append(float(mask.mean()))
            heights.append(height_share(mask))
            if i == poster_index:
                cv2.imwrite(str(files.poster), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            if i % sheet_every == 0 and len(sheet) < tiles:
                sheet.append(frame)
            progress(i + 1, orbit.frames, f"frame {i + 1}")
            yield frame

    count = write_mp4(files.video, frames(), fps, orbit.width, orbit.height, quality)
    seconds = time.perf_counter() - started
    cv2.imwrite(str(files.sheet), cv2.cvtColor(contact_sheet(sheet, 4, 320), cv2.COLOR_RGB2BGR))
    return MeshVideo(count, seconds, coverage, heights)


def splat_turntable(
    splat_dir: Path,
    world_to_asset: np.ndarray,
    vertices: np.ndarray,
    orbit: Orbit,
    video: Path,
    *,
    fps: int,
    quality: int,
    progress: Progress,
) -> Encoded:
    """gsplat renders of the trained splats from the mesh turntable's cameras (mapped back to the SfM frame).

    Raises splatting.rasterize.CpuRasterizerOverflow when the splats are too many for the CPU rasterizer.
    """
    from photoforge.splatting.render import load_splats, render_splats  # torch: only when there are splats

    splats = load_splats(splat_dir)
    red, green, blue = orbit.background
    background = (red / 255.0, green / 255.0, blue / 255.0)
    started = time.perf_counter()

    def frames() -> Iterator[np.ndarray]:
        for i, camera in enumerate(orbit_cameras(vertices, orbit)):
            image = render_splats(splats, camera_in_world(camera, world_to_asset), background)
            progress(i + 1, orbit.frames, f"splat frame {i + 1}")
            yield image.rgb

    count = write_mp4(video, frames(), fps, orbit.width, orbit.height, quality)
    return Encoded(count, time.perf_counter() - started)
