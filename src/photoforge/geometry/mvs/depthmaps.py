"""Per-view depth artefacts: arrays on disk (npz), normals from depth, coloured previews."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def save_view(path: Path, depth: np.ndarray, confidence: np.ndarray, normal: np.ndarray, color: np.ndarray) -> None:
    """depth float32 (0 = unknown), confidence float16, normal float16 (camera frame), colour uint8."""
    np.savez_compressed(
        path,
        depth=depth.astype(np.float32),
        confidence=confidence.astype(np.float16),
        normal=normal.astype(np.float16),
        color=color.astype(np.uint8),
    )


def load_view(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def normals_from_depth(depth: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Camera-frame normals from central differences of the back-projected depth map."""
    height, width = depth.shape
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x = (u - k[0, 2]) / k[0, 0] * depth
    y = (v - k[1, 2]) / k[1, 1] * depth
    pts = np.stack([x, y, depth], axis=-1)
    du = np.zeros_like(pts)
    dv = np.zeros_like(pts)
    du[:, 1:-1] = pts[:, 2:] - pts[:, :-2]
    dv[1:-1] = pts[2:] - pts[:-2]
    n = np.cross(dv, du)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    n = np.where(norm > 0, n / np.maximum(norm, 1e-12), 0)
    n = np.where((n[..., 2:3] > 0), -n, n)  # face the camera
    valid = depth > 0
    valid[:, 1:-1] &= (depth[:, 2:] > 0) & (depth[:, :-2] > 0)
    valid[1:-1] &= (depth[2:] > 0) & (depth[:-2] > 0)
    return np.where(valid[..., None], n, 0).astype(np.float32)


def preview(depth: np.ndarray, path: Path) -> None:
    """A turbo-coloured inverse-depth PNG (near = warm), unknown pixels black."""
    valid = depth > 0
    image = np.zeros((*depth.shape, 3), np.uint8)
    if valid.any():
        inv = np.where(valid, 1.0 / np.maximum(depth, 1e-12), 0)
        lo, hi = np.percentile(inv[valid], [2, 98])
        scaled = np.clip((inv - lo) / max(hi - lo, 1e-12), 0, 1)
        coloured = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
        image[valid] = coloured[valid]
    cv2.imwrite(str(path), image)
