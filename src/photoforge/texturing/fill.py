"""Texels no photo sees are filled from their surroundings; charts bleed into their padding.

Unseen texels inside a chart are inpainted (OpenCV). The padding around charts copies each padding
texel's nearest chart texel, so mipmaps never average a chart with what lies between charts
(inpainting the padding would blend it towards whatever lies beyond, and costs far more).
"""

from __future__ import annotations

import cv2
import numpy as np


def fill_and_dilate(texture: np.ndarray, known: np.ndarray, charts: np.ndarray, padding: int) -> np.ndarray:
    """Inpaint unknown texels inside charts; then charts dilated `padding` (+2) texels into their padding."""
    todo = charts & ~known
    out = texture
    if todo.any():
        filled = cv2.inpaint(texture, todo.astype(np.uint8), 3, cv2.INPAINT_TELEA)
        out = texture.copy()
        out[todo] = filled[todo]
    return dilate_charts(out, charts, padding)


def dilate_charts(texture: np.ndarray, charts: np.ndarray, padding: int) -> np.ndarray:
    """Texels within `padding` (+2) of a chart (`charts`: H x W bool) take their nearest chart texel's value."""
    if not charts.any():
        return texture
    band = cv2.dilate(charts.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=padding + 2) > 0
    todo = band & ~charts
    if not todo.any():
        return texture
    _, labels = cv2.distanceTransformWithLabels(
        (~charts).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    source = np.zeros(int(labels.max()) + 1, np.int64)
    source[labels[charts]] = np.flatnonzero(charts)
    out = texture.copy()
    size = charts.size
    flat = out.reshape(size, -1)
    flat[todo.ravel()] = flat[source[labels[todo]]]
    return out
