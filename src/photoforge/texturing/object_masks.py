"""Which photo pixels may colour the texture: the object in each view, less a band along its edge.

A texel seen just inside a view's outline samples a pixel that may be background: the mesh is a
little larger or offset, the pose a little off, the edge pixel half object. So each view gets an
object mask (the user's, else the mesh's own silhouette in that view) and a band of a few px inside
its edge: a band pixel colours a texel only where no view sees that texel inside an object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import pycolmap

    from photoforge.camera.model import Camera
    from photoforge.render.raycast import MeshScene

OUTSIDE, BAND, INSIDE = 0, 1, 2  # mask levels: background, the eroded band along the edge, the object


def object_levels(
    scene: MeshScene, view: Camera, lens: pycolmap.Camera | None, *, user: np.ndarray | None, erode_px: int
) -> np.ndarray | None:
    """A view's mask levels (uint8 H x W) from the user's mask (bool), else from the mesh's silhouette
    as `view` (or `lens`, distortion kept) sees it; None (all INSIDE) without a user mask when erode_px is 0."""
    if user is None and erode_px == 0:
        return None
    outline = user if user is not None else scene.silhouette(view, lens)
    return levels(outline, erode_px)


def levels(outline: np.ndarray, erode_px: int) -> np.ndarray:
    """INSIDE where the outline eroded by erode_px (a disc) remains, BAND in the rest of it, else OUTSIDE."""
    mask = outline.astype(np.uint8)
    out = mask * BAND
    if erode_px > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode_px + 1, 2 * erode_px + 1))
        inner = cv2.erode(mask, disc)  # the frame's edge is no object edge: OpenCV pads erosion with object
    else:
        inner = mask
    out[inner > 0] = INSIDE
    return out


def level_at(mask: np.ndarray | None, pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """The level at pixel coordinates of a width x height image (the mask may be smaller: scaled)."""
    if mask is None:
        return np.full(len(pixels), INSIDE, np.uint8)
    return at_pixels(mask, pixels, width, height)


def at_pixels(grid: np.ndarray, pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """The values of `grid` (an image's mask or buffer, maybe smaller than the image) at the image's
    width x height pixel coordinates (COLMAP convention): the grid cell each pixel falls in."""
    rows, cols = grid.shape[:2]
    x = np.clip(np.floor(pixels[:, 0] * (cols / width)), 0, cols - 1).astype(np.intp)
    y = np.clip(np.floor(pixels[:, 1] * (rows / height)), 0, rows - 1).astype(np.intp)
    return grid[y, x]
