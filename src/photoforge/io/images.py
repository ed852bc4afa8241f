"""Photo decoding and the per-image measures ingest decides with (sharpness, look-alike)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from photoforge.camera.calibration import Intrinsics, intrinsics_from_exif
from photoforge.errors import StageError
from photoforge.io.photo_formats import decode_photo

# Sharpness is measured at one fixed size so that it compares across presets and sources.
_SHARPNESS_SIZE = 1024
_THUMB_SIZE = 32

_EXIF_IFD = 0x8769
_TAG_MAKE, _TAG_MODEL = 0x010F, 0x0110
_TAG_ORIENTATION = 0x0112
_TAG_FOCAL, _TAG_FOCAL_35 = 0x920A, 0xA405
_TAG_FPX_RES, _TAG_FP_UNIT = 0xA20E, 0xA210
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0}


@dataclass(frozen=True)
class Photo:
    rgb: np.ndarray  # H x W x 3 uint8, EXIF orientation applied
    camera_model: str  # make and model from EXIF, or "" when absent
    exif_prior: Intrinsics | None
    orientation: int = 1  # the EXIF orientation applied (1: stored upright; 5-8: turned by 90 degrees)


def load_photo(path: Path, stage: str = "ingest") -> Photo:
    """Decode a photo upright (EXIF orientation applied) with its EXIF camera and focal prior."""
    if path.stat().st_size == 0:
        raise StageError(stage, "empty file (0 bytes)", path)
    decoded = decode_photo(path, stage)
    height, width = decoded.rgb.shape[:2]
    orientation = _as_float(decoded.exif.get(_TAG_ORIENTATION))
    return Photo(
        decoded.rgb,
        _camera_model(decoded.exif),
        _exif_prior(decoded.exif, width, height),
        int(orientation) if orientation in (1, 2, 3, 4, 5, 6, 7, 8) else 1,
    )


def _camera_model(exif: Image.Exif) -> str:
    parts = [str(exif.get(tag, "")).strip("\x00 ") for tag in (_TAG_MAKE, _TAG_MODEL)]
    return " ".join(p for p in parts if p)


def _exif_prior(exif: Image.Exif, width: int, height: int) -> Intrinsics | None:
    sub = exif.get_ifd(_EXIF_IFD)

    def tag(number: int) -> object:
        # the EXIF sub-IFD, else the main IFD (TIFF/EP camera RAW and DNG may keep them there)
        return sub.get(number, exif.get(number))

    focal_35 = _as_float(tag(_TAG_FOCAL_35))
    focal = _as_float(tag(_TAG_FOCAL))
    sensor_width = None
    fpx_res = _as_float(tag(_TAG_FPX_RES))
    unit_mm = _UNIT_MM.get(int(tag(_TAG_FP_UNIT) or 2))
    if fpx_res and unit_mm:
        # FocalPlaneXResolution counts pixels per unit along the unrotated sensor's width.
        sensor_width = max(width, height) / fpx_res * unit_mm
    return intrinsics_from_exif(width, height, focal_35, focal, sensor_width)


def _as_float(value: object) -> float | None:
    try:
        return float(value) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def read_rgb(path: Path, stage: str, what: str = "image") -> np.ndarray:
    """An image file as RGB uint8 (OpenCV decodes BGR), or a StageError naming the file."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise StageError(stage, f"cannot read the {what}", path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def resize_longest(rgb: np.ndarray, max_size: int) -> np.ndarray:
    """Downscale so the longest side is at most max_size (0 keeps the original)."""
    height, width = rgb.shape[:2]
    longest = max(height, width)
    if max_size <= 0 or longest <= max_size:
        return rgb
    scale = max_size / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian at a fixed working size: low means blurred."""
    gray = cv2.cvtColor(resize_longest(rgb, _SHARPNESS_SIZE), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def thumbnail_signature(rgb: np.ndarray) -> np.ndarray:
    """A tiny zero-mean, unit-norm grey thumbnail: its dot product finds near-duplicates."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    thumb = cv2.resize(gray, (_THUMB_SIZE, _THUMB_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
    thumb -= thumb.mean()
    norm = float(np.linalg.norm(thumb))
    return thumb.ravel() / norm if norm > 0 else thumb.ravel()


def save_frame(rgb: np.ndarray, path: Path, quality: int) -> None:
    """Write a working frame as JPEG without chroma subsampling (features need the detail)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format="JPEG", quality=quality, subsampling=0)
