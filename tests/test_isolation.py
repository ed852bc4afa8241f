"""Object or scene, the support plane and what isolation removes, on clouds with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from photoforge.camera.model import Camera, Rigid3
from photoforge.geometry import isolation
from photoforge.synthetic import look_at

FOUNTAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "fountain-P11"
K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])


def _camera(centre: np.ndarray, target: np.ndarray, name: str = "c") -> Camera:
    rotation = look_at(centre, target, np.array([0.0, 0.0, 1.0]))
    return Camera(name, K, Rigid3(rotation, -rotation @ centre), 640, 480)


def _ring(count: int, *, span_deg: float = 360.0, radius: float = 1.2, height: float = 0.6) -> list[Camera]:
    target = np.array([0.0, 0.0, 0.15])
    step = span_deg / count if span_deg >= 360 else span_deg / (count - 1)
    cameras = []
    for i in range(count):
        azimuth = math.radians(-span_deg / 2 + i * step)
        centre = np.array([radius * math.sin(azimuth), -radius * math.cos(azimuth), height + 0.1 * (i % 3)])
        cameras.append(_camera(centre, target, f"{i:03d}"))
    return cameras


def test_a_walk_round_an_object_is_an_object() -> None:
    decision = isolation.decide_kind(_ring(24))
    assert decision.kind == "object"
    assert decision.surround_deg > 300
    assert np.linalg.norm(decision.centre - [0, 0, 0.15]) < 0.05


def test_cameras_on_one_side_are_a_scene() -> None:
    decision = isolation.decide_kind(_ring(12, span_deg=110))
    assert decision.kind == "scene"
    assert decision.converging_share == 1.0  # they do look at one place: the surround decides
    assert "one side" in decision.reason


def test_cameras_along_a_street_are_a_scene() -> None:
    cameras = [_camera(np.array([x, 0.0, 1.5]), np.array([x + 0.3, 5.0, 1.5])) for x in np.linspace(0, 10, 12)]
    decision = isolation.decide_kind(cameras)
    assert decision.kind == "scene"


@pytest.mark.skipif(not FOUNTAIN.exists(), reason="needs ../shared/data")
def test_fountain_ground_truth_cameras_are_a_scene() -> None:
    cameras = []
    for path in sorted((FOUNTAIN / "gt_cameras").glob("*.camera")):
        rows = np.loadtxt(path, max_rows=8)
        world_from_cam = Rigid3(rows[4:7], rows[7])
        cameras.append(Camera(path.stem, rows[:3], world_from_cam.inverse(), 3072, 2048))
    decision = isolation.decide_kind(cameras)
    assert decision.kind == "scene", decision.evidence()
    assert decision.converging_share > 0.9  # a facade the cameras converge on, seen from one side


def _box_on_ground(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 0.2 x 0.2 x 0.3 box (top face 0.04 m^2) on a 1.2 m ground plane: points, and which are the box."""
    ground = np.column_stack([rng.uniform(-0.6, 0.6, (40000, 2)), rng.normal(0, 0.001, 40000)])
    faces = []
    for axis in range(3):
        for side in (-1, 1):
            p = rng.uniform(-1, 1, (3000, 3))
            p[:, axis] = side
            faces.append(p)
    box = np.concatenate(faces) * [0.1, 0.1, 0.15] + [0, 0, 0.15]
    box = box[box[:, 2] > 0.001]  # the bottom face is hidden in the ground
    points = np.concatenate([ground, box])
    return points, np.arange(len(points)) >= len(ground)


def test_the_ground_is_the_support_not_the_box_top() -> None:
    points, _ = _box_on_ground(np.random.default_rng(1))
    cameras = _ring(24)
    support = isolation.find_support(points, cameras, up=isolation.cameras_up(cameras), threshold=0.005)
    assert support is not None and support.kind == "floor"
    assert abs(support.normal @ [0, 0, 1] - 1) < 1e-3  # towards the cameras
    assert abs(support.offset) < 0.003


def test_isolation_keeps_the_box_and_drops_ground_and_floater() -> None:
    rng = np.random.default_rng(2)
    points, is_box = _box_on_ground(rng)
    floater = rng.normal([0.35, 0.0, 0.3], 0.01, (300, 3))
    points = np.concatenate([points, floater])
    is_box = np.concatenate([is_box, np.zeros(len(floater), bool)])
    cameras = _ring(24)
    support = isolation.find_support(points, cameras, up=isolation.cameras_up(cameras), threshold=0.005)
    inside = np.linalg.norm(points - [0, 0, 0.15], axis=1) < 0.5
    spacing = isolation.median_spacing(points[is_box])
    cut = isolation.isolate(points, inside=inside, support=support, band=0.01, spacing=spacing, keep_floaters=False)
    kept_box = np.mean(cut.keep[is_box])
    assert kept_box > 0.9
    assert not cut.keep[~is_box].any() or np.mean(cut.keep[~is_box]) < 0.002
    assert cut.removed["floaters"] >= 300
    assert cut.removed["support"] > 0 and cut.removed["outside_region"] > 0


def test_a_stem_cut_off_under_its_cap_stays_and_a_floater_under_the_cap_goes() -> None:
    """A mushroom: a wide cap with many points, a thin stem on the ground with few, a gap between them
    (the junction no camera saw). The stem stands on the support inside the cap's footprint; a blob of
    noise in the air under the cap does not touch the support; one beside the object is outside it."""
    rng = np.random.default_rng(4)
    ground = np.column_stack([rng.uniform(-0.6, 0.6, (40000, 2)), rng.normal(0, 0.001, 40000)])
    cap = rng.normal(0, 1, (12000, 3))
    cap = cap / np.linalg.norm(cap, axis=1, keepdims=True) * [0.15, 0.15, 0.4]  # tall: the stem reaches 0.27
    cap = cap[cap[:, 2] > 0] + [0, 0, 0.22]  # the dome's top half, from 0.22 m up
    angle, z = rng.uniform(0, 2 * math.pi, 1100), rng.uniform(0.0, 0.17, 1100)  # a sixth of the cap's points
    stem = np.column_stack([0.03 * np.cos(angle), 0.03 * np.sin(angle), z])  # up to 0.17 m: 5 cm short of the cap
    floating = rng.normal([0.02, 0.06, 0.11], 0.006, (200, 3))
    beside = rng.normal([0.35, 0.0, 0.09], 0.01, (300, 3)) * [1, 1, 0] + np.column_stack(
        [np.zeros(300), np.zeros(300), rng.uniform(0.0, 0.18, 300)]
    )
    points = np.concatenate([ground, cap, stem, floating, beside])
    part = np.repeat([0, 1, 2, 3, 4], [len(ground), len(cap), len(stem), len(floating), len(beside)])
    cameras = _ring(24)
    support = isolation.find_support(points, cameras, up=isolation.cameras_up(cameras), threshold=0.005)
    inside = np.linalg.norm(points - [0, 0, 0.15], axis=1) < 0.5
    spacing = isolation.median_spacing(points[(part == 1) | (part == 2)])
    cut = isolation.isolate(points, inside=inside, support=support, band=0.01, spacing=spacing, keep_floaters=False)
    assert np.mean(cut.keep[part == 1]) > 0.95  # the cap
    assert np.mean(cut.keep[(part == 2) & (points[:, 2] > 0.03)]) > 0.9  # the stem above the support band
    assert np.mean(cut.keep[part == 3]) < 0.05  # in the air under the cap
    assert np.mean(cut.keep[part == 4]) < 0.05  # standing on the table beside the mushroom


def test_a_wall_gives_the_front_and_keeps_up() -> None:
    rng = np.random.default_rng(3)
    wall = np.column_stack([rng.uniform(-0.6, 0.6, 30000), rng.normal(0, 0.001, 30000), rng.uniform(0, 1.2, 30000)])
    head = rng.normal(0, 1, (5000, 3))
    head = head / np.linalg.norm(head, axis=1, keepdims=True) * 0.12 + [0, 0.0, 0.6]
    head = head[head[:, 1] < 0]  # the half in front of the wall (cameras at y < 0)
    points = np.concatenate([wall, head])
    cameras = [_camera(c, np.array([0.0, -0.05, 0.6])) for c in _front_half()]
    up = isolation.cameras_up(cameras)
    support = isolation.find_support(points, cameras, up=up, threshold=0.005)
    assert support is not None and support.kind == "wall"
    rotation = isolation.object_rotation(head, cameras, support=support, up=up)
    assert rotation[2] @ [0, -1, 0] > 0.999  # front: away from the wall, towards the cameras
    assert rotation[1] @ [0, 0, 1] > 0.999  # up stays up
    translation = isolation.place_on_support(head, rotation, support=support)
    local = head @ rotation.T + translation
    assert local[:, 2].min() > -0.003  # the wall at z = 0, the object in front of it


def _front_half() -> list[np.ndarray]:
    return [
        np.array([1.0 * math.sin(a), -1.0 * math.cos(a), 0.6 + 0.3 * math.sin(3 * a)])
        for a in np.radians(np.linspace(-60, 60, 12))
    ]


def test_a_camera_sees_the_same_pixels_in_a_scaled_asset_frame() -> None:
    """The bake and the left-out scores pose the photos in the asset frame, metres: a similarity, not a rigid map."""
    from photoforge.camera.model import camera_in_frame, camera_in_world

    camera = _camera(np.array([1.0, -2.0, 0.8]), np.array([0.1, 0.0, 0.2]))
    rotation = look_at(np.array([0.3, 1.0, 0.5]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
    frame = isolation.similarity(rotation, np.array([0.2, -0.4, 1.5]), 0.05)  # SfM units -> metres
    points = np.random.default_rng(4).normal([0.1, 0.0, 0.2], 0.2, (50, 3))
    in_frame = points @ frame[:3, :3].T + frame[:3, 3]
    pixels, depth = camera.project(points)
    framed = camera_in_frame(camera, frame)
    pixels_framed, depth_framed = framed.project(in_frame)
    assert np.allclose(pixels, pixels_framed, atol=1e-6)
    assert np.allclose(depth_framed, 0.05 * depth)  # depths in metres
    back = camera_in_world(framed, frame)
    assert np.allclose(back.project(points)[0], pixels, atol=1e-6)
