"""Surfaces from points or depth maps (open3d), and the one mesh clean-up every surface goes through.

Later surfaces (from splats, from NeuS) reuse `cleanup`, so every asset gets the same repairs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import open3d as o3d
import pymeshlab

from photoforge.geometry.isolation import median_spacing, perpendicular


@dataclass(frozen=True)
class CleanupSettings:
    min_component_fraction: float = 0.1  # drop components smaller than this fraction of the bbox diagonal
    max_hole_edges: int = 100  # close holes up to this many boundary edges
    watertight: bool = False  # close every hole (it may not manage: the mesh stage checks and warns)
    target_faces: int = 200_000  # quadric decimation budget


FACES_PER_CELL_BUDGET = 4  # occupied octree cells allowed per face of the budget (Poisson: 2-3 faces a cell)


def octree_depth_for(points: np.ndarray, max_depth: int, face_budget: int) -> int:
    """The deepest Poisson octree, up to `max_depth`, whose cells the cloud occupies at most
    FACES_PER_CELL_BUDGET x `face_budget` times.

    Why: the octree spans the cloud's bounding box, so a fixed depth's resolution follows the extent.
    The sample's cloud lost its stray far points to the coarse-to-fine depth (extent 22 -> 8 units)
    and Poisson at depth 10 gave 2.07M faces instead of 355k: 76 s for the mesh stage instead of 9,
    to be decimated to 150k anyway.
    """
    if len(points) == 0:
        return max_depth
    low, extent = points.min(axis=0), float(np.ptp(points, axis=0).max())
    finest = np.floor((points - low) / max(extent / 2**max_depth, 1e-12)).astype(np.int64)
    for depth in range(max_depth, 4, -1):
        cells = finest >> (max_depth - depth)  # a cell of depth d holds 2^(D-d) cells of depth D per axis
        occupied = len(np.unique(cells[:, 0] << 42 | cells[:, 1] << 21 | cells[:, 2]))
        if occupied <= FACES_PER_CELL_BUDGET * face_budget:
            return depth
    return 5


POISSON_SCALE = 1.1  # open3d's default: the octree's cube is the cloud's bounding cube grown by this factor


def poisson_cell(points: np.ndarray, max_depth: int, face_budget: int | None) -> float:
    """The edge of a finest Poisson octree cell for this cloud (`poisson_surface`'s depth choice):
    the surface cannot follow the points closer than about this."""
    depth = max_depth if face_budget is None else octree_depth_for(points, max_depth, face_budget)
    return POISSON_SCALE * float(np.ptp(points, axis=0).max()) / 2**depth if len(points) else 0.0


def distance_to_cloud(points: np.ndarray, cloud: o3d.geometry.PointCloud) -> np.ndarray:
    """Per point (N x 3): the distance to the nearest point of `cloud`."""
    return np.asarray(o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points)).compute_point_cloud_distance(cloud))


def poisson_surface(
    cloud: o3d.geometry.PointCloud,
    depth: int,
    trim_quantile: float,
    *,
    max_gap_spacings: float = 0.0,
    face_budget: int | None = None,
) -> o3d.geometry.TriangleMesh:
    """Screened Poisson on an oriented cloud, low-density (unsupported) parts trimmed, cropped to the cloud.

    `max_gap_spacings` > 0 also drops the vertices farther from every point than that many median point
    spacings: Poisson spans what no camera saw with a smooth membrane (a web across a concave pocket,
    a bulge over an object's unseen back) that the density trim keeps where the membrane is short.
    `face_budget`: the depth is lowered while the cloud would give far more faces than that (`octree_depth_for`).

    One thread: open3d's threaded solver moves ~2% of the vertices by ~1e-6 and reorders them from run
    to run, and the density trim then cuts differently (a test once got two components instead of one);
    a cached stage must give the same mesh for the same cloud. Cost on 2 cores, 229k points: depth 8
    3.0 -> 3.9 s, depth 9 9.7 -> 14.6 s.
    """
    if face_budget is not None:
        depth = octree_depth_for(np.asarray(cloud.points), depth, face_budget)
    mesh, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
        cloud, depth=depth, scale=POISSON_SCALE, n_threads=1
    )
    densities = np.asarray(densities)
    if trim_quantile > 0 and len(densities):
        mesh.remove_vertices_by_mask(densities < np.quantile(densities, trim_quantile))
    if max_gap_spacings > 0 and len(mesh.vertices) and len(cloud.points) > 1:
        spacing = median_spacing(np.asarray(cloud.points))
        mesh.remove_vertices_by_mask(distance_to_cloud(np.asarray(mesh.vertices), cloud) > max_gap_spacings * spacing)
    bbox = cloud.get_axis_aligned_bounding_box()
    margin = 0.02 * np.linalg.norm(bbox.get_extent())
    bbox = o3d.geometry.AxisAlignedBoundingBox(bbox.get_min_bound() - margin, bbox.get_max_bound() + margin)
    return mesh.crop(bbox)


def tsdf_surface(
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    voxel: float,
    truncation_voxels: float = 4.0,
    min_weight: float = 1.0,
) -> o3d.geometry.TriangleMesh:
    """TSDF fusion of (depth, colour uint8, K, 4x4 cam_from_world) frames, marching cubes out.

    open3d's sparse VoxelBlockGrid (tensor API): the legacy ScalableTSDFVolume integrates nothing
    in open3d 0.20 (every extraction came back empty here), and a dense grid would need gigabytes
    at fine voxel sizes. Voxels seen by fewer than `min_weight` frames are dropped.
    """
    o3c = o3d.core
    grid = o3d.t.geometry.VoxelBlockGrid(
        attr_names=("tsdf", "weight", "color"),
        attr_dtypes=(o3c.float32, o3c.float32, o3c.float32),
        attr_channels=(1, 1, 3),
        voxel_size=voxel,
        block_resolution=8,
        block_count=4096,  # the hash map grows as needed
        device=o3c.Device("CPU:0"),
    )
    for depth, color, k, extrinsic in frames:
        if not (depth > 0).any():
            continue
        far = float(depth.max()) * 1.01 + 1e-6
        intrinsic = k.astype(np.float64).copy()
        intrinsic[:2, 2] -= 0.5  # COLMAP puts pixel centres at +0.5, open3d at integers
        intrinsic_t = o3c.Tensor(intrinsic)
        extrinsic_t = o3c.Tensor(np.ascontiguousarray(extrinsic, np.float64))
        depth_t = o3d.t.geometry.Image(o3c.Tensor(np.ascontiguousarray(depth, np.float32)))
        color_t = o3d.t.geometry.Image(o3c.Tensor(np.ascontiguousarray(color, np.float32) / 255.0))
        blocks = grid.compute_unique_block_coordinates(
            depth_t, intrinsic_t, extrinsic_t, 1.0, far, trunc_voxel_multiplier=truncation_voxels
        )
        grid.integrate(
            blocks, depth_t, color_t, intrinsic_t, intrinsic_t, extrinsic_t, 1.0, far,
            trunc_voxel_multiplier=truncation_voxels,
        )  # fmt: skip
    return grid.extract_triangle_mesh(weight_threshold=min_weight).to_legacy()


def cleanup(vertices: np.ndarray, faces: np.ndarray, settings: CleanupSettings) -> tuple[np.ndarray, np.ndarray]:
    """pymeshlab: floaters out, non-manifold parts repaired, holes closed, decimated, normals."""
    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(vertex_matrix=vertices.astype(np.float64), face_matrix=faces.astype(np.int32)))
    ms.meshing_remove_duplicate_vertices()
    ms.meshing_remove_duplicate_faces()
    ms.meshing_remove_null_faces()
    ms.meshing_remove_unreferenced_vertices()
    if settings.min_component_fraction > 0:
        ms.meshing_remove_connected_component_by_diameter(
            mincomponentdiag=pymeshlab.PercentageValue(100 * settings.min_component_fraction)
        )
    if ms.current_mesh().face_number() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int32)
    _repair_non_manifold(ms)
    hole_size = 1_000_000 if settings.watertight else settings.max_hole_edges
    _close_holes(ms, hole_size)
    if ms.current_mesh().face_number() > settings.target_faces:  # last: holes closed first add faces
        ms.meshing_decimation_quadric_edge_collapse(
            targetfacenum=settings.target_faces,
            preservenormal=True,
            preservetopology=settings.watertight,
            planarquadric=True,
        )
        _repair_non_manifold(ms)
        if settings.watertight:  # the repair removes faces: close what it opened
            _close_holes(ms, hole_size)
    ms.meshing_remove_unreferenced_vertices()
    ms.compute_normal_per_vertex()
    mesh = ms.current_mesh()
    return mesh.vertex_matrix(), mesh.face_matrix()


def _close_holes(ms: pymeshlab.MeshSet, hole_size: int) -> None:
    """Holes up to hole_size edges closed; the caller checks what is left (topology), as this may refuse."""
    if hole_size <= 0 or ms.current_mesh().face_number() == 0:
        return
    # pymeshlab refuses on meshes it still finds non-manifold: then the holes stay
    with contextlib.suppress(pymeshlab.PyMeshLabException):
        ms.meshing_close_holes(maxholesize=hole_size, selfintersection=False, newfaceselected=False)
    ms.set_selection_none()  # a selection would confine the decimation to it


def _repair_non_manifold(ms: pymeshlab.MeshSet) -> None:
    for _ in range(3):
        ms.meshing_repair_non_manifold_edges(method="Remove Faces")
        ms.meshing_repair_non_manifold_vertices()
        measures = ms.get_topological_measures()
        if measures["non_two_manifold_edges"] == 0 and measures["non_two_manifold_vertices"] == 0:
            return


def topology(vertices: np.ndarray, faces: np.ndarray) -> dict[str, int | bool]:
    """Manifoldness, holes and components, as pymeshlab measures them."""
    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(vertex_matrix=vertices.astype(np.float64), face_matrix=faces.astype(np.int32)))
    m = ms.get_topological_measures()
    manifold = m["non_two_manifold_edges"] == 0 and m["non_two_manifold_vertices"] == 0
    return {
        "faces": len(faces),
        "vertices": len(vertices),
        "manifold": bool(manifold),
        "watertight": bool(manifold and m["boundary_edges"] == 0),
        "boundary_edges": int(m["boundary_edges"]),
        "components": int(m["connected_components_number"]),
    }


def asset_frame(vertices: np.ndarray, rotations: list[np.ndarray], centres: list[np.ndarray]) -> np.ndarray:
    """4x4 world-to-asset transform: Y up (the cameras' mean up), centred, cameras on +Z (front)."""
    up = -np.mean([r[1] for r in rotations], axis=0)  # camera y points down in the image
    up /= np.linalg.norm(up)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    centre = (lo + hi) / 2
    towards = np.mean(centres, axis=0) - centre
    forward = towards - up * (towards @ up)
    if np.linalg.norm(forward) < 1e-9:  # cameras straight above: any horizontal direction
        forward = perpendicular(up)
    forward /= np.linalg.norm(forward)
    right = np.cross(up, forward)
    rotation = np.stack([right, up, forward])  # rows: asset x, y, z in world coordinates
    rotated = vertices @ rotation.T
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = -(rotated.min(axis=0) + rotated.max(axis=0)) / 2  # centre the asset's own bbox
    return transform
