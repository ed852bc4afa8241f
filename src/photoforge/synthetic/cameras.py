"""Known cameras for synthetic captures: aimed poses, and the Strecha files ground truth is read from."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from photoforge.camera.model import Camera, Rigid3, look_at

Z_UP = np.array([0.0, 0.0, 1.0])


def orbit_camera(
    name: str,
    k: np.ndarray,
    size: tuple[int, int],
    *,
    target: np.ndarray,
    distance: float,
    azimuth: float,
    elevation: float,
) -> Camera:
    """A Z-up camera `distance` from `target`, azimuth from +x towards +y and elevation in radians."""
    offset = np.array(
        [math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation), math.sin(elevation)]
    )
    centre = np.asarray(target, float) + distance * offset
    world_from_cam = Rigid3(look_at(centre, np.asarray(target, float), Z_UP).T, centre)
    return Camera(name, k, world_from_cam.inverse(), *size)


def write_strecha_camera(path: Path, camera: Camera) -> None:
    """K, distortion (none), world_from_cam rotation and centre, size: what read_strecha_dir reads."""
    world_from_cam = camera.world_from_cam
    rows = [*(" ".join(f"{x:.9g}" for x in r) for r in camera.k), "0 0 0"]
    rows += [" ".join(f"{x:.9g}" for x in r) for r in world_from_cam.rotation]
    rows += [" ".join(f"{x:.9g}" for x in world_from_cam.translation), f"{camera.width} {camera.height}"]
    path.write_text("\n".join(rows) + "\n")
