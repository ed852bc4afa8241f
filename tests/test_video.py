"""Video ingest: sharp frames spread over the clip, not every Nth; unreadable videos fail clearly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from conftest import textured_rgb, write_jpeg
from PIL import Image

from photoforge.errors import StageError
from photoforge.layout import FRAMES_DIR, FRAMES_JSON
from photoforge.metrics import IngestMetrics
from photoforge.stage import no_progress
from photoforge.stages import ingest
from photoforge.stages.ingest import IngestInputs, IngestParams

FPS = 10
FRAMES = 60
BLURRED = {i for i in range(FRAMES) if i % 3 != 1}  # two of every three frames are motion-blurred


def _write_pan_video(path: Path) -> None:
    """A camera panning over a texture; most frames blurred, every third one sharp."""
    panorama = textured_rgb(7, 1200, 240)
    writer = imageio_ffmpeg.write_frames(str(path), (320, 240), fps=FPS, quality=9, macro_block_size=16)
    writer.send(None)
    for i in range(FRAMES):
        frame = np.ascontiguousarray(panorama[:, i * 14 : i * 14 + 320])
        if i in BLURRED:
            frame = cv2.blur(frame, (15, 1))
        writer.send(frame)
    writer.close()


def _ingest(capture: Path, out: Path, params: IngestParams) -> IngestMetrics:
    return ingest.run(IngestInputs(capture=capture), out=out, params=params, progress=no_progress)


def test_video_frames_are_sharp_and_spread(tmp_path: Path) -> None:
    capture = tmp_path / "cap"
    capture.mkdir()
    _write_pan_video(capture / "clip.MP4")
    out = tmp_path / "out"
    out.mkdir()
    metrics = _ingest(capture, out, IngestParams(video_frames=10, duplicate_similarity=0.9999))
    records = [r for r in json.loads((out / FRAMES_JSON).read_text())["frames"] if r["kept"]]
    indices = sorted(round(r["time"] * FPS) for r in records)
    assert metrics.videos == 1
    assert len(records) == 10
    assert not set(indices) & BLURRED, f"picked blurred frames {sorted(set(indices) & BLURRED)}"
    windows = {i * 10 // FRAMES for i in indices}
    assert windows == set(range(10)), "one pick per tenth of the clip"
    assert all(r["camera"] == "video:clip.MP4" and r["kind"] == "video" for r in records)


def test_unreadable_video_fails_naming_the_file(tmp_path: Path) -> None:
    capture = tmp_path / "cap"
    capture.mkdir()
    bad = capture / "broken.mov"
    bad.write_bytes(b"this is not a video" * 50)
    with pytest.raises(StageError, match="unreadable video") as info:
        _ingest(capture, tmp_path, IngestParams())
    assert info.value.stage == "ingest" and info.value.path == str(bad)
    assert "--set ingest.on_corrupt=skip" in info.value.cause


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_video_is_skipped_with_a_warning_under_on_corrupt_skip(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    capture = tmp_path / "cap"
    capture.mkdir()
    for seed in range(3):
        write_jpeg(capture / f"p{seed}.jpg", textured_rgb(seed))
    _write_pan_video(tmp_path / "good.mp4")
    data = (tmp_path / "good.mp4").read_bytes()
    bad = capture / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 50 if damage == "garbage" else data[: len(data) // 2])
    out = tmp_path / "out"
    out.mkdir()
    with caplog.at_level(logging.WARNING, logger="photoforge"):
        metrics = _ingest(capture, out, IngestParams(on_corrupt="skip"))
    records = {r["source"]: r for r in json.loads((out / FRAMES_JSON).read_text())["frames"]}
    assert metrics.frames_kept == 3 and metrics.rejected_corrupt == 1
    assert records["broken.mp4"]["kept"] is False and records["broken.mp4"]["reason"].startswith("corrupt")
    assert "skipping" in caplog.text and "broken.mp4" in caplog.text


def test_video_frames_folder_never_clashes_with_photos(tmp_path: Path) -> None:
    """A folder named like the video (up to letter case) holding a photo named like a frame."""
    capture = tmp_path / "cap"
    capture.mkdir()
    _write_pan_video(capture / "Clip.mp4")
    photo = textured_rgb(30, 320, 240)
    write_jpeg(capture / "clip.mp4" / "000000.jpg", photo)
    out = tmp_path / "out"
    out.mkdir()
    _ingest(capture, out, IngestParams(video_frames=60, blur_ratio=0.0, duplicate_similarity=1.0))
    records = json.loads((out / FRAMES_JSON).read_text())["frames"]
    frames = [r["frame"] for r in records]
    assert len(records) == 61 and len({f.casefold() for f in frames}) == 61
    [photo_record] = [r for r in records if r["kind"] == "photo"]
    assert photo_record["frame"] == "clip.mp4/000000.jpg"
    assert all(r["frame"].startswith("Clip.mp4~2/") for r in records if r["kind"] == "video")
    frame = np.asarray(Image.open(out / FRAMES_DIR / photo_record["frame"]))
    assert np.abs(frame.astype(float) - photo).mean() < 12
