"""Point-cloud files and clean-up: the standard binary PLY (plyfile), open3d for filtering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open3d as o3d
from plyfile import PlyData, PlyElement


def write_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray, normals: np.ndarray) -> None:
    """Binary PLY: float x y z, float nx ny nz, uchar red green blue (what MeshLab, CloudCompare read)."""
    vertex = np.empty(
        len(xyz),
        dtype=[
            ("x", "f4"), ("y", "f4"), ("z", "f4"),
            ("nx", "f4"), ("ny", "f4"), ("nz", "f4"),
            ("red", "u1"), ("green", "u1"), ("blue", "u1"),
        ],
    )  # fmt: skip
    for i, axis in enumerate("xyz"):
        vertex[axis] = xyz[:, i]
        vertex[f"n{axis}"] = normals[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertex[channel] = rgb[:, i]
    PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(str(path))


def read_ply(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vertex = PlyData.read(str(path))["vertex"]
    xyz = np.stack([vertex[a] for a in "xyz"], axis=1)
    normals = np.stack([vertex[f"n{a}"] for a in "xyz"], axis=1)
    rgb = np.stack([vertex[c] for c in ("red", "green", "blue")], axis=1)
    return xyz, rgb, normals


def to_open3d(xyz: np.ndarray, rgb: np.ndarray, normals: np.ndarray) -> o3d.geometry.PointCloud:
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(rgb.astype(np.float64) / 255.0)
    cloud.normals = o3d.utility.Vector3dVector(normals.astype(np.float64))
    return cloud


def from_open3d(cloud: o3d.geometry.PointCloud) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xyz = np.asarray(cloud.points)
    rgb = (np.clip(np.asarray(cloud.colors), 0, 1) * 255 + 0.5).astype(np.uint8)
    normals = np.asarray(cloud.normals)
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    return xyz, rgb, np.where(norm > 0, normals / np.maximum(norm, 1e-12), 0)


def clean(
    cloud: o3d.geometry.PointCloud, voxel_size: float, outlier_neighbours: int, outlier_std_ratio: float
) -> o3d.geometry.PointCloud:
    """Optional voxel downsampling, then statistical outlier removal (open3d)."""
    if voxel_size > 0:
        cloud = cloud.voxel_down_sample(voxel_size)
    if outlier_neighbours > 0 and len(cloud.points) > outlier_neighbours:
        cloud, _ = cloud.remove_statistical_outlier(outlier_neighbours, outlier_std_ratio)
    return cloud
