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
from photoforge.texturing.view_depth import ViewDepth

_REMAP_WIDTH = 4096


@dataclass
class PhotoSource:
    image: np.ndarray  # H x W x 3 uint8
    camera: Camera  # posed in the asset frame (cam_from_world is cam_from_asset), at the image's size
    lens: pycolmap.Camera | None  # the SfM camera at the image's size, to project through its distortion; None: pinhole
    sharpness: float
    mask: np.ndarray | None = None  # object mask levels (texturing.object_masks), maybe smaller; None: all object
    depth: ViewDepth | None = None  # the mesh's distances in this view (which texels it sees); None: cast rays

    @property
    def name(self) -> str:
        return self.camera.name

    @property
    def centre(self) -> np.ndarray:
        return self.camera.centre

    @property
    def focal(self) -> float:
        return float(self.camera.k[0, 0]) if self.lens is None else float(self.lens.mean_focal_length())

    def image_points(self, cam: np.ndarray) -> np.ndarray:
        """Pixel coordinates (COLMAP convention, N x 2, cam's dtype) of camera-frame points given
        coordinate-major (3 x N: x, y, z rows) in front of the camera."""
        if self.lens is not None:
            return np.asarray(self.lens.img_from_cam(np.asarray(cam.T, np.float64)))
        k = self.camera.k.astype(cam.dtype)
        x, y, z = cam
        pixels = np.empty((cam.shape[1], 2), cam.dtype)
        pixels[:, 0] = (k[0, 0] * x + k[0, 1] * y) / z + k[0, 2]
        pixels[:, 1] = k[1, 1] * y / z + k[1, 2]
        return pixels

    def sample(self, pixels: np.ndarray) -> np.ndarray:
        """Bilinear colours at pixel coordinates (N x 3 uint8)."""
        n = len(pixels)
        if n == 0:
            return np.zeros((0, 3), np.uint8)
        rows = -(-n // _REMAP_WIDTH)  # remap maps must stay below 32767 px a side
        coords = np.zeros((rows * _REMAP_WIDTH, 2), np.float32)
        coords[:n] = pixels - 0.5
        grid = coords.reshape(rows, _REMAP_WIDTH, 2)
        out = cv2.remap(self.image, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out.reshape(-1, 3)[:n]


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
