"""Video and image sheets people open anywhere: H.264 yuv420p mp4 with faststart (imageio-ffmpeg)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: int, width: int, height: int, quality: int = 7) -> int:
    """Encode RGB frames (even width and height) as browser-playable H.264; returns the frame count."""
    if width % 2 or height % 2:
        raise ValueError(f"H.264 yuv420p needs even dimensions, got {width}x{height}")
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        quality=quality,
        macro_block_size=2,
        output_params=["-movflags", "+faststart"],
    )
    writer.send(None)
    count = 0
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
            count += 1
    finally:
        writer.close()
    return count


def contact_sheet(frames: list[np.ndarray], columns: int, tile_width: int) -> np.ndarray:
    """A grid of frames, each scaled to tile_width."""
    h, w = frames[0].shape[:2]
    tile_height = round(h * tile_width / w)
    tiles = [cv2.resize(f, (tile_width, tile_height), interpolation=cv2.INTER_AREA) for f in frames]
    rows = -(-len(tiles) // columns)
    sheet = np.zeros((rows * tile_height, columns * tile_width, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * tile_height : (r + 1) * tile_height, c * tile_width : (c + 1) * tile_width] = tile
    return sheet
