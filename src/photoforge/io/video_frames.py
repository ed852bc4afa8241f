"""Pick sharp frames spread over a video, decoding once and holding only the picks in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from photoforge.errors import StageError
from photoforge.io.images import sharpness
from photoforge.stage import Progress, no_progress


@dataclass
class VideoFrame:
    index: int
    time: float
    sharpness: float
    rgb: np.ndarray


def _scale_filter(max_size: int) -> list[str]:
    if max_size <= 0:
        return []
    m = int(max_size)
    expr = f"scale=w='if(gt(iw,ih),min({m},iw),-2)':h='if(gt(iw,ih),-2,min({m},ih))'"
    return ["-vf", expr]


# What imageio-ffmpeg and a damaged stream raise: every one becomes a StageError, so that
# ingest.on_corrupt can skip the file.
_DECODE_ERRORS = (OSError, RuntimeError, StopIteration, KeyError, TypeError, ValueError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _decode(path: Path, max_size: int) -> tuple[dict, Iterator[np.ndarray]]:
    try:
        reader = imageio_ffmpeg.read_frames(str(path), output_params=_scale_filter(max_size))
        meta = next(reader)
        width, height = meta["size"]
        meta["source_size"] = tuple(meta["source_size"])  # a stream without sizes is unreadable too
    except _DECODE_ERRORS as exc:
        raise StageError("ingest", f"unreadable video: {_first_line(exc)}", path) from exc

    def frames() -> Iterator[np.ndarray]:
        try:
            for raw in reader:
                yield np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
        except _DECODE_ERRORS as exc:
            raise StageError("ingest", f"video decoding failed: {_first_line(exc)}", path) from exc
        finally:
            reader.close()

    return meta, frames()


def select_sharp_frames(
    path: Path, target_count: int, max_size: int, progress: Progress = no_progress
) -> tuple[list[VideoFrame], dict]:
    """Split the clip into `target_count` equal time windows and keep the sharpest frame of each.

    Spread and sharpness together: a fixed stride would keep whichever frame it lands on,
    motion blur included.
    """
    try:
        total_frames, duration = imageio_ffmpeg.count_frames_and_secs(str(path))
    except _DECODE_ERRORS as exc:
        raise StageError("ingest", "unreadable video: ffmpeg cannot read its frames", path) from exc
    if total_frames <= 0:
        raise StageError("ingest", "video has no frames", path)
    meta, frames = _decode(path, max_size)
    fps = float(meta.get("fps") or (total_frames / duration if duration else 30.0))
    windows = max(1, min(target_count, total_frames))
    best: dict[int, VideoFrame] = {}
    decoded = 0
    for index, rgb in enumerate(frames):
        window = min(windows - 1, index * windows // total_frames)
        score = sharpness(rgb)
        current = best.get(window)
        if current is None or score > current.sharpness:
            best[window] = VideoFrame(index, index / fps, score, rgb.copy())
        decoded += 1
        if decoded % 30 == 0:
            progress(decoded, total_frames, f"{path.name}: frame {decoded}")
    if decoded == 0:
        raise StageError("ingest", "video decoded to zero frames", path)
    info = {"frames_decoded": decoded, "fps": fps, "duration": duration, "size": list(meta["source_size"])}
    return [best[w] for w in sorted(best)], info
