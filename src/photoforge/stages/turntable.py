"""Stage turntable: the textured asset on an orbit, as H.264 mp4, a poster and a contact sheet."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Self

from pydantic import Field

from photoforge.errors import StageError
from photoforge.layout import ALBEDO_PNG, POSTER, SHEET, SPLAT_VIDEO, VIDEO, UVMesh, world_to_asset
from photoforge.metrics import SplatTurntableMetrics, TurntableMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult

if TYPE_CHECKING:
    import numpy as np

    from photoforge.render.turntable import Orbit

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


class TurntableInputs(StageInputs):
    uv: StageResult
    bake: StageResult
    splat: StageResult | None = None  # with mesh (its asset frame): the splats too, on the same orbit
    mesh: StageResult | None = None

    def used(self, params: TurntableParams) -> Self:
        """The splats are rendered only with both splat and mesh: otherwise neither enters the key."""
        if self.splat is None or self.mesh is None:
            return self.model_copy(update={"splat": None, "mesh": None})
        return self


def run(inputs: TurntableInputs, *, out: Path, params: TurntableParams, progress: Progress) -> TurntableMetrics:
    """The textured mesh's turntable; with the splats (and the mesh's asset frame) theirs on the same orbit too."""
    from photoforge.io.images import read_rgb  # cv2, open3d: when the stage runs
    from photoforge.render.turntable import Orbit
    from photoforge.render.turntable_video import VideoFiles, mesh_turntable

    mesh = UVMesh.read(inputs.uv.dir)
    orbit = Orbit(
        params.frames, params.width // 2 * 2, params.height // 2 * 2, params.elevation_deg, params.fov_deg,
        tuple(params.background), tuple(params.key_light), params.ambient,
    )  # fmt: skip
    texture = read_rgb(inputs.bake.dir / ALBEDO_PNG, "turntable", "baked texture")
    video = mesh_turntable(
        mesh.vertices, mesh.faces, mesh.uvs, texture, orbit, VideoFiles(out / VIDEO, out / POSTER, out / SHEET),
        fps=params.fps, quality=params.quality, tiles=SHEET_TILES, progress=progress,
    )  # fmt: skip
    width, height = orbit.width, orbit.height
    splats = None
    if inputs.splat is not None and inputs.mesh is not None:
        splats = _splat_video(inputs.splat, inputs.mesh, mesh.vertices, orbit, out, params, progress)
    summary = (
        f"{video.frames} frames {width}x{height} in {video.seconds:.0f} s ({video.fps:.1f} fps), "
        f"the object {min(video.heights):.0%}-{max(video.heights):.0%} of the frame height"
    )
    return TurntableMetrics(
        frames=video.frames,
        fps=params.fps,
        size=[width, height],
        seconds=round(video.seconds, 2),
        render_fps=round(video.fps, 2),
        object_coverage_min=round(min(video.coverage), 4),
        object_coverage_mean=round(video.coverage_mean, 4),
        object_height_min=round(min(video.heights), 4),
        object_height_max=round(max(video.heights), 4),
        bytes=(out / VIDEO).stat().st_size,
        splats=splats,
        summary=summary if splats is None else f"{summary}; splats: {splats.summary}",
    )


def _splat_video(
    splat: StageResult,
    mesh: StageResult,
    vertices: np.ndarray,
    orbit: Orbit,
    out: Path,
    params: TurntableParams,
    progress: Progress,
) -> SplatTurntableMetrics:
    """The splats from the mesh turntable's cameras (the mesh artefact maps them back to the SfM frame)."""
    from photoforge.render.turntable_video import splat_turntable  # torch, gsplat: only with splats
    from photoforge.splatting.rasterize import CpuRasterizerOverflow

    try:
        video = splat_turntable(
            splat.dir, world_to_asset(mesh.dir), vertices, orbit, out / SPLAT_VIDEO,
            fps=params.fps, quality=params.quality, progress=progress,
        )  # fmt: skip
    except CpuRasterizerOverflow as exc:
        raise StageError(
            "turntable",
            f"the splats are too many to render on this machine's CPU ({exc}): run on the GPU pool, "
            "or lower turntable.width/height or splat.max_gaussians",
            splat.dir,
        ) from exc
    return SplatTurntableMetrics(
        video=SPLAT_VIDEO,
        frames=video.frames,
        seconds=round(video.seconds, 2),
        render_fps=round(video.fps, 2),
        summary=f"{video.frames} frames in {video.seconds:.0f} s",
    )


STAGE = Stage("turntable", inputs=TurntableInputs, params=TurntableParams, metrics=TurntableMetrics, run=run)
