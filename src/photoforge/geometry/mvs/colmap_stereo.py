"""The `cuda` depth backend: COLMAP PatchMatch stereo through pycolmap-cuda12.

`pip install pycolmap-cuda12` replaces the CPU-only `pycolmap` wheel (same module name); then
`pycolmap.has_cuda` is true and this backend can run. Written against pycolmap's documented
API (`patch_match_stereo` on an undistorted COLMAP workspace); see the issue notes for what has
been checked on a GPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pycolmap


def available() -> bool:
    return bool(getattr(pycolmap, "has_cuda", False))


def run_patch_match(workspace: Path, max_size: int, window_radius: int, min_consistent: int) -> None:
    """PatchMatch with geometric consistency over an undistorted workspace (writes stereo/)."""
    options = pycolmap.PatchMatchOptions()
    options.max_image_size = max_size
    options.window_radius = window_radius
    options.geom_consistency = True
    options.filter = True
    options.filter_min_num_consistent = min_consistent
    pycolmap.patch_match_stereo(workspace, workspace_format="COLMAP", options=options)


def read_array(path: Path) -> np.ndarray:
    """COLMAP's dense array format: an ASCII 'width&height&channels&' header, then float32 data."""
    with open(path, "rb") as f:
        header = b""
        ampersands = 0
        while ampersands < 3:
            char = f.read(1)
            if not char:
                raise ValueError(f"{path}: truncated COLMAP array header")
            header += char
            ampersands += char == b"&"
        width, height, channels = (int(x) for x in header.decode().strip("&").split("&"))
        data = np.fromfile(f, np.float32)
    array = data.reshape(channels, height, width).transpose(1, 2, 0)  # column-major, as COLMAP writes
    return array[..., 0] if channels == 1 else array


def geometric_maps(workspace: Path, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The filtered (geometric) depth and normal maps of one image; None where COLMAP wrote none.

    PatchMatch skips a reference image it finds no source images for ("Ignoring reference image
    ..., because it has no source images": near-duplicate frames, too small a triangulation angle),
    so a missing map is a view without depth, not a broken workspace.
    """
    stereo = workspace / "stereo"
    depth_path = stereo / "depth_maps" / f"{name}.geometric.bin"
    normal_path = stereo / "normal_maps" / f"{name}.geometric.bin"
    if not depth_path.is_file() or not normal_path.is_file():
        return None
    return read_array(depth_path), read_array(normal_path)
