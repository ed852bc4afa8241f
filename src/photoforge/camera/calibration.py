"""Intrinsics priors: a known calibration (K.txt, a 3x3 matrix) or the photo's EXIF."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from photoforge.errors import StageError

# A 35 mm film frame's diagonal: EXIF's 35 mm-equivalent focal length is defined against it.
_FILM_DIAGONAL_MM = math.hypot(36.0, 24.0)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels of a given image size; `source` says where they came from."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    source: str

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera for an image resampled to width x height (COLMAP's corner convention)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height, self.source)

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def read_k_matrix(path: Path, stage: str = "ingest") -> np.ndarray:
    """Read a 3x3 camera matrix written as three rows of numbers (the shared data sets' K.txt)."""
    try:
        values = [float(v) for v in path.read_text().split()]
    except (OSError, ValueError) as exc:
        raise StageError(stage, f"cannot read a 3x3 camera matrix: {exc}", path) from exc
    if len(values) != 9:
        raise StageError(stage, f"expected 9 numbers (a 3x3 camera matrix), found {len(values)}", path)
    k = np.array(values).reshape(3, 3)
    if k[0, 0] <= 0 or k[1, 1] <= 0 or not np.allclose(k[2], [0, 0, 1]):
        raise StageError(stage, "not a camera matrix: need fx, fy > 0 and last row 0 0 1", path)
    return k


def intrinsics_from_k(k: np.ndarray, width: int, height: int, source: str) -> Intrinsics:
    return Intrinsics(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), width, height, source)


def intrinsics_from_exif(
    width: int, height: int, focal_35mm: float | None, focal_mm: float | None, sensor_width_mm: float | None
) -> Intrinsics | None:
    """A focal-length prior from EXIF: the 35 mm-equivalent focal, else focal and sensor width."""
    if focal_35mm and focal_35mm > 0:
        f = focal_35mm / _FILM_DIAGONAL_MM * math.hypot(width, height)
    elif focal_mm and focal_mm > 0 and sensor_width_mm and sensor_width_mm > 0:
        f = focal_mm / sensor_width_mm * max(width, height)
    else:
        return None
    return Intrinsics(f, f, width / 2.0, height / 2.0, width, height, "exif")
