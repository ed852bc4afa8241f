"""Stage ingest on synthetic photos: orientation, priors, blur and duplicate rejection, bad files."""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SAMPLE, textured_rgb, write_jpeg
from PIL import Image

from photoforge.errors import StageError
from photoforge.layout import FRAMES_DIR, FRAMES_JSON
from photoforge.stage import StageResult, no_progress
from photoforge.stages import ingest
from photoforge.stages.ingest import IngestInputs, IngestParams


def _run(capture: Path, out: Path, **params: object) -> tuple[dict, dict[str, dict]]:
    """The stage's run on `capture` into `out`: its metrics as the manifest records them, records by source."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = ingest.run(IngestInputs(capture=capture), out=out, params=IngestParams(**params), progress=no_progress)
    records = json.loads((out / FRAMES_JSON).read_text())["frames"]
    return metrics.as_manifest(), {r["source"]: r for r in records}


def test_exif_orientation_is_applied_and_focal_prior_kept(tmp_path: Path) -> None:
    rgb = textured_rgb(1, 640, 480)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F], exif[0x0110] = "Acme", "Cam 1"
    exif.get_ifd(0x8769)[0xA405] = 28  # 35 mm-equivalent focal length
    write_jpeg(tmp_path / "cap" / "a.jpg", rgb, exif)
    for seed in (2, 3):
        write_jpeg(tmp_path / "cap" / f"b{seed}.jpg", textured_rgb(seed))
    _, records = _run(tmp_path / "cap", tmp_path / "out", max_size=320)
    rec = records["a.jpg"]
    assert (rec["source_width"], rec["source_height"]) == (480, 640)
    assert (rec["width"], rec["height"]) == (240, 320)
    frame = np.asarray(Image.open(tmp_path / "out" / FRAMES_DIR / rec["frame"]))
    assert frame.shape == (320, 240, 3)
    expected = cv2.resize(np.rot90(rgb, k=-1), (240, 320), interpolation=cv2.INTER_AREA)
    assert np.abs(frame.astype(float) - expected).mean() < 6  # JPEG noise only
    focal = 28 / math.hypot(36, 24) * math.hypot(480, 640) * 0.5
    assert rec["intrinsics"]["fx"] == pytest.approx(focal, rel=1e-6)
    assert rec["intrinsics"]["source"] == "exif"
    assert rec["camera"].startswith("Acme Cam 1")


def test_k_txt_is_the_prior_scaled_to_the_working_size(tmp_path: Path) -> None:
    capture = tmp_path / "cap"
    shutil.copytree(SAMPLE, capture)
    _, records = _run(capture, tmp_path / "out", max_size=512)
    k = np.loadtxt(SAMPLE / "K.txt")
    rec = records["images/0000.jpg"]
    scale = rec["width"] / rec["source_width"]
    assert rec["intrinsics"]["source"] == "K.txt"
    assert rec["intrinsics"]["fx"] == pytest.approx(k[0, 0] * scale)
    assert rec["intrinsics"]["cy"] == pytest.approx(k[1, 2] * rec["height"] / rec["source_height"])


def test_blurred_and_duplicate_photos_are_rejected_with_reasons(tmp_path: Path) -> None:
    capture = tmp_path / "cap"
    for seed in range(5):
        write_jpeg(capture / f"sharp{seed}.jpg", textured_rgb(seed))
    write_jpeg(capture / "blurred.jpg", cv2.GaussianBlur(textured_rgb(10), (0, 0), 6))
    write_jpeg(capture / "again.jpg", textured_rgb(3))  # the same shot as sharp3
    metrics, records = _run(capture, tmp_path / "out")
    assert records["blurred.jpg"]["kept"] is False
    assert records["blurred.jpg"]["reason"].startswith("blurred")
    duplicates = [r for r in (records["again.jpg"], records["sharp3.jpg"]) if not r["kept"]]
    assert len(duplicates) == 1 and duplicates[0]["reason"].startswith("near-duplicate")
    assert metrics["frames_kept"] == 5
    assert metrics["rejected_blurred"] == 1 and metrics["rejected_duplicate"] == 1
    kept_files = sorted(p.name for p in (tmp_path / "out" / FRAMES_DIR).iterdir())
    assert len(kept_files) == 5 and "blurred.jpg" not in kept_files


def test_real_photos_are_all_kept(tmp_path: Path) -> None:
    metrics, _ = _run(SAMPLE, tmp_path / "out", max_size=400)
    assert metrics["frames_kept"] == 11


def test_nested_folders_and_extension_case(tmp_path: Path) -> None:
    capture = tmp_path / "cap"
    write_jpeg(capture / "a" / "ONE.JPG", textured_rgb(1))
    (capture / "b" / "deep").mkdir(parents=True)
    Image.fromarray(textured_rgb(2)).save(capture / "b" / "two.PnG")
    Image.fromarray(textured_rgb(3)).save(capture / "b" / "deep" / "three.TIFF")
    _, records = _run(capture, tmp_path / "out")
    assert set(records) == {"a/ONE.JPG", "b/two.PnG", "b/deep/three.TIFF"}
    assert (tmp_path / "out" / FRAMES_DIR / "b" / "deep" / "three.TIFF.jpg").is_file()


def test_non_images_are_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    capture = tmp_path / "cap"
    for seed in range(3):
        write_jpeg(capture / f"p{seed}.jpg", textured_rgb(seed))
    (capture / "notes.txt").write_text("shot on a cloudy day")
    (capture / "sub").mkdir()
    (capture / "sub" / "data.bin").write_bytes(b"\x00\x01")
    with caplog.at_level(logging.WARNING, logger="photoforge"):
        metrics, _ = _run(capture, tmp_path / "out")
    assert metrics["skipped_files"] == 2 and metrics["frames_kept"] == 3
    assert "notes.txt" in caplog.text and "sub/data.bin" in caplog.text


@pytest.mark.parametrize("damage", ["zero-byte", "truncated"])
def test_corrupt_photo_fails_naming_the_file(tmp_path: Path, damage: str) -> None:
    capture = tmp_path / "cap"
    for seed in range(3):
        write_jpeg(capture / f"p{seed}.jpg", textured_rgb(seed))
    bad = capture / "bad.jpg"
    if damage == "zero-byte":
        bad.write_bytes(b"")
    else:
        data = (capture / "p0.jpg").read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(StageError) as info:
        _run(capture, tmp_path / "out")
    assert info.value.stage == "ingest"
    assert info.value.path == str(bad)
    assert ("empty" if damage == "zero-byte" else "truncated") in info.value.cause
    _, records = _run(capture, tmp_path / "out2", on_corrupt="skip")
    assert records["bad.jpg"]["kept"] is False and records["bad.jpg"]["reason"].startswith("corrupt")


def _missing(root: Path) -> Path:
    return root / "missing"


def _empty(root: Path) -> Path:
    (root / "empty").mkdir()
    return root / "empty"


def _text_only(root: Path) -> Path:
    (root / "txt").mkdir()
    (root / "txt" / "a.txt").write_text("x")
    return root / "txt"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [(_missing, "no such file or folder"), (_empty, "empty"), (_text_only, "no supported files")],
)
def test_unusable_capture_folder(tmp_path: Path, make: Callable[[Path], Path], fragment: str) -> None:
    capture = make(tmp_path)
    with pytest.raises(StageError, match=fragment) as info:
        _run(capture, tmp_path / "out")
    assert info.value.stage == "ingest" and info.value.path == str(capture)


def test_corrupt_photo_error_says_how_to_skip(tmp_path: Path) -> None:
    capture = tmp_path / "cap"
    for seed in range(3):
        write_jpeg(capture / f"p{seed}.jpg", textured_rgb(seed))
    (capture / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    with pytest.raises(StageError) as info:
        _run(capture, tmp_path / "out")
    assert info.value.path == str(capture / "bad.png")
    assert "--set ingest.on_corrupt=skip" in info.value.cause


def test_blur_rejections_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    capture = tmp_path / "cap"
    for seed in range(4):
        write_jpeg(capture / f"sharp{seed}.jpg", textured_rgb(seed))
    write_jpeg(capture / "soft.jpg", cv2.GaussianBlur(textured_rgb(10), (0, 0), 6))
    with caplog.at_level(logging.WARNING, logger="photoforge"):
        metrics, _ = _run(capture, tmp_path / "out")
    assert metrics["rejected_blurred"] == 1
    warnings = [r.getMessage() for r in caplog.records if "blurred" in r.getMessage()]
    assert len(warnings) == 1 and "1 frame(s)" in warnings[0] and "soft.jpg" in warnings[0]


def _distinct_photos(count: int) -> list[np.ndarray]:
    return [textured_rgb(20 + i, 320, 240) for i in range(count)]


def test_colliding_names_give_distinct_frames_from_the_right_sources(tmp_path: Path) -> None:
    """X.png and X.png.jpg both used to become X.png.jpg: one photo overwrote the other."""
    capture = tmp_path / "cap"
    photos = dict(zip(["X.png", "X.png.jpg", "sub/a.jpg", "SUB/A.JPG", "Sub/a.jpg"], _distinct_photos(5), strict=True))
    for name, rgb in photos.items():
        path = capture / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(path, format="PNG" if name.endswith(".png") else "JPEG", quality=95)
    _, records = _run(capture, tmp_path / "out", duplicate_similarity=1.0)
    frames = [r["frame"] for r in records.values()]
    assert len({f.casefold() for f in frames}) == len(photos) == len(records)
    assert records["X.png.jpg"]["frame"] == "X.png.jpg"  # a JPEG keeps its own name
    assert records["X.png"]["frame"] == "X.png~2.jpg"
    for source in photos:
        frame = np.asarray(Image.open(tmp_path / "out" / FRAMES_DIR / records[source]["frame"]))
        errors = {other: np.abs(frame.astype(float) - img).mean() for other, img in photos.items()}
        assert min(errors, key=errors.__getitem__) == source and errors[source] < 12  # JPEG noise (twice)


def test_frame_names_are_unique_and_deterministic() -> None:
    from photoforge.io.frame_names import assign_frame_names

    photos = ["X.png", "X.png.jpg", "X.png~2.jpg", "a/b.jpg", "A/B.JPG", "a.jpg.png", "clip.mp4/000003.jpg"]
    videos = ["Clip.mp4", "v/x.mov"]
    names = assign_frame_names(photos, videos)
    assert names == assign_frame_names(photos, videos)
    assert names.photos["X.png.jpg"] == "X.png.jpg" and names.photos["X.png~2.jpg"] == "X.png~2.jpg"
    assert names.photos["X.png"] == "X.png~3.jpg"
    assert names.photos["a/b.jpg"] == "a/b.jpg" and names.photos["A/B.JPG"] == "A/B~2.JPG"
    assert names.videos == {"Clip.mp4": "Clip.mp4~2", "v/x.mov": "v/x.mov"}  # clip.mp4/ holds a photo
    taken = [n.casefold() for n in names.photos.values()] + [f"{d}/".casefold() for d in names.videos.values()]
    assert len(set(taken)) == len(taken)
    for name in taken:  # no frame lies in another's place or folder
        assert not any(other != name and other.startswith(name.rstrip("/") + "/") for other in taken)
    # a folder named like a photo's frame: that frame cannot be a file and a folder at once
    nested = assign_frame_names(["a.png", "a.png.jpg/b.jpg"], [])
    assert nested.photos == {"a.png": "a.png~2.jpg", "a.png.jpg/b.jpg": "a.png.jpg/b.jpg"}


def test_colliding_real_photos_go_through_poses(sample_subset: Path, tmp_path: Path) -> None:
    """The same clash on real photos used to abort COLMAP (SIGABRT: duplicate image name)."""
    from photoforge.stages import poses
    from photoforge.stages.poses import PosesInputs, PosesParams

    images = sample_subset / "images"
    first, second = sorted(images.glob("*.jpg"))[:2]
    Image.open(first).save(images / "X.png")
    second.rename(images / "X.png.jpg")
    first.unlink()
    _, records = _run(sample_subset, tmp_path / "ingest", max_size=480)
    assert records["images/X.png"]["frame"] != records["images/X.png.jpg"]["frame"]
    assert len({r["frame"] for r in records.values()}) == 6
    out = tmp_path / "poses"
    out.mkdir()
    frames = StageResult(stage="ingest", key="ingest-key", path=str(tmp_path / "ingest"), metrics={}, reused=False,
                         seconds=0.0, compute_seconds=0.0)  # fmt: skip
    metrics = poses.run(
        PosesInputs(ingest=frames), out=out, params=PosesParams(max_features=2048), progress=no_progress
    )
    assert metrics.registered == metrics.total == 6
