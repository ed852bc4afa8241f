"""Stage poses on real photos: registration, reprojection error, accuracy against ground truth."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pycolmap
import pytest
from conftest import SAMPLE, SAMPLE_GT, textured_rgb, write_jpeg

from photoforge.errors import StageError
from photoforge.layout import POSES_JSON, SPARSE_DIR, Frames
from photoforge.metrics import PosesMetrics
from photoforge.qa.pose_errors import pose_errors, read_strecha_dir
from photoforge.stage import StageResult, no_progress
from photoforge.stages import ingest, poses
from photoforge.stages.ingest import IngestInputs, IngestParams
from photoforge.stages.poses import PosesInputs, PosesParams


def _ingest(capture: Path, out: Path, max_size: int) -> StageResult:
    """Stage ingest's run into `out`, as the artefact poses reads."""
    out.mkdir()
    params = IngestParams(max_size=max_size)
    ingest.run(IngestInputs(capture=capture), out=out, params=params, progress=no_progress)
    return StageResult(stage="ingest", key="ingest-key", path=str(out), metrics={}, reused=False, seconds=0.0,
                       compute_seconds=0.0)  # fmt: skip


def _poses(frames: StageResult, out: Path, params: PosesParams) -> PosesMetrics:
    return poses.run(PosesInputs(ingest=frames), out=out, params=params, progress=no_progress)


def test_calibrated_photos_register_with_accurate_poses(sample_subset: Path, tmp_path: Path) -> None:
    frames = _ingest(sample_subset, tmp_path / "ingest", max_size=640)
    out = tmp_path / "poses"
    out.mkdir()
    metrics = _poses(frames, out, PosesParams(max_features=4096))
    assert metrics.registered == metrics.total == 6
    assert metrics.intrinsics == "fixed"
    assert metrics.mean_reprojection_error_px < 1.0
    assert metrics.points > 1000
    assert metrics.mean_track_length > 2.5
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
    assert json.loads((out / POSES_JSON).read_text())["registered"] == 6


def _table_digests(database: Path) -> dict[str, str]:
    """A digest per COLMAP table: where two runs part, these say which step did (features, matches, verification)."""
    tables = ("images", "keypoints", "descriptors", "matches", "two_view_geometries")
    with sqlite3.connect(database) as connection:
        rows = {table: connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in tables}
    return {table: hashlib.sha1(repr(rows[table]).encode()).hexdigest()[:8] for table in tables}


def test_same_photos_give_the_same_model(tmp_path: Path) -> None:
    """Seeded RANSAC and mapper, one thread where order matters: the same photos give the same model.

    Equal to floating-point noise, not bit for bit: CI once got 3555 and 3552 points in one process (0.08 %)
    where 80 matchings and 30 mappings here were identical. The bugs this guards against (image ids in the order
    extraction finished, threaded bundle adjustment) moved the model by 4 % of its points and more.
    """
    models, digests = [], []
    for run in ("a", "b"):
        frames = _ingest(SAMPLE, tmp_path / f"ingest-{run}", max_size=640)
        out = tmp_path / f"poses-{run}"
        out.mkdir()
        _poses(frames, out, PosesParams(max_features=4096))
        models.append(pycolmap.Reconstruction(str(out / SPARSE_DIR)))
        digests.append(_table_digests(out / "database.db"))
    first, second = models
    where = f"COLMAP tables per run: {digests[0]} / {digests[1]}"
    names = [{i: m.image(i).name for i in m.reg_image_ids()} for m in models]
    assert names[0] == names[1] and len(names[0]) == 11, where
    assert all(first.image(i).num_points2D() == second.image(i).num_points2D() for i in names[0]), where
    assert abs(first.num_points3D() - second.num_points3D()) <= 0.005 * first.num_points3D(), where
    centres = [np.array([m.image(i).projection_center() for i in sorted(names[0])]) for m in models]
    extent = np.ptp(centres[0], axis=0).max()
    assert np.abs(centres[0] - centres[1]).max() < 1e-4 * extent, where


def test_free_intrinsics_are_refined(sample_subset: Path, tmp_path: Path) -> None:
    frames = _ingest(sample_subset, tmp_path / "ingest", max_size=480)
    out = tmp_path / "poses"
    out.mkdir()
    metrics = _poses(frames, out, PosesParams(max_features=2048, refine_intrinsics="free"))
    assert metrics.intrinsics == "refined"
    assert metrics.registered == 6


def test_photos_without_overlap_fail_clearly(tmp_path: Path) -> None:
    capture = tmp_path / "cap"
    for seed in range(4):
        write_jpeg(capture / f"unrelated{seed}.jpg", textured_rgb(100 + seed))
    frames = _ingest(capture, tmp_path / "ingest", max_size=640)
    out = tmp_path / "poses"
    out.mkdir()
    with pytest.raises(StageError) as info:
        _poses(frames, out, PosesParams())
    assert info.value.stage == "poses"
    assert "overlap" in info.value.cause or "left out" in info.value.cause


def test_too_few_registered_frames_names_them(sample_subset: Path, tmp_path: Path) -> None:
    write_jpeg(sample_subset / "images" / "zz_stray1.jpg", textured_rgb(200))
    write_jpeg(sample_subset / "images" / "zz_stray2.jpg", textured_rgb(201))
    frames = _ingest(sample_subset, tmp_path / "ingest", max_size=480)
    out = tmp_path / "poses"
    out.mkdir()
    with pytest.raises(StageError, match=r"6/8 frames registered.*zz_stray1\.jpg, images/zz_stray2\.jpg"):
        _poses(frames, out, PosesParams(max_features=2048, min_registered=0.9))


def test_verified_pairs_count_only_pairs_with_inliers(sample_subset: Path, tmp_path: Path) -> None:
    """An unrelated photo of the same size: its 6 pairs are matched and verified with 0 inliers."""
    write_jpeg(sample_subset / "images" / "zz_stray.jpg", textured_rgb(200, width=1024, height=683))
    frames = _ingest(sample_subset, tmp_path / "ingest", max_size=480)
    out = tmp_path / "poses"
    out.mkdir()
    metrics = _poses(frames, out, PosesParams(max_features=2048, min_registered=0.5))
    with sqlite3.connect(out / "database.db") as db:
        images = db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        with_inliers = db.execute("SELECT COUNT(*) FROM two_view_geometries WHERE rows > 0").fetchone()[0]
        verified = db.execute("SELECT COUNT(*) FROM two_view_geometries").fetchone()[0]
    assert images == 7 and verified == 21  # every pair went through verification
    assert metrics.verified_pairs == with_inliers < images * (images - 1) // 2
    assert with_inliers >= 15  # the six sample photos all overlap
    assert metrics.left_out == ["images/zz_stray.jpg"]


def test_frames_of_another_size_get_their_own_camera(sample_subset: Path, tmp_path: Path) -> None:
    """COLMAP drops a frame whose size differs from its camera's: such a frame gets a camera of its own."""
    write_jpeg(sample_subset / "images" / "zz_other_size.jpg", textured_rgb(201))  # 640x480, not 3:2
    frames = Frames.read(_ingest(sample_subset, tmp_path / "ingest", max_size=480).dir).kept
    groups = poses.camera_groups(frames, PosesParams())
    assert sorted(len(g.frames) for g in groups) == [1, 6]
    assert {g.name for g in groups} == {"K.txt|480x320", "K.txt|480x360"}
    assert [g.frames for g in groups if len(g.frames) == 1] == [("images/zz_other_size.jpg",)]


QUIET_SCRIPT = """
import json, logging, sys
from pathlib import Path
from photoforge.errors import StageError
from photoforge.stage import StageResult, no_progress
from photoforge.stages import ingest, poses

if sys.argv[3] == "verbose":
    logging.getLogger("photoforge").setLevel(logging.DEBUG)  # what `photoforge run --verbose` does
results = {}
for name in sys.argv[1:3]:
    capture = Path(name)
    (capture.parent / "ingest").mkdir()
    ingest.run(ingest.IngestInputs(capture=capture), out=capture.parent / "ingest",
               params=ingest.IngestParams(max_size=480), progress=no_progress)
    frames = StageResult(stage="ingest", key="k", path=str(capture.parent / "ingest"), metrics={}, reused=False,
                         seconds=0.0, compute_seconds=0.0)
    (capture.parent / "poses").mkdir()
    try:
        results[capture.name] = poses.run(poses.PosesInputs(ingest=frames), out=capture.parent / "poses",
                                          params=poses.PosesParams(max_features=2048), progress=no_progress).registered
    except StageError as exc:
        results[capture.name] = exc.stage
print(json.dumps(results))
"""
GLOG_LINE = re.compile(r"^[IWEF]\d{8} ", re.MULTILINE)


def _poses_in_subprocess(sample_subset: Path, tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    """The poses stage on the sample photos (registers) and on unrelated photos (fails), in a fresh process."""
    unrelated = tmp_path / "b" / "unrelated"
    for seed in range(3):
        write_jpeg(unrelated / f"u{seed}.jpg", textured_rgb(300 + seed))
    sample = tmp_path / "a" / "sample"
    shutil.copytree(sample_subset, sample)
    return subprocess.run(
        [sys.executable, "-c", QUIET_SCRIPT, str(sample), str(unrelated), mode],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_colmap_logs_nothing_to_stderr_unless_verbose(sample_subset: Path, tmp_path: Path) -> None:
    """glog writes to fd 2 from C++: a subprocess sees all of it, the errors of a failed SfM included."""
    quiet = _poses_in_subprocess(sample_subset, tmp_path / "quiet", "quiet")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert json.loads(quiet.stdout) == {"sample": 6, "unrelated": "poses"}
    assert GLOG_LINE.findall(quiet.stderr) == [], quiet.stderr[:2000]
    verbose = _poses_in_subprocess(sample_subset, tmp_path / "verbose", "verbose")
    assert verbose.returncode == 0, verbose.stderr[-2000:]
    assert "feature_extraction.cc" in verbose.stderr and len(GLOG_LINE.findall(verbose.stderr)) > 10
