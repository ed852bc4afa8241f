"""Pose accuracy against ground-truth cameras (Strecha format): the numbers benches report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycolmap

from photoforge.camera.model import Camera, Rigid3


@dataclass(frozen=True)
class PoseErrors:
    compared: int
    rotation_median_deg: float
    rotation_max_deg: float
    centre_median: float
    centre_max: float


def read_strecha_camera(path: Path) -> Camera:
    """K (3 rows), distortion (1 row), R camera-to-world (3 rows), centre C (1 row), size (1 row).

    The camera's name is the file's, less `.camera`; its centre is C exactly as written.
    """
    rows = [list(map(float, line.split())) for line in path.read_text().splitlines() if line.strip()]
    k = np.array(rows[0:3])
    r = np.array(rows[4:7])
    centre = np.array(rows[7])
    width, height = (int(v) for v in rows[8][:2])
    cam_from_world = Rigid3(r, centre).inverse()  # the file holds world_from_cam
    return Camera(path.name.removesuffix(".camera"), k, cam_from_world, width, height)


def read_strecha_dir(gt_dir: Path) -> dict[str, Camera]:
    """{image file name: camera} from NAME.camera files."""
    return {p.name.removesuffix(".camera"): read_strecha_camera(p) for p in sorted(gt_dir.glob("*.camera"))}


def pose_errors(model: pycolmap.Reconstruction, truth: dict[str, Camera]) -> PoseErrors:
    """Pairwise relative-rotation error and camera-centre error after a similarity alignment."""
    names, r_est, c_est, r_gt, c_gt = [], [], [], [], []
    for image_id in model.reg_image_ids():
        image = model.image(image_id)
        name = Path(image.name).name
        gt = truth.get(name) or truth.get(name.removesuffix(".jpg"))  # ingest appends .jpg to PNG/TIFF frames
        if gt is None:
            continue
        names.append(image.name)
        r_est.append(image.cam_from_world().rotation.matrix().T)  # world_from_cam
        c_est.append(image.projection_center())
        r_gt.append(gt.world_from_cam.rotation)
        c_gt.append(gt.centre)
    if len(names) < 3:
        raise ValueError(f"need 3 registered images with ground truth, have {len(names)}")
    rot_errors = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            rel_est = r_est[i].T @ r_est[j]
            rel_gt = r_gt[i].T @ r_gt[j]
            rot_errors.append(_angle_deg(rel_est.T @ rel_gt))
    sim = pycolmap.estimate_sim3d(np.array(c_est), np.array(c_gt))
    if sim is None:
        raise ValueError("similarity alignment of camera centres failed")
    aligned = np.array([sim * c for c in c_est])
    centre_errors = np.linalg.norm(aligned - np.array(c_gt), axis=1)
    return PoseErrors(
        compared=len(names),
        rotation_median_deg=float(np.median(rot_errors)),
        rotation_max_deg=float(np.max(rot_errors)),
        centre_median=float(np.median(centre_errors)),
        centre_max=float(np.max(centre_errors)),
    )


def _angle_deg(rotation: np.ndarray) -> float:
    cos = (np.trace(rotation) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
