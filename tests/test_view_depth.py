"""The bake's visibility from one distance buffer per view agrees with a ray per point and view."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pycolmap
import pytest

from photoforge.render.raycast import MeshScene
from photoforge.texturing.view_depth import view_depth

try:
    from photoforge.synthetic import ring_cameras  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    from support_synthetic import ring_cameras  # type: ignore[no-redef]

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def occluded_scene() -> dict:
    """A ball in front of a box, the cameras of a ring around both, and points on every surface."""
    ball = o3d.geometry.TriangleMesh.create_sphere(radius=0.6, resolution=40)
    box = o3d.geometry.TriangleMesh.create_box(1.2, 1.2, 1.2).translate([-0.2, -1.6, -0.6])
    both = ball + box
    both.compute_triangle_normals()
    samples = both.sample_points_uniformly(20_000, use_triangle_normal=True)
    vertices, faces = np.asarray(both.vertices), np.asarray(both.triangles)
    return {
        "scene": MeshScene(vertices, faces),
        "points": np.asarray(samples.points),
        "normals": np.asarray(samples.normals),
        "cameras": ring_cameras(6, 4.0, K, 640, 480),
    }


def _view(camera, points: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """In-frame points facing the camera (cos >= 0.1): their pixels, distances, cosines and row numbers."""
    pixels, z = camera.project(points)
    to_camera = camera.centre - points
    distance = np.linalg.norm(to_camera, axis=1)
    cos = np.abs(np.sum(normals * to_camera, axis=1)) / distance
    rows = np.flatnonzero(
        (z > 0) & (cos >= 0.1) & (pixels[:, 0] >= 0) & (pixels[:, 0] < 640) & (pixels[:, 1] >= 0) & (pixels[:, 1] < 480)
    )
    return pixels[rows], distance[rows], cos[rows], rows


@pytest.mark.parametrize("long_side", [640, 320])
def test_the_buffer_sees_what_a_ray_per_point_sees(occluded_scene: dict, long_side: int) -> None:
    scene, points, normals = occluded_scene["scene"], occluded_scene["points"], occluded_scene["normals"]
    agree, hidden_called_seen, occluded = [], 0, 0
    for camera in occluded_scene["cameras"]:
        pixels, distance, cos, rows = _view(camera, points, normals)
        by_ray = scene.visible(camera.centre, points[rows], tolerance=TOLERANCE)
        by_buffer = view_depth(scene, camera, None, long_side=long_side).sees(
            pixels, distance, cos, tolerance=TOLERANCE
        )
        agree.append((by_ray == by_buffer).mean())
        # deeply hidden: something lies at least 5 % of the way nearer along the point's own ray
        rays = np.concatenate(
            [np.broadcast_to(camera.centre, (len(rows), 3)), (points[rows] - camera.centre) / distance[:, None]], axis=1
        )
        deep = scene.intersect(rays).distance < 0.95 * distance
        occluded += int(deep.sum())
        hidden_called_seen += int((deep & by_buffer).sum())
    assert occluded > 2000  # the ball and the box hide much of each other and of their own backs
    assert min(agree) > 0.97, agree
    assert hidden_called_seen <= 0.002 * occluded, (hidden_called_seen, occluded)


def test_the_buffer_through_a_lens_is_the_pinhole_buffer(occluded_scene: dict) -> None:
    """A distortion-free COLMAP camera gives the pinhole camera's distances (the full-resolution bake)."""
    camera = occluded_scene["cameras"][0]
    lens = pycolmap.Camera(model="PINHOLE", width=640, height=480, params=[500.0, 500.0, 320.0, 240.0])
    pinhole = view_depth(occluded_scene["scene"], camera, None, long_side=320)
    through = view_depth(occluded_scene["scene"], camera, lens, long_side=320)
    assert through.distance.shape == pinhole.distance.shape == (240, 320)
    both = np.isfinite(pinhole.distance) & np.isfinite(through.distance)
    assert both.sum() > 10_000
    assert np.abs(pinhole.distance[both] - through.distance[both]).max() < 1e-4
    assert (np.isfinite(pinhole.distance) != np.isfinite(through.distance)).sum() <= 4


@pytest.mark.parametrize("distorted", [False, True])
def test_observe_keeps_only_points_in_front_and_agrees_with_rays(distorted: bool) -> None:
    """A camera standing on a floor, looking along it: half the floor's texels lie behind it (through a
    COLMAP lens their pixels are NaN). The bake's observe keeps only points in front and in frame, and
    the buffer and a ray per point keep nearly the same ones."""
    from photoforge.camera.model import Camera, Rigid3, look_at
    from photoforge.texturing.bake import TexelPoints, observe
    from photoforge.texturing.sources import PhotoSource

    floor = MeshScene(np.array([[-3.0, -3, 0], [3, -3, 0], [3, 3, 0], [-3, 3, 0]]), np.array([[0, 1, 2], [0, 2, 3]]))
    x, y = np.meshgrid(np.linspace(-2.9, 2.9, 300), np.linspace(-2.9, 2.9, 300))
    position = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)]).astype(np.float32)
    normal = np.broadcast_to(np.array([[0.0], [0.0], [1.0]], np.float32), position.shape).copy()
    points = TexelPoints(position, normal, np.zeros(x.size, np.float32))
    centre = np.array([0.0, 0.0, 0.4])
    rotation = look_at(centre, np.array([2.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    camera = Camera("floor", K, Rigid3(rotation, -rotation @ centre), 640, 480)
    params = [500.0, 500.0, 320.0, 240.0] + ([0.05, -0.01, 0.0, 0.0] if distorted else [0.0, 0.0, 0.0, 0.0])
    lens = pycolmap.Camera(model="OPENCV", width=640, height=480, params=params)
    image = np.full((480, 640, 3), 128, np.uint8)
    seen = {}
    for long_side in (0, 320):
        source = PhotoSource(image, camera, lens, sharpness=1.0)
        if long_side:
            source.depth = view_depth(floor, camera, lens, long_side=long_side)
        seen[long_side] = observe(source, points, floor, extent=8.0, min_cos=0.1).index
    behind = np.flatnonzero(position[0] <= 0.0)
    assert len(behind) > 40_000 and len(seen[320]) > 5_000
    for rows in seen.values():
        assert not np.isin(rows, behind).any()
        cam = camera.cam_from_world.apply(position[:, rows].T.astype(np.float64))
        assert np.all(cam[:, 2] > 0)
    both = np.intersect1d(seen[0], seen[320])
    assert len(both) >= 0.97 * max(len(seen[0]), len(seen[320]))
