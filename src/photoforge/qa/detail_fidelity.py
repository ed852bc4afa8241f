"""How faithful a low-poly level is to the high-res surface: its shading normals and its shape.

Measured at random points on the low-poly surface (area-weighted, not the texel centres the maps were
baked at), each compared with the closest point of the high-res surface.
"""

from __future__ import annotations

import numpy as np

from photoforge.render.raycast import MeshScene
from photoforge.texturing.tangents import HighResSurface, ShadedMesh, interpolate, shading_normals


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, samples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`samples` uniform random points on a mesh's surface: (points N x 3, faces N, barycentric weights N x 3)."""
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    corners = vertices[faces]
    area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    if area.sum() <= 0:
        face = rng.integers(0, len(faces), samples)
    else:
        face = rng.choice(len(faces), samples, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(samples)), rng.random(samples)
    weights = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], axis=1)
    points = np.einsum("nk,nkc->nc", weights, corners[face])
    return points, face, weights


def normal_errors(
    low: ShadedMesh, normal_map: np.ndarray, *, high: HighResSurface, samples: int = 100_000, seed: int = 0
) -> dict[str, float]:
    """Median angles (degrees) to the high-res normal at the closest high-res point: `own_deg` of the low-poly's
    interpolated vertex normals, `mapped_deg` of its normal-mapped shading normals (the map sampled bilinearly)."""
    points, face, weights = sample_surface(low.vertices, low.faces, samples, seed)
    own = interpolate(low.normals, low.faces, face, weights)
    mapped = shading_normals(face, weights, low, normal_map)
    nearest = high.scene.closest(points)
    truth = high.normals_at(nearest.face, nearest.barycentric)
    return {"own_deg": _median_angle(own, truth), "mapped_deg": _median_angle(mapped, truth)}


def surface_deviation(
    low_vertices: np.ndarray, low_faces: np.ndarray, *, high: MeshScene, samples: int = 100_000, seed: int = 0
) -> dict[str, float]:
    """Distances from the low-poly (its vertices and `samples` surface points) to the high-res surface, in the
    mesh's units: `hausdorff` (the largest, one-sided: low to high) and `mean`."""
    points, _, _ = sample_surface(low_vertices, low_faces, samples, seed)
    distance = high.distance(np.concatenate([np.asarray(low_vertices, np.float64), points]))
    return {"hausdorff": float(distance.max()), "mean": float(distance.mean())}


def _median_angle(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-20)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-20)
    cos = np.clip(np.sum(a * b, axis=1), -1.0, 1.0)
    return round(float(np.degrees(np.median(np.arccos(cos)))), 2)
