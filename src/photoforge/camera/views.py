"""Registered views of a (pinhole, undistorted) COLMAP model: numpy cameras and the sparse points they see."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pycolmap

from photoforge.camera.model import Camera, Rigid3


@dataclass(frozen=True, eq=False)
class RegisteredView:
    """A photo registered in the sparse model: its camera, its place in name order, the points it observes."""

    index: int
    camera: Camera
    point_ids: np.ndarray = field(repr=False)  # ids of the sparse points it observes

    @property
    def name(self) -> str:
        return self.camera.name


def load_views(model: pycolmap.Reconstruction) -> tuple[list[RegisteredView], dict[int, np.ndarray]]:
    """Views in name order, and the sparse points' world positions by id."""
    views = []
    for index, image_id in enumerate(sorted(model.reg_image_ids(), key=lambda i: model.image(i).name)):
        image = model.image(image_id)
        camera = model.camera(image.camera_id)
        pose = image.cam_from_world()
        ids = np.array([p.point3D_id for p in image.points2D if p.has_point3D()], np.int64)
        cam_from_world = Rigid3(np.asarray(pose.rotation.matrix(), float), np.asarray(pose.translation, float))
        k = np.asarray(camera.calibration_matrix(), float)
        views.append(RegisteredView(index, Camera(image.name, k, cam_from_world, camera.width, camera.height), ids))
    points = {pid: np.asarray(p.xyz, float) for pid, p in model.points3D.items()}
    return views, points


def depth_range(
    view: RegisteredView, points: dict[int, np.ndarray], margin: float = 0.15
) -> tuple[float, float] | None:
    """Robust near/far depths of the sparse points the view sees, widened by a margin."""
    if len(view.point_ids) < 10:
        return None
    xyz = np.stack([points[i] for i in view.point_ids if i in points])
    depths = view.camera.cam_from_world.apply(xyz)[:, 2]
    depths = depths[depths > 0]
    if len(depths) < 10:
        return None
    near, far = np.percentile(depths, [1, 99])
    return float(near * (1 - margin)), float(far * (1 + margin))


def rank_neighbours(
    views: list[RegisteredView], points: dict[int, np.ndarray], min_angle_deg: float = 1.0
) -> dict[int, list[int]]:
    """For each view, every other view that shares points with it, best stereo partner first.

    MVSNet's score: the sum over shared points of a Gaussian in the triangulation angle
    around 5 degrees (narrower below it, wider above), so tiny baselines and wide ones lose.
    """
    sets = [set(v.point_ids.tolist()) for v in views]
    result: dict[int, list[int]] = {}
    for i, ref in enumerate(views):
        scores = []
        for j, src in enumerate(views):
            if i == j:
                continue
            shared = sets[i] & sets[j]
            if not shared:
                continue
            xyz = np.stack([points[p] for p in shared if p in points])
            a = ref.camera.centre - xyz
            b = src.camera.centre - xyz
            cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
            angles = np.degrees(np.arccos(np.clip(cos, -1, 1)))
            sigma = np.where(angles <= 5.0, 1.0, 10.0)
            weights = np.exp(-((angles - 5.0) ** 2) / (2 * sigma**2))
            if np.median(angles) < min_angle_deg:
                continue
            scores.append((float(weights.sum()), j))
        scores.sort(reverse=True)
        result[i] = [j for score, j in scores if score > 0]
    return result


def nearest_by_angle(
    views: list[RegisteredView],
    points: dict[int, np.ndarray],
    *,
    min_shared: int = 10,
    best_angle_deg: float = 5.0,
) -> dict[int, list[int]]:
    """For each view, the views that share points with it, nearest viewpoint first.

    The angle is the one between the two cameras' rays to the centre of what the reference sees
    (the median of its sparse points): sources that see the surface from close to the reference's
    direction distort its windows least. `rank_neighbours`' shared-point sums pick whatever sees the
    most of the sparse cloud instead, on an object capture the table around it: on a three-ring
    table layout a low view got its sources from the top ring before its own ring. Below `best_angle_deg`
    a source ranks as if it were further away (10x the shortfall: 1 degree ranks as 45): near-duplicate
    frames give no depth resolution.
    """
    sets = [set(v.point_ids.tolist()) for v in views]
    result: dict[int, list[int]] = {}
    for i, ref in enumerate(views):
        seen = [points[p] for p in ref.point_ids if p in points]
        if not seen:
            result[i] = []
            continue
        centre = np.median(np.stack(seen), axis=0)
        to_ref = ref.camera.centre - centre
        ranked = []
        for j, src in enumerate(views):
            if i == j or len(sets[i] & sets[j]) < min(min_shared, len(sets[i])):
                continue
            to_src = src.camera.centre - centre
            cos = np.dot(to_ref, to_src) / (np.linalg.norm(to_ref) * np.linalg.norm(to_src) + 1e-12)
            angle = float(np.degrees(np.arccos(np.clip(cos, -1, 1))))
            if angle < 0.5:
                continue  # the same viewpoint: no stereo at all
            ranked.append((angle if angle >= best_angle_deg else best_angle_deg + 10 * (best_angle_deg - angle), j))
        ranked.sort()
        result[i] = [j for _, j in ranked]
    return result
