"""Reconstruction accuracy against a ground-truth mesh: distances and F-score (open3d, photoforge.render)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d
import pycolmap

from photoforge.render.raycast import MeshScene


@dataclass(frozen=True)
class SurfaceScores:
    threshold: float
    accuracy_mean: float  # mean distance from reconstructed points to the true surface
    completeness_mean: float  # mean distance from true surface samples to the reconstruction
    precision: float
    recall: float
    fscore: float
    points: int


def observed_surface_samples(
    mesh: o3d.geometry.TriangleMesh,
    centres: np.ndarray,
    count: int = 200_000,
    min_views: int = 2,
    max_incidence_deg: float = 75.0,
) -> np.ndarray:
    """True-surface samples that `min_views` cameras see, not at grazing angles: what stereo can rebuild."""
    sampled = mesh.sample_points_uniformly(count, use_triangle_normal=True)
    samples = np.asarray(sampled.points)
    normals = np.asarray(sampled.normals)
    cos_limit = np.cos(np.radians(max_incidence_deg))
    scene = MeshScene(np.asarray(mesh.vertices), np.asarray(mesh.triangles))
    seen = np.zeros(len(samples), np.int32)
    for centre in centres:
        direction = samples - centre
        facing = np.abs(np.sum(normals * direction, axis=1)) / np.linalg.norm(direction, axis=1) >= cos_limit
        seen += scene.visible(centre, samples, tolerance=1e-4, relative=1e-4) & facing
    return samples[seen >= min_views]


def fscore(precision: float, recall: float) -> float:
    """The harmonic mean of precision and recall (0 when both are 0)."""
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def cloud_distances(
    points: np.ndarray, mesh: o3d.geometry.TriangleMesh, samples: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each reconstructed point's distance to the true surface (precision's), and each true sample's to the
    nearest reconstructed point (recall's)."""
    to_surface = MeshScene(np.asarray(mesh.vertices), np.asarray(mesh.triangles)).distance(points)
    reconstruction = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    truth = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(samples, np.float64)))
    return to_surface, np.asarray(truth.compute_point_cloud_distance(reconstruction))


def surface_scores(
    points: np.ndarray, mesh: o3d.geometry.TriangleMesh, samples: np.ndarray, threshold: float
) -> SurfaceScores:
    to_surface, to_reconstruction = cloud_distances(points, mesh, samples)
    precision = float((to_surface < threshold).mean())
    recall = float((to_reconstruction < threshold).mean())
    return SurfaceScores(
        threshold,
        float(to_surface.mean()),
        float(to_reconstruction.mean()),
        precision,
        recall,
        fscore(precision, recall),
        len(points),
    )


def similarity_to_truth(estimated_centres: np.ndarray, true_centres: np.ndarray) -> np.ndarray:
    """4x4 similarity taking the reconstruction's frame to the ground truth's (pycolmap's estimate)."""
    sim = pycolmap.estimate_sim3d(estimated_centres.astype(np.float64), true_centres.astype(np.float64))
    if sim is None:
        raise ValueError("cannot align the reconstruction to the ground truth (degenerate camera centres)")
    transform = np.eye(4)
    transform[:3] = sim.matrix()
    return transform
