"""pycolmap glue: a feature database from ingest frames, matching, mapping, model metrics.

Only calls into pycolmap: the algorithms are COLMAP's. This module decides the options.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pycolmap

from photoforge.layout import Frame

log = logging.getLogger("photoforge")


@dataclass(frozen=True)
class CameraGroup:
    """Frames that share one COLMAP camera, with the prior it starts from."""

    name: str
    frames: tuple[str, ...]
    model: str  # COLMAP camera model name
    params: str  # comma-separated prior params, "" for COLMAP's default guess
    fixed: bool  # hold the intrinsics fixed during bundle adjustment


def quiet_colmap(verbose: bool = False) -> None:
    """COLMAP's glog lines on stderr only when asked: `verbose`, or photoforge's logger at DEBUG (--verbose).

    Otherwise COLMAP logs nothing below FATAL: photoforge reports what went wrong itself (a StageError),
    and glog's "I1121 ... feature_extraction.cc" lines, errors included, would break the one-line CLI.
    """
    verbose = verbose or log.isEnabledFor(logging.DEBUG)
    pycolmap.logging.minloglevel = int(pycolmap.logging.INFO if verbose else pycolmap.logging.FATAL)


def mask_folder(frames: list[Frame], *, ingest_dir: Path, out: Path) -> Path | None:
    """COLMAP's mask_path for these frames (`<frame name>.png` each), None when none has the user's mask.

    COLMAP cannot read a frame whose mask file is missing, so a frame without one gets an all-white mask.
    """
    if not any(f.mask for f in frames):
        return None
    for frame in frames:
        if not frame.frame:
            continue
        target = out / f"{frame.frame}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if frame.mask:
            shutil.copyfile(ingest_dir / frame.mask, target)
        else:
            cv2.imwrite(str(target), np.full((frame.height, frame.width), 255, np.uint8))
    return out


def extract(
    database: Path, frames_dir: Path, groups: list[CameraGroup], max_features: int, *, masks_dir: Path | None = None
) -> dict[str, int]:
    """SIFT features per camera group, each group its own camera. Returns frame -> camera id.

    With `masks_dir` (`<frame name>.png` for every frame, 0 = ignore: `mask_folder`), COLMAP drops the
    keypoints a frame's mask blacks out: the background matches nothing into the model.
    """
    options = pycolmap.FeatureExtractionOptions()
    options.sift.max_num_features = max_features
    # One extraction thread: with several, COLMAP numbers the images in the order their features finish,
    # so the same photos got other image ids, other RANSAC draws and another model (2 runs in 3 differed
    # on data/sample; test_poses::test_same_photos_give_the_same_model). Matching stays threaded.
    options.num_threads = 1
    for group in groups:
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = group.model
        reader.camera_params = group.params
        if masks_dir is not None:
            reader.mask_path = masks_dir
        pycolmap.extract_features(
            database,
            frames_dir,
            image_names=list(group.frames),
            camera_mode=pycolmap.CameraMode.SINGLE,
            reader_options=reader,
            extraction_options=options,
            device=pycolmap.Device.cpu,
        )
    with pycolmap.Database.open(database) as db:
        return {image.name: image.camera_id for image in db.read_all_images()}


# COLMAP's RANSAC and mapper draw random numbers: a fixed seed makes the same photos give the same model,
# so equal keys mean equal artefacts (and the dense and mesh stages below do not vary run to run).
# Equal to floating-point noise, not bit for bit: CI once got 3555 and 3552 points from the same photos in one
# process (tests/test_poses.py::test_same_photos_give_the_same_model says how close is close enough).
RANDOM_SEED = 0


def match(database: Path, matcher: str, sequential_overlap: int, vocab_tree_path: str | None) -> None:
    pycolmap.set_random_seed(RANDOM_SEED)
    device = pycolmap.Device.cpu
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = RANDOM_SEED
    if matcher == "exhaustive":
        pycolmap.match_exhaustive(database, verification_options=verification, device=device)
    elif matcher == "sequential":
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = sequential_overlap
        if vocab_tree_path:
            pairing.loop_detection = True
            pairing.vocab_tree_path = vocab_tree_path
        pycolmap.match_sequential(database, pairing_options=pairing, verification_options=verification, device=device)
    elif matcher == "vocab_tree":
        pairing = pycolmap.VocabTreePairingOptions()
        pairing.vocab_tree_path = vocab_tree_path or ""
        pycolmap.match_vocabtree(database, pairing_options=pairing, verification_options=verification, device=device)
    else:
        raise ValueError(f"unknown matcher {matcher!r}")


def database_counts(database: Path) -> dict[str, int]:
    """Images, keypoints and verified pairs: pairs whose two-view geometry kept inlier matches.

    COLMAP's num_verified_image_pairs counts every pair that went through verification, 0 inliers
    included (unrelated photos all "verified"), so it cannot tell a user whether the photos overlap.
    """
    with pycolmap.Database.open(database) as db:
        _, inliers = db.read_two_view_geometry_num_inliers()
        return {
            "images": db.num_images(),
            "keypoints": db.num_keypoints(),
            "verified_pairs": sum(1 for n in inliers if n > 0),
        }


def map_incremental(
    database: Path,
    frames_dir: Path,
    out: Path,
    fixed_camera_ids: set[int],
    all_fixed: bool,
    on_next_image: Callable[[], None],
) -> list[pycolmap.Reconstruction]:
    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = RANDOM_SEED
    # One thread: threaded bundle adjustment sums in a varying order, and the same photos once gave 3410
    # and once 3560 points (test_poses::test_same_photos_give_the_same_model, about 1 CI run in 3).
    options.num_threads = 1
    if fixed_camera_ids:
        options.constant_cameras = fixed_camera_ids
    if all_fixed:
        options.ba_refine_focal_length = False
        options.ba_refine_principal_point = False
        options.ba_refine_extra_params = False
        options.mapper.abs_pose_refine_focal_length = False
        options.mapper.abs_pose_refine_extra_params = False
    models = pycolmap.incremental_mapping(database, frames_dir, out, options, next_image_callback=on_next_image)
    return list(models.values())


def map_global(database: Path, frames_dir: Path, out: Path, all_fixed: bool) -> list[pycolmap.Reconstruction]:
    options = pycolmap.GlobalPipelineOptions()
    options.random_seed = RANDOM_SEED
    if all_fixed:
        options.mapper.bundle_adjustment.refine_focal_length = False
        options.mapper.bundle_adjustment.refine_principal_point = False
        options.mapper.bundle_adjustment.refine_extra_params = False
    models = pycolmap.global_mapping(database, frames_dir, out, options)
    return list(models.values())


def registered_names(model: pycolmap.Reconstruction) -> list[str]:
    return sorted(model.image(image_id).name for image_id in model.reg_image_ids())


def model_metrics(model: pycolmap.Reconstruction) -> dict[str, Any]:
    return {
        "registered": model.num_reg_images(),
        "points": model.num_points3D(),
        "cameras": model.num_cameras(),
        "mean_reprojection_error_px": round(float(model.compute_mean_reprojection_error()), 4),
        "mean_track_length": round(float(model.compute_mean_track_length()), 3),
        "mean_observations_per_image": round(float(model.compute_mean_observations_per_reg_image()), 1),
    }
