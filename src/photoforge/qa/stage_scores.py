"""Per-stage precision, recall and F-score of an object reconstruction against its true mesh.

Every tolerance is a share of the object's size, the diagonal of the true mesh's bounding box
(`object_size`), so one table compares a vase with a box. The reconstruction is brought into the
truth's frame first (a similarity: SfM -> truth from the camera centres, surface_scores.similarity_to_truth).

- precision: the share of reconstructed points within the tolerance of the true object surface;
- recall: the share of the *observed* true surface (samples that a camera sees, not at a grazing
  angle, the face on the support left out: `observed_object_samples`) within the tolerance of the
  reconstruction;
- F: their harmonic mean.

Three stages are scored alike: a cloud (`cloud_scores`: the fused points cropped to the object, or
the asset stage's object cloud), a mesh (`mesh_scores`: area-uniform samples on it, recall to its
triangles) and the depth maps (`depth_scores`: per pixel against the true object's depth, seen
from each view's estimated camera).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import open3d as o3d

from photoforge.camera.model import Camera, camera_in_frame
from photoforge.geometry.similarity import similarity_parts, transform_points
from photoforge.qa.surface_scores import cloud_distances, fscore, observed_surface_samples
from photoforge.render.raycast import MeshScene

if TYPE_CHECKING:
    from photoforge.stage import StageResult

TOLERANCES = (0.005, 0.01)  # shares of the object's size (bounding-box diagonal)
BOX_MARGIN = 0.05  # the truth's bounding box grown by this share of its size: the object's crop


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    fscore: float

    @classmethod
    def of(cls, precision: float, recall: float) -> PRF:
        return cls(precision, recall, fscore(precision, recall))


@dataclass(frozen=True)
class StageScores:
    """One stage's scores at each tolerance (a share of the object's size)."""

    stage: str
    points: int  # reconstructed points (or pixels, or mesh samples) scored for precision
    samples: int  # true samples (or object pixels) scored for recall
    at: dict[float, PRF] = field(default_factory=dict)
    # per true sample, its distance to the reconstruction (cloud and mesh stages): where recall is lost
    sample_distance: np.ndarray | None = field(default=None, repr=False, compare=False)

    def row(self) -> dict[str, float | int | str]:
        """Flat numbers for a table or JSON: precision_0.5%, recall_0.5%, f_0.5%, ... ."""
        out: dict[str, float | int | str] = {"stage": self.stage, "points": self.points, "samples": self.samples}
        for share, prf in self.at.items():
            key = f"{share:.1%}"
            out |= {f"precision@{key}": prf.precision, f"recall@{key}": prf.recall, f"f@{key}": prf.fscore}
        return out


def object_size(mesh: o3d.geometry.TriangleMesh) -> float:
    """The object's size: the diagonal of its axis-aligned bounding box."""
    vertices = np.asarray(mesh.vertices)
    return float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))


def in_grown_box(points: np.ndarray, mesh: o3d.geometry.TriangleMesh, margin: float = BOX_MARGIN) -> np.ndarray:
    """Which points (truth frame) lie in the true object's bounding box grown by `margin` of its size."""
    vertices = np.asarray(mesh.vertices)
    grow = margin * object_size(mesh)
    lo, hi = vertices.min(axis=0) - grow, vertices.max(axis=0) + grow
    return np.all((points >= lo) & (points <= hi), axis=1)


def off_support(points: np.ndarray, mesh: o3d.geometry.TriangleMesh, support_plane: Sequence[float]) -> np.ndarray:
    """Which points are not the support's: farther than 1% of the size from its plane, or nearer the object
    (table or wall points in the object's crop are not the object's errors)."""
    size = object_size(mesh)
    plane = np.asarray(support_plane, float)
    near_plane = np.abs(points @ plane[:3] + plane[3]) < 0.01 * size
    keep = ~near_plane
    if near_plane.any():
        scene = MeshScene(np.asarray(mesh.vertices), np.asarray(mesh.triangles))
        keep[near_plane] = scene.distance(points[near_plane]) < 0.01 * size
    return keep


def observed_object_samples(
    mesh: o3d.geometry.TriangleMesh,
    centres: np.ndarray,
    support_plane: Sequence[float],
    *,
    count: int = 100_000,
    min_views: int = 1,
    max_incidence_deg: float = 75.0,
    seed: int = 0,
) -> np.ndarray:
    """True-surface samples that `min_views` cameras (centres in the truth frame) see at less than
    `max_incidence_deg`, less those on the support plane (the base on the table, the back on the wall)."""
    o3d.utility.random.seed(seed)
    samples = observed_surface_samples(
        mesh, np.asarray(centres), count=count, min_views=min_views, max_incidence_deg=max_incidence_deg
    )
    plane = np.asarray(support_plane, float)
    return samples[np.abs(samples @ plane[:3] + plane[3]) > 1e-4 * object_size(mesh)]


def cloud_scores(
    stage: str,
    points: np.ndarray,
    mesh: o3d.geometry.TriangleMesh,
    samples: np.ndarray,
    tolerances: Iterable[float] = TOLERANCES,
) -> StageScores:
    """Scores of reconstructed points (truth frame) against the true mesh and its observed samples."""
    size = object_size(mesh)
    points = np.asarray(points, float)
    if len(points) == 0:
        return StageScores(stage, 0, len(samples), {t: PRF.of(0.0, 0.0) for t in tolerances})
    to_surface, to_points = cloud_distances(points, mesh, samples)
    return _scored(stage, to_surface=to_surface, to_reconstruction=to_points, size=size, tolerances=tolerances)


def mesh_scores(
    stage: str,
    reconstructed: o3d.geometry.TriangleMesh,
    mesh: o3d.geometry.TriangleMesh,
    samples: np.ndarray,
    *,
    count: int = 200_000,
    tolerances: Iterable[float] = TOLERANCES,
    seed: int = 0,
) -> StageScores:
    """Scores of a reconstructed mesh (truth frame): precision on `count` area-uniform samples of it,
    recall as the distance from the true samples to its triangles."""
    size = object_size(mesh)
    if len(reconstructed.triangles) == 0:
        return StageScores(stage, 0, len(samples), {t: PRF.of(0.0, 0.0) for t in tolerances})
    o3d.utility.random.seed(seed)
    points = np.asarray(reconstructed.sample_points_uniformly(count).points)
    to_surface = MeshScene(np.asarray(mesh.vertices), np.asarray(mesh.triangles)).distance(points)
    recon = MeshScene(np.asarray(reconstructed.vertices), np.asarray(reconstructed.triangles))
    to_recon = recon.distance(samples)
    return _scored(stage, to_surface=to_surface, to_reconstruction=to_recon, size=size, tolerances=tolerances)


def _scored(
    stage: str, *, to_surface: np.ndarray, to_reconstruction: np.ndarray, size: float, tolerances: Iterable[float]
) -> StageScores:
    """Precision from the reconstruction's distances to the truth, recall from the truth samples' distances to
    the reconstruction, at each tolerance (a share of the object's size)."""
    shares = {
        t: PRF.of(float(np.mean(to_surface < t * size)), float(np.mean(to_reconstruction < t * size)))
        for t in tolerances
    }
    return StageScores(stage, len(to_surface), len(to_reconstruction), shares, to_reconstruction)


@dataclass
class DepthTally:
    """Pixel counts of the depth maps, summed over views (`add_view`), then `scores`."""

    mesh: o3d.geometry.TriangleMesh
    support_plane: Sequence[float]
    tolerances: tuple[float, ...] = TOLERANCES
    dilate_px: int = 2
    object_pixels: int = 0
    predicted_pixels: int = 0
    recalled: dict[float, int] = field(default_factory=dict)
    precise: dict[float, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.size = object_size(self.mesh)
        self.scene = MeshScene(np.asarray(self.mesh.vertices), np.asarray(self.mesh.triangles))
        self.recalled = dict.fromkeys(self.tolerances, 0)
        self.precise = dict.fromkeys(self.tolerances, 0)

    def add_view(self, camera: Camera, depth: np.ndarray, truth_from_world: np.ndarray) -> None:
        """One depth map (z-depth, 0 unknown, at `camera`'s size) from `camera` (in the reconstruction's
        world, the frame `truth_from_world` maps to the truth's)."""
        view = camera_in_frame(camera, truth_from_world)  # depths in the truth's units
        scale, _, _ = similarity_parts(truth_from_world)
        height, width = depth.shape
        if (width, height) != (view.width, view.height):
            view = view.scaled(width, height)
        truth = self.scene.intersect(view.rays()).hit.reshape(height, width)  # the object's pixels
        near_object = cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=self.dilate_px) > 0
        predicted = (depth > 0) & near_object  # the pixels scored: depth elsewhere is neither's business
        u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        z = scale * depth[predicted]
        in_camera = np.stack([u[predicted], v[predicted], np.ones_like(z)], axis=1) @ np.linalg.inv(view.k).T
        points = view.world_from_cam.apply(in_camera * z[:, None])
        distance = np.full(depth.shape, np.inf, np.float32)
        distance[predicted] = self.scene.distance(points)
        keep = np.zeros(depth.shape, bool)
        keep[predicted] = off_support(points, self.mesh, self.support_plane)
        self.object_pixels += int(truth.sum())
        self.predicted_pixels += int(keep.sum())
        for t in self.tolerances:
            close = distance < t * self.size
            self.recalled[t] += int((truth & close).sum())
            self.precise[t] += int((keep & close).sum())

    def scores(self, stage: str = "depth") -> StageScores:
        def share(count: int, total: int) -> float:
            return count / total if total else 0.0

        return StageScores(
            stage,
            self.predicted_pixels,
            self.object_pixels,
            {
                t: PRF.of(share(self.precise[t], self.predicted_pixels), share(self.recalled[t], self.object_pixels))
                for t in self.tolerances
            },
        )


@dataclass(frozen=True)
class RunScores:
    stages: list[StageScores]  # depth, fusion, asset, mesh
    samples: np.ndarray = field(repr=False)  # the observed true samples recall was scored on (truth frame)
    size: float  # the object's size (bounding-box diagonal), metres


def score_object_run(truth_dir: Path, results: dict[str, StageResult], *, samples: int = 100_000) -> RunScores:
    """Depth, fusion (the fused cloud in the object's grown box, support points left out), asset (its object
    cloud, whole) and mesh scores of a synthetic object run (`photoforge.synthetic.object_runs.run_to_mesh`)
    against the truth `make_object_capture` wrote in `truth_dir`."""
    from photoforge.geometry.mvs.depthmaps import load_view
    from photoforge.geometry.pointcloud import read_ply
    from photoforge.layout import FUSED_PLY, MESH_PLY, OBJECT_PLY, DepthViews, world_to_asset
    from photoforge.qa.pose_errors import read_strecha_dir
    from photoforge.qa.surface_scores import similarity_to_truth

    data = json.loads((truth_dir / "truth.json").read_text())
    mesh = o3d.io.read_triangle_mesh(truth_dir / data["object_mesh"])
    support = data["support_plane"]
    truth_cameras = read_strecha_dir(truth_dir / "gt_cameras")
    maps = DepthViews.read(results["depth"].dir)
    estimated, true = [], []
    for record in maps.usable:
        assert record.camera is not None
        estimated.append(Camera.from_json(record.camera).centre)
        true.append(truth_cameras[Path(record.name).name.removesuffix(".jpg")].centre)
    truth_from_world = similarity_to_truth(np.array(estimated), np.array(true))
    observed = observed_object_samples(mesh, np.array([c.centre for c in truth_cameras.values()]), support,
                                       count=samples)  # fmt: skip

    tally = DepthTally(mesh, support)
    for record in maps.usable:
        assert record.camera is not None and record.map is not None
        tally.add_view(Camera.from_json(record.camera), load_view(maps.dir / record.map)["depth"], truth_from_world)
    scores = [tally.scores("depth")]

    fused = transform_points(truth_from_world, read_ply(results["fusion"].dir / FUSED_PLY)[0])
    fused = fused[in_grown_box(fused, mesh)]
    scores.append(cloud_scores("fusion", fused[off_support(fused, mesh, support)], mesh, observed))
    isolated = transform_points(truth_from_world, read_ply(results["asset"].dir / OBJECT_PLY)[0])
    scores.append(cloud_scores("asset", isolated, mesh, observed))

    truth_from_asset = truth_from_world @ np.linalg.inv(world_to_asset(results["mesh"].dir))
    surface = o3d.io.read_triangle_mesh(results["mesh"].dir / MESH_PLY)
    surface.transform(truth_from_asset)
    scores.append(mesh_scores("mesh", surface, mesh, observed))
    return RunScores(scores, observed, object_size(mesh))
