"""Stage poses on real photos: registration, reprojection error, accuracy against ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pycolmap
import pytest
from conftest import SAMPLE_GT, textured_rgb, write_jpeg

from photoforge.errors import StageError
from photoforge.evaluation import pose_errors, read_strecha_dir
from photoforge.stages import ingest, poses
from photoforge.stages.ingest import IngestParams
from photoforge.stages.poses import SPARSE_DIR, PosesParams


def _ingest(capture: Path, out: Path, max_size: int) -> Path:
    out.mkdir()
    ingest.run(capture, out, IngestParams(max_size=max_size))
    return out


def test_calibrated_photos_register_with_accurate_poses(sample_subset: Path, tmp_path: Path) -> None:
    frames = _ingest(sample_subset, tmp_path / "ingest", max_size=640)
    out = tmp_path / "poses"
    out.mkdir()
    metrics = poses.run(frames, out, PosesParams(max_features=4096))
    assert metrics["registered"] == metrics["total"] == 6
    assert metrics["intrinsics"] == "fixed"
    assert metrics["mean_reprojection_error_px"] < 1.0
    assert metrics["points"] > 1000
    assert metrics["mean_track_length"] > 2.5
    sparse = out / SPARSE_DIR
    assert {"cameras.bin", "images.bin", "points3D.bin"} <= {p.name for p in sparse.iterdir()}
    model = pycolmap.Reconstruction(str(sparse))
    assert model.num_reg_images() == 6
    camera = next(iter(model.cameras.values()))
    assert camera.model_name == "PINHOLE"
    errors = pose_errors(model, read_strecha_dir(SAMPLE_GT))
    assert errors.compared == 6
    assert errors.rotation_median_deg < 0.2
    assert errors.centre_median < 0.02  # metres, after a similarity alignment
    assert json.loads((out / "poses.json").read_text())["registered"] == 6


def test_free_intrinsics_are_refined(sample_subset: Path, tmp_path: Path) -> None:
    frames = _ingest(sample_subset, tmp_path / "ingest", max_size=480)
    out = tmp_path / "poses"
    out.mkdir()
    metrics = poses.run(frames, out, PosesParams(max_features=2048, refine_intrinsics="free"))
    assert metrics["intrinsics"] == "refined"
    assert metrics["registered"] == 6


def test_photos_without_overlap_fail_clearly(tmp_path: Path) -> None:
    capture = tmp_path / "cap"
    for seed in range(4):
        write_jpeg(capture / f"unrelated{seed}.jpg", textured_rgb(100 + seed))
    frames = _ingest(capture, tmp_path / "ingest", max_size=640)
    out = tmp_path / "poses"
    out.mkdir()
    with pytest.raises(StageError) as info:
        poses.run(frames, out, PosesParams())
    assert info.value.stage == "poses"
    assert "overlap" in info.value.cause or "left out" in info.value.cause


def test_too_few_registered_frames_names_them(sample_subset: Path, tmp_path: Path) -> None:
    write_jpeg(sample_subset / "images" / "zz_stray1.jpg", textured_rgb(200))
    write_jpeg(sample_subset / "images" / "zz_stray2.jpg", textured_rgb(201))
    frames = _ingest(sample_subset, tmp_path / "ingest", max_size=480)
    out = tmp_path / "poses"
    out.mkdir()
    with pytest.raises(StageError, match=r"6/8 frames registered.*zz_stray1\.jpg, images/zz_stray2\.jpg"):
        poses.run(frames, out, PosesParams(max_features=2048, min_registered=0.9))
