"""The photos a texture is baked from: an image, a projection into it and the object's mask, per view."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from photoforge.camera.model import Camera
from photoforge.errors import StageError
from photoforge.io.images import load_photo, read_rgb, sharpness

_REMAP_WIDTH = 4096


@dataclass
class PhotoSource:
    image: np.ndarray  # H x W x 3 uint8
    camera: Camera  # posed in the asset frame (cam_from_world is cam_from_asset), at the image's size
    lens: pycolmap.Camera | None  # the SfM camera at the image's size, to project through its distortion; None: pinhole
    sharpness: float
    mask: np.ndarray | None = None  # object mask levels (texturing.object_masks), maybe smaller; None: all object

    @property
    def name(self) -> str:
        return self.camera.name

    @property
    def centre(self) -> np.ndarray:
        return self.camera.centre

    @property
    def focal(self) -> float:
        return float(self.camera.k[0, 0]) if self.lens is None else float(self.lens.mean_focal_length())

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (COLMAP convention) and camera-frame depth of asset-frame points."""
        if self.lens is None:
            return self.camera.project(points)
        cam = self.camera.cam_from_world.apply(points)
        z = cam[:, 2]
        front = z > 1e-12
        pixels = np.full((len(points), 2), -1.0)
        if front.any():
            pixels[front] = np.asarray(self.lens.img_from_cam(cam[front]))
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


def undistorted_source(image_path: Path, camera: Camera) -> PhotoSource:
    """A COLMAP-undistorted frame: pinhole projection at the image's own size."""
    rgb = read_rgb(image_path, "bake", "undistorted frame")
    return PhotoSource(rgb, camera.scaled(rgb.shape[1], rgb.shape[0]), None, sharpness(rgb))


def original_source(photo_path: Path, lens: pycolmap.Camera, camera: Camera) -> PhotoSource:
    """The full-resolution original (EXIF-upright) with the SfM camera (`lens`) rescaled to it, distortion kept."""
    if not photo_path.is_file():
        raise StageError("bake", "the original photo is missing (moved or deleted since ingest)", photo_path)
    rgb = load_photo(photo_path, stage="bake").rgb
    full = pycolmap.Camera(lens.todict())  # a copy: the model keeps its own
    full.rescale(rgb.shape[1], rgb.shape[0])
    k = np.asarray(full.calibration_matrix(), float)
    pinhole = Camera(camera.name, k, camera.cam_from_world, rgb.shape[1], rgb.shape[0])
    return PhotoSource(rgb, pinhole, full, sharpness(rgb))
