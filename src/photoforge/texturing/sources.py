"""The photos a texture is baked from: an image and a projection into it, per view."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from photoforge.errors import StageError
from photoforge.io.images import load_photo, read_rgb, sharpness

_REMAP_WIDTH = 4096


@dataclass
class PhotoSource:
    name: str
    image: np.ndarray  # H x W x 3 uint8
    rotation: np.ndarray  # asset-to-camera
    translation: np.ndarray
    k: np.ndarray | None  # pinhole intrinsics, or None to project through `camera` (distortion)
    camera: pycolmap.Camera | None
    sharpness: float

    @property
    def centre(self) -> np.ndarray:
        return -self.rotation.T @ self.translation

    @property
    def focal(self) -> float:
        return float(self.k[0, 0]) if self.k is not None else float(self.camera.mean_focal_length())  # type: ignore[union-attr]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (COLMAP convention) and camera-frame depth of asset-frame points."""
        cam = points @ self.rotation.T + self.translation
        z = cam[:, 2]
        if self.k is not None:
            safe = np.where(z > 1e-12, z, 1e-12)
            pixels = np.stack([cam[:, 0] / safe, cam[:, 1] / safe, np.ones_like(z)], axis=1) @ self.k.T
            return pixels[:, :2], z
        front = z > 1e-12
        pixels = np.full((len(points), 2), -1.0)
        if front.any():
            pixels[front] = np.asarray(self.camera.img_from_cam(cam[front]))  # type: ignore[union-attr]
        return pixels, z

    def sample(self, pixels: np.ndarray) -> np.ndarray:
        """Bilinear colours at pixel coordinates (N x 3 float32)."""
        n = len(pixels)
        rows = -(-n // _REMAP_WIDTH)  # remap maps must stay below 32767 px a side
        coords = np.zeros((rows * _REMAP_WIDTH, 2), np.float32)
        coords[:n] = pixels - 0.5
        grid = coords.reshape(rows, _REMAP_WIDTH, 2)
        out = cv2.remap(self.image, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out.reshape(-1, 3)[:n].astype(np.float32)


def to_asset(
    rotation: np.ndarray, translation: np.ndarray, world_to_asset: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A world-to-camera pose re-expressed for asset-frame points (world_to_asset is rigid)."""
    a, b = world_to_asset[:3, :3], world_to_asset[:3, 3]
    r = rotation @ a.T
    return r, translation - r @ b


def undistorted_source(name: str, image_path: Path, k: np.ndarray, width: int, height: int, pose: tuple) -> PhotoSource:
    """A COLMAP-undistorted frame: pinhole projection at the image's own size."""
    rgb = read_rgb(image_path, "bake", "undistorted frame")
    scale = np.diag([rgb.shape[1] / width, rgb.shape[0] / height, 1.0])
    return PhotoSource(name, rgb, pose[0], pose[1], scale @ k, None, sharpness(rgb))


def original_source(name: str, photo_path: Path, camera: pycolmap.Camera, pose: tuple) -> PhotoSource:
    """The full-resolution original (EXIF-upright) with the SfM camera rescaled to it (distortion kept)."""
    if not photo_path.is_file():
        raise StageError("bake", "the original photo is missing (moved or deleted since ingest)", photo_path)
    rgb = load_photo(photo_path, stage="bake").rgb
    full = pycolmap.Camera(camera.todict())  # a copy: the model keeps its own
    full.rescale(rgb.shape[1], rgb.shape[0])
    return PhotoSource(name, rgb, pose[0], pose[1], None, full, sharpness(rgb))
