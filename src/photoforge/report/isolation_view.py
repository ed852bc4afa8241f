"""The report's picture of isolation: the kept object in its photo colours, what was removed in red.

An orthographic point splat in the asset frame (y up, front +Z), numpy only: a person sees at a
glance whether the cut took the floor and the floaters and left the object whole. Framed on the
kept object with a margin, so the support just under it shows and the far background does not
shrink the object to a speck.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from photoforge.layout import OBJECT_PLY, REMOVED_PLY, IsolatedAsset

ISOLATION_PNG = "isolation.png"  # in the report's artefact
SIZE = (480, 400)  # one view's width, height in px
ELEVATIONS_DEG = (0.0, 35.0)  # from the side, and from above at the turntable's kind of angle
MARGIN = 0.3  # around the object, share of its size
MAX_POINTS = 600_000  # per cloud: enough to fill the picture
RED, TINT = np.array([230.0, 20.0, 20.0]), 0.7  # removed points: mostly red, a trace of their photo colour
BACKGROUND = (40, 40, 44)


def view_rotation(elevation_deg: float) -> np.ndarray:
    """Rows: the picture's right, up and towards-the-viewer axes in the asset frame (looking at the front)."""
    e = math.radians(elevation_deg)
    return np.array([[1.0, 0.0, 0.0], [0.0, math.cos(e), -math.sin(e)], [0.0, math.sin(e), math.cos(e)]])


def splat(
    points: np.ndarray, colours: np.ndarray, *, window: tuple[np.ndarray, np.ndarray], size: tuple[int, int]
) -> np.ndarray:
    """An H x W x 3 uint8 picture of view-frame points (x right, y up, z towards the viewer), 3x3 px each.

    `window` is the view-frame (x, y) rectangle shown, fitted at one scale for both axes; the nearest
    point wins each pixel (a z-buffer), so the object hides what lies behind it.
    """
    width, height = size
    low, high = window
    scale = min(width / (high[0] - low[0]), height / (high[1] - low[1]))
    middle = (low + high) / 2
    column = np.floor((points[:, 0] - middle[0]) * scale + width / 2).astype(np.int64)
    row = np.floor((middle[1] - points[:, 1]) * scale + height / 2).astype(np.int64)
    offsets = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    row = (row[:, None] + offsets[:, 0]).ravel()
    column = (column[:, None] + offsets[:, 1]).ravel()
    depth = np.repeat(points[:, 2], len(offsets))
    colour = np.repeat(colours, len(offsets), axis=0)
    inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
    pixel, depth, colour = row[inside] * width + column[inside], depth[inside], colour[inside]
    nearest = np.full(width * height, -np.inf)
    np.maximum.at(nearest, pixel, depth)
    front = depth >= nearest[pixel]
    image = np.empty((width * height, 3), np.uint8)
    image[:] = BACKGROUND
    image[pixel[front]] = colour[front]
    return image.reshape(height, width, 3)


def isolation_picture(
    *, kept: np.ndarray, kept_rgb: np.ndarray, removed: np.ndarray, removed_rgb: np.ndarray
) -> np.ndarray:
    """Side and elevated views of asset-frame points side by side: kept in photo colours, removed tinted red."""
    tinted = ((1 - TINT) * removed_rgb + TINT * RED).astype(np.uint8)
    kept, removed = _subsample(kept), _subsample(removed)
    points = np.concatenate([kept, removed])
    colours = np.concatenate([_subsample(kept_rgb), _subsample(tinted)]).astype(np.uint8)
    views = []
    for elevation in ELEVATIONS_DEG:
        rotation = view_rotation(elevation)
        view_kept = kept @ rotation.T
        low, high = np.percentile(view_kept[:, :2], (0.5, 99.5), axis=0)
        pad = MARGIN * float(max(high - low)) + 1e-9
        views.append(splat(points @ rotation.T, colours, window=(low - pad, high + pad), size=SIZE))
        views.append(np.full((SIZE[1], 8, 3), 255, np.uint8))
    return np.concatenate(views[:-1], axis=1)


def write_isolation_picture(asset_dir: Path, path: Path) -> bool:
    """The picture of an object's isolation as a PNG at `path`; False (nothing written) for a scene."""
    import cv2  # when a report is written

    from photoforge.geometry.pointcloud import read_ply  # open3d: only here

    isolation = IsolatedAsset.read(asset_dir)
    if isolation.kind != "object" or isolation.rotation is None:
        return False
    kept, kept_rgb, _ = read_ply(asset_dir / OBJECT_PLY)
    if len(kept) == 0:
        return False
    removed, removed_rgb = np.empty((0, 3)), np.empty((0, 3))
    if (asset_dir / REMOVED_PLY).exists():
        removed, removed_rgb, _ = read_ply(asset_dir / REMOVED_PLY)
    rotation = np.asarray(isolation.rotation, float)  # world -> asset (the points are in the fused cloud's world)
    picture = isolation_picture(
        kept=kept @ rotation.T, kept_rgb=kept_rgb, removed=removed @ rotation.T, removed_rgb=removed_rgb
    )
    return bool(cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)))


def _subsample(values: np.ndarray) -> np.ndarray:
    """Every n-th row, at most MAX_POINTS (the same rows for points and their colours)."""
    return values[:: max(1, math.ceil(len(values) / MAX_POINTS))]
