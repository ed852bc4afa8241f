"""Training views: the undistorted pinhole images and poses, at training resolution, and their split.

The cameras a splat was trained with are written beside it (cameras.json), so rendering, meshing
and evaluation later need only the splat artefact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycolmap

from photoforge.camera.model import Camera
from photoforge.camera.views import load_views
from photoforge.io.images import read_rgb, resize_longest

CAMERAS_JSON = "cameras.json"


@dataclass
class Capture:
    train: list[Camera]  # at training resolution
    test: list[Camera]
    train_images: list[np.ndarray]  # H x W x 3 uint8
    test_images: list[np.ndarray]
    points_xyz: np.ndarray  # sparse SfM points (for init "sparse")
    points_rgb: np.ndarray


def held_out(count: int, every: int) -> list[bool]:
    """Every `every`-th view (0, every, 2*every, ...) is held out, as gsplat and nerfstudio split."""
    if every <= 0 or count < 2:
        return [False] * count
    return [i % every == 0 for i in range(count)]


def load_capture(images_dir: Path, sparse_dir: Path, max_size: int, hold_out_every: int, stage: str) -> Capture:
    model = pycolmap.Reconstruction(str(sparse_dir))
    views, _ = load_views(model)
    split = held_out(len(views), hold_out_every)
    capture = Capture([], [], [], [], np.zeros((0, 3)), np.zeros((0, 3), np.uint8))
    for view, test in zip(views, split, strict=True):
        rgb = resize_longest(read_rgb(images_dir / view.name, stage, "undistorted image"), max_size)
        scaled = view.camera.scaled(rgb.shape[1], rgb.shape[0])
        (capture.test if test else capture.train).append(scaled)
        (capture.test_images if test else capture.train_images).append(rgb)
    if model.points3D:
        capture.points_xyz = np.array([p.xyz for p in model.points3D.values()], np.float64)
        capture.points_rgb = np.array([p.color for p in model.points3D.values()], np.uint8)
    return capture


def scene_scale(views: list[Camera]) -> float:
    """gsplat's scene scale: 1.1 x the largest camera distance from the cameras' mean centre."""
    centres = np.array([v.centre for v in views])
    return 1.1 * float(np.max(np.linalg.norm(centres - centres.mean(axis=0), axis=1))) or 1.0


def write_cameras(path: Path, train: list[Camera], test: list[Camera]) -> None:
    data = {"train": [v.to_json() for v in train], "test": [v.to_json() for v in test]}
    path.write_text(json.dumps(data, indent=1) + "\n")


def read_cameras(path: Path) -> dict[str, list[Camera]]:
    data = json.loads(path.read_text())
    return {part: [Camera.from_json(v) for v in data[part]] for part in ("train", "test")}
