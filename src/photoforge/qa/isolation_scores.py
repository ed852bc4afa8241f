"""How well an object capture's asset is the object alone, upright, on y = 0 and in metres, against the truth.

The asset frame is tied to the truth through the cameras: SfM -> truth by a similarity of the camera
centres, SfM -> asset by the mesh stage's world_to_asset. Benches and tests report these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open3d as o3d
import pycolmap

from photoforge.qa.pose_errors import read_strecha_dir
from photoforge.qa.surface_scores import similarity_to_truth
from photoforge.render.raycast import MeshScene


@dataclass(frozen=True)
class IsolationScores:
    off_object_share: float  # of the asset's surface area, farther than the tolerance from the true object
    up_error_deg: float  # the asset's +Y against the true up
    base_offset_share: float  # where the true support lies on the asset's up (floor) or depth (wall) axis, / height
    size_error_percent: float  # the asset's unit against the metre (with a scale)
    tolerance: float  # metres


@dataclass(frozen=True)
class ObjectTruth:
    mesh: Path  # the object alone, metres
    cameras: Path  # Strecha .camera files, named for the photos
    up: np.ndarray
    support_plane: np.ndarray  # a, b, c, d, normal towards the object
    object_height: float


def score_isolation(
    model: pycolmap.Reconstruction,
    truth: ObjectTruth,
    *,
    asset_mesh: Path,
    world_to_asset: np.ndarray,
    tolerance_share: float = 0.03,
    samples: int = 50_000,
) -> IsolationScores:
    """Scores of the mesh stage's asset (mesh.ply in the asset frame) against the synthetic truth."""
    cameras = read_strecha_dir(truth.cameras)
    estimated, true = [], []
    for image_id in model.reg_image_ids():
        image = model.image(image_id)
        camera = cameras.get(Path(image.name).name.removesuffix(".jpg"))  # ingest appends .jpg to PNG frames
        if camera is not None:
            estimated.append(image.projection_center())
            true.append(camera.centre)
    truth_from_world = similarity_to_truth(np.array(estimated), np.array(true))
    asset_from_truth = world_to_asset @ np.linalg.inv(truth_from_world)
    scale = float(np.cbrt(np.linalg.det(asset_from_truth[:3, :3])))
    rotation = asset_from_truth[:3, :3] / scale

    up = rotation @ truth.up
    up_error = float(np.degrees(np.arccos(np.clip(up[1] / np.linalg.norm(up), -1.0, 1.0))))

    normal, offset = truth.support_plane[:3], float(truth.support_plane[3])
    object_mesh = o3d.io.read_triangle_mesh(str(truth.mesh))
    centre = np.asarray(object_mesh.get_axis_aligned_bounding_box().get_center())
    on_support = centre - (centre @ normal + offset) * normal  # the support right under/behind the object
    axis = 1 if abs(normal @ truth.up) > 0.7 else 2  # a floor is y = 0 in the asset, a wall z = 0
    support_in_asset = asset_from_truth[:3, :3] @ on_support + asset_from_truth[:3, 3]
    base_share = abs(float(support_in_asset[axis])) / (truth.object_height * scale)

    asset = o3d.io.read_triangle_mesh(str(asset_mesh))
    o3d.utility.random.seed(0)
    points = np.asarray(asset.sample_points_uniformly(samples).points)
    in_truth = (points - asset_from_truth[:3, 3]) @ np.linalg.inv(asset_from_truth[:3, :3]).T
    tolerance = tolerance_share * truth.object_height
    distance = MeshScene(np.asarray(object_mesh.vertices), np.asarray(object_mesh.triangles)).distance(in_truth)
    return IsolationScores(
        off_object_share=float(np.mean(distance > tolerance)),
        up_error_deg=up_error,
        base_offset_share=base_share,
        size_error_percent=abs(scale - 1.0) * 100.0,
        tolerance=tolerance,
    )
