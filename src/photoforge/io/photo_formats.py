"""Decode a photo file of any supported format to upright 8-bit RGB, with its EXIF.

Pillow's own `convert("RGB")` clips 16-bit grey to white and float to black, and a photo read that
way is then silently rejected as blurred: every mode is mapped here explicitly. Pillow reads the
common formats (and HEIC/HEIF through pillow-heif), rawpy (LibRaw) camera RAW files, OpenCV the
TIFFs Pillow cannot (float RGB).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pillow_heif
import rawpy
from PIL import Image, ImageOps, UnidentifiedImageError

from photoforge.errors import StageError
from photoforge.io.capture_files import RAW_EXTENSIONS

# Transparent pixels are composited over mid grey: no features, no colour cast in the texture.
BACKGROUND = 128
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})

pillow_heif.register_heif_opener()


@dataclass(frozen=True)
class Decoded:
    rgb: np.ndarray  # H x W x 3 uint8, upright
    exif: Image.Exif


def decode_photo(path: Path, stage: str) -> Decoded:
    """Upright 8-bit RGB and EXIF of a photo, or a StageError naming the file and the cause."""
    if path.suffix.lower() in RAW_EXTENSIONS:
        return _decode_raw(path, stage)
    try:
        with Image.open(path) as img:
            exif = img.getexif()
            upright = ImageOps.exif_transpose(img)
            upright.load()
            return Decoded(pillow_to_rgb8(upright), exif)
    except UnidentifiedImageError as exc:
        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # e.g. float RGB TIFF; OpenCV reads no EXIF
        if array is None:
            raise StageError(stage, "not a readable image (unknown or corrupt format)", path) from exc
        return Decoded(opencv_to_rgb8(array), Image.Exif())
    except (OSError, SyntaxError, ValueError) as exc:
        raise StageError(stage, f"corrupt or truncated image: {exc}", path) from exc


def pillow_to_rgb8(img: Image.Image) -> np.ndarray:
    """RGB uint8 from any Pillow mode: 16-bit and float scaled, alpha composited, CMYK converted."""
    if img.mode.startswith("I") or img.mode == "F":
        grey = to_uint8(np.asarray(img))
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in _ALPHA_MODES or (img.mode in ("P", "L", "RGB") and "transparency" in img.info):
        return composite(np.asarray(img.convert("RGBA")))
    return np.asarray(img.convert("RGB"))


def opencv_to_rgb8(array: np.ndarray) -> np.ndarray:
    """RGB uint8 from an OpenCV `IMREAD_UNCHANGED` array (grey, BGR or BGRA, any depth)."""
    values = to_uint8(array)
    if values.ndim == 2:
        return np.repeat(values[..., None], 3, axis=2)
    if values.shape[2] == 4:
        return composite(cv2.cvtColor(values, cv2.COLOR_BGRA2RGBA))
    return cv2.cvtColor(values[..., :3], cv2.COLOR_BGR2RGB)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """8-bit samples: 16-bit (and Pillow's 32-bit "I") keep their top byte; float 0..1 is black..white.

    A float image whose maximum is above 1 is scaled by that maximum (it is not 0..1 data).
    """
    if values.dtype.kind in "ui":
        if values.dtype.itemsize == 1:
            return values.astype(np.uint8)
        return (np.clip(values, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
    floats = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(floats.max()) if floats.size else 0.0
    scale = 255.0 / peak if peak > 1.0 else 255.0
    return np.clip(floats * scale + 0.5, 0, 255).astype(np.uint8)


def composite(rgba: np.ndarray) -> np.ndarray:
    """RGBA uint8 over the grey BACKGROUND, as RGB uint8."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * alpha + BACKGROUND * (1.0 - alpha)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def _decode_raw(path: Path, stage: str) -> Decoded:
    """Demosaic with the camera's white balance; LibRaw turns the image upright itself."""
    try:
        with rawpy.imread(str(path)) as raw:
            rgb = raw.postprocess(use_camera_wb=True, output_bps=8)
            exif = _raw_exif(path, raw)
    except (rawpy.LibRawError, rawpy.NotSupportedError, OSError, ValueError) as exc:
        raise StageError(stage, f"corrupt or unsupported camera RAW file: {_message(exc)}", path) from exc
    return Decoded(np.ascontiguousarray(rgb[..., :3], dtype=np.uint8), exif)


def _raw_exif(path: Path, raw: rawpy.RawPy) -> Image.Exif:
    """The RAW's EXIF where Pillow reaches it: TIFF-based files (DNG, CR2, NEF, ARW), else the embedded JPEG."""
    try:
        with Image.open(path) as img:
            exif = img.getexif()
        if exif:
            return exif
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        pass
    try:
        thumb = raw.extract_thumb()
        if thumb.format == rawpy.ThumbFormat.JPEG:
            with Image.open(io.BytesIO(thumb.data)) as img:
                return img.getexif()
    except (rawpy.LibRawError, UnidentifiedImageError, OSError, SyntaxError, ValueError):
        pass
    return Image.Exif()


def _message(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else type(exc).__name__
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)
