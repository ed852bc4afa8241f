"""An object's surface cut where it meets its support and placed in the asset frame.

The asset stage decided the frame from the points (isolation.json); the surface (Poisson bulges
below the ground, TSDF holds the whole scene) is cut here to the object side of the support and,
for surfaces not made from the object's points, to what lies near them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from photoforge.geometry.isolation import Support, place_on_support, similarity
from photoforge.geometry.pointcloud import read_ply
from photoforge.layout import IsolatedAsset

NEAR_SPACINGS = 3.0  # a surface vertex further than this many point spacings from every object point is not the object
ON_SUPPORT_SHARE = 0.01  # faces within this share of the object's size of the support plane lie on it


def support_of(isolated: IsolatedAsset) -> Support | None:
    if isolated.support is None or isolated.support_kind is None:
        return None
    return Support(np.array(isolated.support[:3]), float(isolated.support[3]), isolated.support_kind)


def cut_to_object(
    vertices: np.ndarray, faces: np.ndarray, isolated: IsolatedAsset, *, object_points: Path, near_points: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The surface on the object side of the support (open at the cut), near the object's points if asked."""
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    if near_points:
        points = read_ply(object_points)[0].astype(np.float64)
        tree = cKDTree(points)
        spacing = float(np.median(tree.query(points, k=2)[0][:, 1])) if len(points) > 1 else 0.0
        distance = tree.query(mesh.vertices, distance_upper_bound=NEAR_SPACINGS * spacing)[0]
        near = np.isfinite(distance)
        mesh.update_faces(near[mesh.faces].all(axis=1))
        mesh.remove_unreferenced_vertices()
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    support = support_of(isolated)
    if support is not None and len(faces):
        vertices, faces = clip_to_plane(vertices, faces, support)
    return vertices, faces


def clip_to_plane(vertices: np.ndarray, faces: np.ndarray, support: Support) -> tuple[np.ndarray, np.ndarray]:
    """Faces wholly behind the support go; vertices of the faces crossing it move onto it.

    A clamp rather than an exact slice (trimesh's needs shapely): the surface is dense, so the edge
    it leaves on the plane is as flat as a slice's, and the clean-up closes it flat for watertight.
    """
    distance = support.signed_distance(vertices)
    behind = distance < 0
    faces = faces[~behind[faces].all(axis=1)]
    vertices = vertices - np.minimum(distance, 0.0)[:, None] * support.normal
    used = np.unique(faces)
    remap = np.full(len(vertices), -1)
    remap[used] = np.arange(len(used))
    return vertices[used], remap[faces]


def frame_of(points: np.ndarray, rotation: np.ndarray, *, support: Support | None, scale: float | None) -> np.ndarray:
    """4x4 world-to-asset similarity: `rotation`, the support at y = 0 (floor) or z = 0 (wall) else the
    points' base at y = 0, their footprint centred, times the scale (metres per unit; None: 1)."""
    translation = place_on_support(points, rotation, support=support)
    return similarity(rotation, translation, scale or 1.0)


def object_frame(vertices: np.ndarray, isolated: IsolatedAsset) -> np.ndarray:
    """The asset frame of an object's surface, from the asset stage's decision."""
    assert isolated.rotation is not None  # an object always has one
    return frame_of(vertices, np.array(isolated.rotation), support=support_of(isolated), scale=isolated.scale)


def support_area_share(vertices: np.ndarray, faces: np.ndarray, isolated: IsolatedAsset) -> float | None:
    """The share of the surface (asset frame) lying flat on the support and facing away from it: ground or
    wall left in the asset. None without a support."""
    support = support_of(isolated)
    if support is None or len(faces) == 0:
        return None
    axis = 1 if support.kind == "floor" else 2
    corners = vertices[faces]
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    areas = np.linalg.norm(cross, axis=1) / 2
    facing = cross[:, axis] / np.maximum(2 * areas, 1e-30)
    size = float(np.ptp(vertices, axis=0).max())
    on_support = (corners[:, :, axis].mean(axis=1) < ON_SUPPORT_SHARE * size) & (facing > 0.9)
    return round(float(areas[on_support].sum() / max(areas.sum(), 1e-30)), 4)
