"""Stage poses: camera poses and a sparse model (COLMAP format) from the ingest frames.

A known calibration (K.txt, or poses.intrinsics) is the intrinsics prior and, unless the
preset says otherwise, held fixed; otherwise EXIF focal lengths seed COLMAP's estimate.
Features are extracted only inside the user's masks, where ingest found them.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from photoforge.camera.calibration import Intrinsics
from photoforge.diskspace import require_free
from photoforge.errors import StageError
from photoforge.layout import POSES_JSON, SPARSE_DIR, Frame, Frames
from photoforge.metrics import PosesMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult
from photoforge.store import write_json

if TYPE_CHECKING:
    from photoforge.camera.sfm import CameraGroup

log = logging.getLogger("photoforge")

# Bytes of COLMAP database per SIFT feature: 128 descriptor bytes, keypoint, matches, SQLite overhead and WAL.
_DATABASE_BYTES_PER_FEATURE = 400


class PosesParams(StageParams):
    matcher: Literal["auto", "exhaustive", "sequential", "vocab_tree"] = Field(
        "auto", description="auto: sequential for video, exhaustive up to exhaustive_max_images, else vocab_tree"
    )
    mapper: Literal["incremental", "global"] = Field("incremental", description="COLMAP incremental or GLOMAP")
    min_registered: float = Field(0.8, ge=0.0, le=1.0, description="fail when fewer frames than this register")
    max_features: int = Field(8192, ge=256, description="SIFT features per frame")
    intrinsics: list[float] | None = Field(
        None, description="fx,fy,cx,cy of the source photos in px: a known calibration (overrides K.txt)"
    )
    refine_intrinsics: Literal["auto", "fixed", "free"] = Field(
        "auto", description="auto holds a known calibration fixed and refines EXIF or guessed ones"
    )
    exhaustive_max_images: int = Field(200, ge=2, description="largest set matched exhaustively by auto")
    sequential_overlap: int = Field(15, ge=1, description="neighbours matched per video frame")
    vocab_tree_path: str | None = Field(None, description="a COLMAP vocabulary tree file for large sets")
    verbose: bool = Field(False, description="let COLMAP log to the console")

    @field_validator("intrinsics")
    @classmethod
    def _four_values(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) != 4 or value[0] <= 0 or value[1] <= 0):
            raise ValueError("give four numbers fx,fy,cx,cy with fx, fy > 0")
        return value


class PosesInputs(StageInputs):
    ingest: StageResult


def choose_matcher(params: PosesParams, frames: list[Frame]) -> str:
    if params.matcher != "auto":
        return params.matcher
    if frames and all(f.kind == "video" for f in frames):
        return "sequential"
    if len(frames) <= params.exhaustive_max_images:
        return "exhaustive"
    if params.vocab_tree_path:
        return "vocab_tree"
    log.warning(
        "poses: %d frames matched exhaustively (quadratic time): set poses.vocab_tree_path to a COLMAP "
        "vocabulary tree to match large sets faster",
        len(frames),
    )
    return "exhaustive"


def camera_groups(frames: list[Frame], params: PosesParams) -> list[CameraGroup]:
    """One camera per group of frames that share a camera and a size; a known calibration as PINHOLE.

    The size is part of the group: COLMAP's single-camera mode drops, with only a log line, a frame whose
    size differs from its camera's (a K.txt capture with one photo of another size lost that photo).
    """
    from photoforge.camera.sfm import CameraGroup

    by_camera: dict[tuple[str, int, int], list[Frame]] = {}
    for frame in frames:
        by_camera.setdefault((frame.camera, frame.width, frame.height), []).append(frame)
    sizes_per_camera: dict[str, int] = {}
    for camera, _, _ in by_camera:
        sizes_per_camera[camera] = sizes_per_camera.get(camera, 0) + 1
    groups = []
    for (camera, width, height), members in by_camera.items():
        name = camera if sizes_per_camera[camera] == 1 else f"{camera}|{width}x{height}"
        first = members[0]
        prior = _prior(first, params)
        if prior is not None and prior.source in ("K.txt", "preset"):
            model = "PINHOLE"
            values = [prior.fx, prior.fy, prior.cx, prior.cy]
            fixed = params.refine_intrinsics != "free"
        elif prior is not None:
            model = "SIMPLE_RADIAL"
            values = [(prior.fx + prior.fy) / 2, prior.cx, prior.cy, 0.0]
            fixed = params.refine_intrinsics == "fixed"
        else:
            model, values, fixed = "SIMPLE_RADIAL", [], False
        params_text = ",".join(f"{v:.6f}" for v in values)
        groups.append(CameraGroup(name, tuple(f.frame for f in members if f.frame), model, params_text, fixed))
    return groups


def _prior(frame: Frame, params: PosesParams) -> Intrinsics | None:
    if params.intrinsics is not None and frame.kind == "photo":
        fx, fy, cx, cy = params.intrinsics
        source = Intrinsics(fx, fy, cx, cy, frame.source_width, frame.source_height, "preset")
        return source.scaled(frame.width, frame.height)
    if frame.intrinsics:
        return Intrinsics(**frame.intrinsics)
    return None


def run(inputs: PosesInputs, *, out: Path, params: PosesParams, progress: Progress) -> PosesMetrics:
    from photoforge.camera import sfm  # pycolmap loads when the stage runs

    sfm.quiet_colmap(params.verbose)
    ingest = Frames.read(inputs.ingest.dir)
    frames = ingest.kept
    frames_dir = ingest.images
    names = [f.frame for f in frames if f.frame]
    if len(frames) < 2:
        raise StageError("poses", f"need at least 2 frames for structure from motion, got {len(frames)}", frames_dir)
    matcher = choose_matcher(params, frames)
    if matcher == "vocab_tree" and not params.vocab_tree_path:
        raise StageError("poses", "matcher vocab_tree needs poses.vocab_tree_path (a COLMAP vocabulary tree file)")
    groups = camera_groups(frames, params)

    database = out / "database.db"
    # COLMAP aborts the process when its database hits a full disk: check first (keypoints, descriptors, matches).
    require_free("poses", out, needed_bytes=len(frames) * params.max_features * _DATABASE_BYTES_PER_FEATURE)
    progress(0, 3, f"extracting SIFT features from {len(frames)} frames")
    masks_dir = sfm.mask_folder(frames, ingest_dir=ingest.dir, out=out / "masks")  # the user's masks, if any
    camera_of = sfm.extract(database, frames_dir, groups, params.max_features, masks_dir=masks_dir)
    if masks_dir is not None:
        shutil.rmtree(masks_dir)
    unread = [name for name in names if name not in camera_of]
    if unread:
        log.warning("poses: COLMAP could not read %d frame(s), left out: %s", len(unread), ", ".join(unread))
    counts = sfm.database_counts(database)
    progress(1, 3, f"{counts['keypoints']} keypoints; matching ({matcher})")
    sfm.match(database, matcher, params.sequential_overlap, params.vocab_tree_path)
    counts = sfm.database_counts(database)
    progress(2, 3, f"{counts['verified_pairs']} verified pairs; mapping ({params.mapper})")

    fixed_ids = {camera_of[g.frames[0]] for g in groups if g.fixed and g.frames[0] in camera_of}
    all_fixed = bool(groups) and all(g.fixed for g in groups)
    models_dir = out / "models"
    models_dir.mkdir()
    registered_so_far = [2]  # the initial pair registers before the first callback

    def on_next_image() -> None:
        registered_so_far[0] += 1
        progress(registered_so_far[0], len(frames), "registering frames")

    if params.mapper == "incremental":
        models = sfm.map_incremental(database, frames_dir, models_dir, fixed_ids, all_fixed, on_next_image)
    else:
        models = sfm.map_global(database, frames_dir, models_dir, all_fixed)
    shutil.rmtree(models_dir)
    if not models:
        raise StageError(
            "poses",
            f"structure from motion built no model from {len(frames)} frames "
            f"({counts['verified_pairs']} verified image pairs): the photos may not overlap enough",
            frames_dir,
        )
    model = max(models, key=lambda m: m.num_reg_images())
    registered = sfm.registered_names(model)
    left_out = sorted(set(names) - set(registered))
    fraction = len(registered) / len(names)
    if fraction < params.min_registered:
        raise StageError(
            "poses",
            f"only {len(registered)}/{len(names)} frames registered ({fraction:.0%} < poses.min_registered "
            f"{params.min_registered:.0%}); left out: {', '.join(left_out)}",
            frames_dir,
        )
    sparse = out / SPARSE_DIR
    sparse.mkdir()
    model.write(sparse)
    found = sfm.model_metrics(model)
    metrics = PosesMetrics(
        **found,
        total=len(names),
        registered_fraction=round(fraction, 4),
        models=len(models),
        matcher=matcher,
        mapper=params.mapper,
        keypoints=counts["keypoints"],
        verified_pairs=counts["verified_pairs"],
        intrinsics="fixed" if all_fixed else ("partly fixed" if fixed_ids else "refined"),
        left_out=left_out,
        summary=(
            f"{found['registered']}/{len(names)} registered, {found['points']} points, "
            f"reproj {found['mean_reprojection_error_px']:.2f}px"
        ),
    )
    write_json(out / POSES_JSON, metrics.as_manifest())
    progress(3, 3, metrics.summary)
    return metrics


STAGE = Stage("poses", inputs=PosesInputs, params=PosesParams, metrics=PosesMetrics, run=run)
