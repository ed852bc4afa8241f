"""Texels no photo sees are filled from their surroundings; charts bleed into their padding.

Both with OpenCV's inpainting, limited to chart interiors and a band around them, so mipmaps
never average a chart with the black between charts.
"""

from __future__ import annotations

import cv2
import numpy as np


def fill_and_dilate(texture: np.ndarray, known: np.ndarray, charts: np.ndarray, padding: int) -> np.ndarray:
    """Inpaint unknown texels inside charts and within `padding` (+2) texels around them."""
    band = cv2.dilate(charts.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=padding + 2) > 0
    todo = band & ~known
    if not todo.any():
        return texture
    filled = cv2.inpaint(texture, todo.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    out = texture.copy()
    out[todo] = filled[todo]
    return out
