"""Free-space carving (photoforge.geometry.visibility): what a camera saw through goes, the surface it saw stays.

One camera looks down +z at a wall 2 m away with a post 1 m away in front of it. Its depth map, like
the sweep's, loses the post's outer 2 pixels to the wall.
"""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest
from pydantic import ValidationError

from photoforge.camera.model import Camera, Rigid3
from photoforge.geometry.pointcloud import write_ply
from photoforge.geometry.surfaces import FreeSpaceCarving, carve_seen_through
from photoforge.geometry.visibility import seen_through_counts, visibility_votes
from photoforge.stages.fusion import FusionParams
from photoforge.stages.mesh import MeshParams

SIZE, FOCAL = 64, 100.0
POST = (24, 40)  # the post's true pixel columns (and rows)
ERODED = 2  # pixels of the post's rim the depth map gives to the wall


@pytest.fixture(scope="module")
def camera() -> Camera:
    k = np.array([[FOCAL, 0, SIZE / 2], [0, FOCAL, SIZE / 2], [0, 0, 1]])
    return Camera("view", k, Rigid3(np.eye(3), np.zeros(3)), SIZE, SIZE)


@pytest.fixture(scope="module")
def depth() -> np.ndarray:
    depth = np.full((SIZE, SIZE), 2.0, np.float32)
    lo, hi = POST[0] + ERODED, POST[1] - ERODED
    depth[lo:hi, lo:hi] = 1.0
    return depth


def at_pixel(u: float, v: float, z: float) -> np.ndarray:
    """The world point (camera = world here) that projects to pixel (u, v) at depth z."""
    return np.array([(u - SIZE / 2) * z / FOCAL, (v - SIZE / 2) * z / FOCAL, z])


def test_a_point_in_front_of_the_wall_is_seen_through_and_points_on_surfaces_are_not(camera, depth):
    points = np.stack(
        [
            at_pixel(8.5, 8.5, 1.5),  # in the air before the wall
            at_pixel(8.5, 8.5, 2.0),  # on the wall
            at_pixel(32.5, 32.5, 1.0),  # on the post
            at_pixel(32.5, 32.5, 1.5),  # behind the post: hidden, not seen through
            at_pixel(8.5, 8.5, 1.995),  # on the wall within the margin
        ]
    )
    counts = seen_through_counts(points, [(camera, depth)], window=5, margin=0.01)
    assert counts.tolist() == [1, 0, 0, 0, 0]


def test_a_pixel_without_depth_is_no_vote(camera, depth):
    """No depth (masked out, unmatched) says nothing about what is there: neither seen through nor agreeing."""
    holed = depth.copy()
    holed[:16, :16] = 0.0
    point = at_pixel(8.5, 8.5, 1.5)[None]
    votes = visibility_votes(point, [(camera, holed)], window=5, margin=0.01)
    assert (votes.through.tolist(), votes.agree.tolist()) == ([0], [0])
    assert visibility_votes(point, [(camera, depth)], window=5, margin=0.01).through.tolist() == [1]


def test_free_space_windows_must_be_odd():
    """An even window has no centre pixel: the params refuse it rather than shift by half a pixel."""
    with pytest.raises(ValidationError, match="odd"):
        FusionParams(free_space_window=4)
    with pytest.raises(ValidationError, match="odd"):
        MeshParams(free_space_window=6)
    assert MeshParams(free_space_window=7).free_space_window == 7


def test_the_window_keeps_the_rim_the_depth_map_lost(camera, depth):
    """The post's rim projects where the map holds the wall: one pixel's depth says "seen through"."""
    rim = np.stack([at_pixel(POST[0] + 0.5, 32.5, 1.0), at_pixel(32.5, POST[1] - 0.5, 1.0)])
    assert seen_through_counts(rim, [(camera, depth)], window=1, margin=0.01).tolist() == [1, 1]
    assert seen_through_counts(rim, [(camera, depth)], window=2 * ERODED + 1, margin=0.01).tolist() == [0, 0]


def test_fusion_s_rule_keeps_a_rim_point_its_matches_agree_with_and_drops_a_floating_one(camera, depth):
    """The fusion stage drops a point when more views saw through it than agree with it: the rim point
    is seen through by the one map that lost the post's rim and agreed with by two that did not; the
    point floating before the wall is seen through by all three and agreed with by none."""
    whole = np.full((SIZE, SIZE), 2.0, np.float32)
    whole[POST[0] : POST[1], POST[0] : POST[1]] = 1.0
    views = [(camera, depth), (camera, whole), (camera, whole)]
    points = np.stack([at_pixel(POST[0] + 0.5, 32.5, 1.0), at_pixel(8.5, 8.5, 1.5)])
    votes = visibility_votes(points, views, window=1, margin=0.005, tolerance=0.01)
    assert votes.through.tolist() == [1, 3]
    assert votes.agree.tolist() == [2, 0]
    assert votes.contradicted().tolist() == [False, True]


def _plate(*, z: float, columns: tuple[float, float], rows: tuple[float, float], steps: int = 8) -> np.ndarray:
    """A grid of points on a plate at depth z, spanning those pixel columns and rows."""
    us, vs = np.meshgrid(np.linspace(*columns, steps), np.linspace(*rows, steps))
    return np.stack([at_pixel(u, v, z) for u, v in zip(us.ravel(), vs.ravel(), strict=True)])


def _mesh_of(points: np.ndarray, steps: int = 8) -> o3d.geometry.TriangleMesh:
    """The plate's grid as triangles."""
    faces = []
    for r in range(steps - 1):
        for c in range(steps - 1):
            i = r * steps + c
            faces += [(i, i + 1, i + steps), (i + 1, i + steps + 1, i + steps)]
    return o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(points), o3d.utility.Vector3iVector(np.array(faces)))


def test_carving_drops_a_membrane_and_keeps_the_wall_and_a_part_with_points(camera, depth, tmp_path):
    """A membrane (no points, seen through) goes; the wall stays; a plate in the air that has points (a
    thin part whose depth fell through to the wall in this view but that other views matched) stays."""
    wall = _plate(z=2.0, columns=(1, 20), rows=(1, 20))
    membrane = _plate(z=1.5, columns=(44, 62), rows=(2, 20))
    thin_part = _plate(z=1.5, columns=(44, 62), rows=(44, 62))
    surface = _mesh_of(wall) + _mesh_of(membrane) + _mesh_of(thin_part)
    cloud = np.concatenate([wall, thin_part])  # the fused points: none on the membrane
    ply = tmp_path / "object.ply"
    write_ply(ply, cloud, np.full((len(cloud), 3), 128, np.uint8), np.tile([0.0, 0.0, -1.0], (len(cloud), 1)))

    settings = FreeSpaceCarving(min_views=1, window=5, margin=0.01, keep_within=1.5, poisson_depth=8, face_budget=None)
    carved = carve_seen_through(surface, ply, [(camera, depth)], settings=settings)
    kept = np.asarray(carved.vertices)
    assert len(kept) == len(wall) + len(thin_part)
    assert np.allclose(np.sort(kept[:, 2]), np.sort(cloud[:, 2]))
    assert len(carved.triangles) == 2 * 2 * 7 * 7  # the wall's and the thin part's triangles, whole


def test_a_coarse_poisson_octree_widens_what_counts_as_near_the_points(camera, depth, tmp_path):
    """Poisson cannot follow the points closer than a cell: with cells as big as the gap between the
    membrane and the points (a cloud far denser than the octree, as monstree's), it is not carved."""
    wall = _plate(z=2.0, columns=(1, 20), rows=(1, 20))
    membrane = _plate(z=1.8, columns=(1, 20), rows=(1, 20))  # 0.2 before the wall: 3.7 point spacings
    ply = tmp_path / "object.ply"
    write_ply(ply, wall, np.full((len(wall), 3), 128, np.uint8), np.tile([0.0, 0.0, -1.0], (len(wall), 1)))
    fine = FreeSpaceCarving(min_views=1, window=5, margin=0.01, keep_within=2.5, poisson_depth=10, face_budget=None)
    coarse = FreeSpaceCarving(min_views=1, window=5, margin=0.01, keep_within=2.5, poisson_depth=1, face_budget=None)
    surface = _mesh_of(wall) + _mesh_of(membrane)
    assert len(carve_seen_through(surface, ply, [(camera, depth)], settings=fine).vertices) == len(wall)
    surface = _mesh_of(wall) + _mesh_of(membrane)
    assert len(carve_seen_through(surface, ply, [(camera, depth)], settings=coarse).vertices) == len(wall) + len(
        membrane
    )
