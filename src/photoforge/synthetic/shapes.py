"""Object shapes in metres, Z up, standing on z = 0: closed meshes from signed distances.

Each shape is a signed distance (negative inside) meshed by marching cubes, so unions, holes and
overhangs cost one line each and every mesh is closed. The solid is cut by z >= 0 (and by y >= 0
for the wall-mounted bust), so a base lies exactly on its support plane: ground truth for "the
object alone, upright, in metres".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import open3d as o3d
from scipy.interpolate import PchipInterpolator
from skimage.measure import marching_cubes

Distance = Callable[[np.ndarray], np.ndarray]  # N x 3 points -> N signed distances (approximate)

TABLE_SHAPES = ("vase", "box", "mushroom", "duck", "arch", "ring")
WALL_SHAPES = ("bust",)
SHAPES = TABLE_SHAPES + WALL_SHAPES


# --- signed distances (negative inside) ------------------------------------------------------------


def _ellipsoid(p: np.ndarray, centre: tuple[float, float, float], radii: tuple[float, float, float]) -> np.ndarray:
    """Approximate distance to an ellipsoid (exact zero set; scaled by its smallest radius)."""
    radii_array = np.asarray(radii)
    return (np.linalg.norm((p - centre) / radii_array, axis=1) - 1.0) * radii_array.min()


def _rounded_box(p: np.ndarray, half: tuple[float, float, float], radius: float) -> np.ndarray:
    q = np.abs(p) - (np.asarray(half) - radius)
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0) - radius


def _capsule(p: np.ndarray, a: tuple[float, float, float], b: tuple[float, float, float], radius: float) -> np.ndarray:
    a_array, ab = np.asarray(a), np.subtract(b, a)
    t = np.clip((p - a_array) @ ab / (ab @ ab), 0, 1)
    return np.linalg.norm(p - a_array - t[:, None] * ab, axis=1) - radius


def _smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Union with a fillet of about `k` metres where the parts meet (polynomial smooth minimum)."""
    h = np.maximum(k - np.abs(a - b), 0) / k
    return np.minimum(a, b) - h * h * k / 4


def _rotate_z(p: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return p @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _vase(p: np.ndarray) -> np.ndarray:
    """A surface of revolution with a belly, a waist and a flared lip, 0.32 m tall."""
    profile = PchipInterpolator([0, 0.03, 0.11, 0.2, 0.26, 0.32], [0.065, 0.085, 0.11, 0.06, 0.05, 0.075])
    z = np.clip(p[:, 2], 0, 0.32)
    side = np.linalg.norm(p[:, :2], axis=1) - profile(z)
    return np.maximum(side, p[:, 2] - 0.32)


def _box(p: np.ndarray) -> np.ndarray:
    """A rounded box, flat faces, turned 20 degrees about z, 0.22 m tall."""
    return _rounded_box(_rotate_z(p, np.radians(20)) - (0, 0, 0.11), (0.13, 0.085, 0.11), 0.018)


def _mushroom(p: np.ndarray) -> np.ndarray:
    """A flared stem under an overhanging cap, 0.27 m tall."""
    flare = 0.038 + 0.025 * np.exp(-p[:, 2] / 0.03)
    stem = np.maximum(np.linalg.norm(p[:, :2], axis=1) - flare, p[:, 2] - 0.2)
    cap = np.maximum(_ellipsoid(p, (0.01, 0, 0.17), (0.15, 0.14, 0.1)), 0.17 - p[:, 2])
    return _smooth_union(stem, cap, 0.02)


def _duck(p: np.ndarray) -> np.ndarray:
    """Body, head, beak and tail blobs: asymmetric, 0.26 m tall."""
    body = _ellipsoid(p, (0, 0, 0.075), (0.14, 0.095, 0.085))
    head = _ellipsoid(p, (0.095, 0, 0.2), (0.06, 0.055, 0.06))
    beak = _ellipsoid(p, (0.165, 0, 0.19), (0.045, 0.03, 0.016))
    tail = _ellipsoid(p, (-0.13, 0, 0.13), (0.045, 0.04, 0.025))
    neck = _capsule(p, (0.06, 0, 0.1), (0.09, 0, 0.19), 0.035)
    shape = _smooth_union(_smooth_union(body, neck, 0.03), head, 0.02)
    return _smooth_union(_smooth_union(shape, tail, 0.03), beak, 0.01)


def _arch(p: np.ndarray) -> np.ndarray:
    """A rounded slab with a round tunnel through it: two legs and a span, 0.24 m tall."""
    slab = _rounded_box(p - (0, 0, 0.12), (0.15, 0.055, 0.12), 0.015)
    tunnel = np.linalg.norm(p[:, [0, 2]], axis=1) - 0.08
    return np.maximum(slab, -tunnel)


def _ring(p: np.ndarray) -> np.ndarray:
    """A torus standing on its rim in a small plinth: a hole seen from most sides, 0.3 m tall."""
    centre_z = 0.165
    q = np.stack([np.linalg.norm(p[:, [0, 2]] - (0, centre_z), axis=1) - 0.12, p[:, 1]], axis=1)
    torus = np.linalg.norm(q, axis=1) - 0.035
    plinth = _rounded_box(p - (0, 0, 0.015), (0.07, 0.06, 0.015), 0.008)
    return _smooth_union(torus, plinth, 0.02)


def _bust(p: np.ndarray) -> np.ndarray:
    """A horned head on a neck coming out of a wall at y = 0 (a hunting trophy), 0.38 m tall."""
    neck = _ellipsoid(p, (0, 0, 0.125), (0.1, 0.11, 0.13))
    head = _ellipsoid(p, (0, 0.1, 0.22), (0.07, 0.085, 0.07))
    snout = _ellipsoid(p, (0.005, 0.2, 0.19), (0.04, 0.065, 0.04))
    ears = np.minimum(
        _ellipsoid(p, (0.085, 0.08, 0.27), (0.045, 0.015, 0.022)),
        _ellipsoid(p, (-0.085, 0.08, 0.27), (0.045, 0.015, 0.022)),
    )
    horns = np.minimum(
        _capsule(p, (0.035, 0.1, 0.28), (0.1, 0.07, 0.365), 0.014),
        _capsule(p, (-0.035, 0.1, 0.28), (-0.09, 0.075, 0.36), 0.014),
    )
    shape = _smooth_union(_smooth_union(neck, head, 0.04), snout, 0.03)
    shape = _smooth_union(_smooth_union(shape, ears, 0.015), horns, 0.012)
    return np.maximum(shape, -p[:, 1])  # flat back against the wall


DISTANCES: dict[str, Distance] = {
    "vase": _vase,
    "box": _box,
    "mushroom": _mushroom,
    "duck": _duck,
    "arch": _arch,
    "ring": _ring,
    "bust": _bust,
}


# --- meshing ---------------------------------------------------------------------------------------


def shape_mesh(shape: str, *, voxel: float = 0.003) -> o3d.geometry.TriangleMesh:
    """The closed mesh of `shape` (one of SHAPES) in metres, its base on z = 0, vertex normals set."""
    if shape not in DISTANCES:
        raise ValueError(f"unknown shape {shape!r}: one of {', '.join(SHAPES)}")
    distance = DISTANCES[shape]

    def solid(p: np.ndarray) -> np.ndarray:
        return np.maximum(distance(p), -p[:, 2])  # nothing below the support

    # A coarse pass finds the solid; the fine grid covers it with a margin.
    coarse = _samples(np.array([-0.5, -0.5, 0.0]), np.array([0.5, 0.5, 0.7]), 4 * voxel)
    points = _grid_points(coarse).reshape(-1, 3)
    inside = points[solid(points) < 4 * voxel]
    box_lo, box_hi = np.array([a[1] for a in coarse]), np.array([a[-2] for a in coarse])
    if len(inside) == 0 or (inside[:, :2].min(axis=0) < box_lo[:2]).any() or (inside.max(axis=0) > box_hi).any():
        raise ValueError(f"shape {shape!r} is empty or leaves its meshing box")
    axes = _samples(inside.min(axis=0) - 8 * voxel, inside.max(axis=0) + 8 * voxel, voxel)
    values = solid(_grid_points(axes).reshape(-1, 3)).reshape([len(a) for a in axes])
    vertices, faces, _, _ = marching_cubes(values, level=0.0, spacing=(voxel,) * 3)
    vertices += [axis[0] for axis in axes]
    for axis in (1, 2):  # exact contact with the cut planes (float error of the offsets)
        vertices[np.abs(vertices[:, axis]) < 1e-6, axis] = 0.0
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces))
    mesh.remove_duplicated_vertices()
    mesh.remove_degenerate_triangles()
    mesh.remove_unreferenced_vertices()
    mesh.compute_vertex_normals()
    return mesh


def _samples(lo: np.ndarray, hi: np.ndarray, step: float) -> list[np.ndarray]:
    """Sample positions per axis at half-step offsets from 0: a cut plane x = 0 falls between samples,
    where marching cubes interpolates a linear distance exactly."""
    return [
        (np.arange(np.floor(a / step) - 1, np.ceil(b / step) + 1) + 0.5) * step for a, b in zip(lo, hi, strict=True)
    ]


def _grid_points(axes: list[np.ndarray]) -> np.ndarray:
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
