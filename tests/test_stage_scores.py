"""The object test bed's handheld layout and per-stage scores (photoforge.qa.stage_scores).

The handheld walk-round is one ring with bounded jitter, every view on the object; the scores give
1 for the truth against itself and lose what is taken away (half the samples, a part, a shift).
"""

from __future__ import annotations

import math

import numpy as np
import open3d as o3d
import pytest

from photoforge.camera.model import Camera, Rigid3, look_at
from photoforge.qa.pose_errors import read_strecha_dir
from photoforge.qa.stage_scores import (
    PRF,
    DepthTally,
    cloud_scores,
    mesh_scores,
    object_size,
    observed_object_samples,
)
from photoforge.render.raycast import MeshScene
from photoforge.synthetic import make_object_capture, shape_mesh
from photoforge.synthetic.tabletop import HANDHELD_ELEVATION, HANDHELD_JITTER, _handheld_cameras

VIEWS, WIDTH, HEIGHT = 12, 320, 240
TABLE = (0.0, 0.0, 1.0, 0.0)


@pytest.fixture(scope="module")
def box() -> o3d.geometry.TriangleMesh:
    return shape_mesh("box", voxel=0.006)


def _k() -> np.ndarray:
    return np.array([[0.9 * WIDTH, 0, WIDTH / 2], [0, 0.9 * WIDTH, HEIGHT / 2], [0, 0, 1]])


def test_handheld_cameras_walk_one_jittered_ring_round_the_object(tmp_path, box) -> None:  # type: ignore[no-untyped-def]
    capture = make_object_capture(
        tmp_path, shape="box", layout="handheld", views=VIEWS, width=WIDTH, height=HEIGHT, supersample=1
    )
    cameras = [read_strecha_dir(capture.cameras)[f"view_{i:03d}.png"] for i in range(VIEWS)]
    vertices = np.asarray(o3d.io.read_triangle_mesh(capture.mesh).vertices)
    target = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    offsets = np.array([c.centre - target for c in cameras])
    distances = np.linalg.norm(offsets, axis=1)
    elevations = np.degrees(np.arcsin(offsets[:, 2] / distances))
    assert np.all(np.abs(elevations - HANDHELD_ELEVATION) <= HANDHELD_JITTER["elevation_deg"] + 1e-6)
    assert elevations.std() > 1.0  # jittered, not one circle
    mean_distance = np.median(distances)
    assert np.all(np.abs(distances / mean_distance - 1) < 2.2 * HANDHELD_JITTER["distance_share"])
    assert distances.std() / mean_distance > 0.01
    # one walk round: azimuths increase view by view and close the loop once, the steps uneven
    azimuths = np.unwrap(np.arctan2(offsets[:, 1], offsets[:, 0]))
    steps = np.diff(np.append(azimuths, azimuths[0] + 2 * math.pi))
    assert np.all(steps > 0) and abs(steps.sum() - 2 * math.pi) < 1e-6
    assert steps.max() - steps.min() > 0.1 * (2 * math.pi / VIEWS)
    assert steps.max() < (1 + 2 * HANDHELD_JITTER["azimuth_step_share"]) * 2 * math.pi / VIEWS + 1e-6
    rolls = []
    for camera in cameras:
        pixel, depth = camera.project(vertices)
        assert np.all(depth > 0)
        assert np.all((pixel >= 0) & (pixel <= (WIDTH, HEIGHT)))  # the whole object in every frame
        centre, _ = camera.project(target[None])
        assert np.allclose(centre[0], (WIDTH / 2, HEIGHT / 2), atol=1.0)  # aimed at it
        level = look_at(camera.centre, target, np.array([0.0, 0.0, 1.0]))  # the same aim, no roll
        spin = camera.cam_from_world.rotation @ level.T
        rolls.append(math.degrees(math.atan2(spin[1, 0], spin[0, 0])))
    assert np.all(np.abs(rolls) <= HANDHELD_JITTER["roll_deg"] + 1e-6) and np.std(rolls) > 0.5
    masks = sorted(capture.masks.glob("*.png"))
    assert len(masks) == VIEWS and capture.layout == "handheld" and capture.support_plane == TABLE


def test_handheld_cameras_follow_the_seed(box) -> None:  # type: ignore[no-untyped-def]
    vertices = np.asarray(box.vertices)
    first, again, other = (_handheld_cameras(vertices, _k(), (WIDTH, HEIGHT), VIEWS, seed) for seed in (0, 0, 1))
    assert all(np.allclose(a.centre, b.centre) for a, b in zip(first, again, strict=True))
    assert not all(np.allclose(a.centre, b.centre) for a, b in zip(first, other, strict=True))


def _ring_centres(mesh: o3d.geometry.TriangleMesh) -> np.ndarray:
    vertices = np.asarray(mesh.vertices)
    target = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    angles = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    return np.array([target + 1.2 * np.array([math.cos(a), math.sin(a), 0.6]) for a in angles])


def test_the_truth_scores_one_against_itself_and_loses_what_is_removed(box) -> None:  # type: ignore[no-untyped-def]
    samples = observed_object_samples(box, _ring_centres(box), TABLE, count=20_000)
    assert len(samples) > 5_000 and np.all(samples[:, 2] > 0)  # the base on the table is not observed
    dense = np.concatenate([samples, np.asarray(box.sample_points_uniformly(20_000).points)])

    whole = cloud_scores("cloud", dense, box, samples)
    assert all(prf == PRF(1.0, 1.0, 1.0) for prf in whole.at.values())

    halved = cloud_scores("cloud", dense[dense[:, 0] < 0.0], box, samples)
    for prf in halved.at.values():
        assert prf.precision == 1.0 and 0.35 < prf.recall < 0.65  # half the box gone

    centre = box.get_axis_aligned_bounding_box().get_center()
    grown = cloud_scores("cloud", centre + 1.1 * (dense - centre), box, samples)  # every face 1.9% of the size off
    assert object_size(box) < 0.45 and all(prf.precision < 0.1 and prf.recall < 0.1 for prf in grown.at.values())

    itself = mesh_scores("mesh", box, box, samples, count=50_000)
    assert all(prf.precision == 1.0 and prf.recall == 1.0 for prf in itself.at.values())
    triangles = np.asarray(box.triangles)
    top = np.asarray(box.vertices)[triangles].mean(axis=1)[:, 2] > 0.5 * np.asarray(box.vertices)[:, 2].max()
    lower = o3d.geometry.TriangleMesh(box.vertices, o3d.utility.Vector3iVector(triangles[~top]))
    cut = mesh_scores("mesh", lower, box, samples, count=50_000)
    assert cut.at[0.01].precision == 1.0 and cut.at[0.01].recall < 0.75  # the top half of the box gone


def test_depth_scores_one_for_true_depth_and_lose_a_cut_region(box) -> None:  # type: ignore[no-untyped-def]
    scene = MeshScene(np.asarray(box.vertices), np.asarray(box.triangles))
    k = _k()
    vertices = np.asarray(box.vertices)
    target = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    # a reconstruction frame: the truth halved in size, turned and moved (depths in its units)
    angle = 0.3
    rotation = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    truth_from_world = np.eye(4)
    truth_from_world[:3, :3] = 2.0 * rotation
    truth_from_world[:3, 3] = (0.1, -0.2, 0.05)
    world_from_truth = np.linalg.inv(truth_from_world)
    exact, cut = DepthTally(box, TABLE), DepthTally(box, TABLE)
    for centre in _ring_centres(box)[::3]:
        aim = look_at(centre, target, np.array([0.0, 0.0, 1.0]))
        truth_camera = Camera("v", k, Rigid3(aim, -aim @ centre), WIDTH, HEIGHT)
        hits = scene.cast(truth_camera)
        z = np.zeros((HEIGHT, WIDTH), np.float32)
        z[hits.mask] = truth_camera.cam_from_world.apply(hits.points())[:, 2]
        # the same camera in the reconstruction's frame, its depth in its units
        world_centre = world_from_truth[:3, :3] @ centre + world_from_truth[:3, 3]
        world_rotation = aim @ rotation  # cam_from_truth after truth_from_world's turn
        camera = Camera("v", k, Rigid3(world_rotation, -world_rotation @ world_centre), WIDTH, HEIGHT)
        exact.add_view(camera, z / 2.0, truth_from_world)
        halved = z.copy()
        halved[:, : WIDTH // 2] = 0
        cut.add_view(camera, halved / 2.0, truth_from_world)
    for prf in exact.scores().at.values():
        assert prf.precision > 0.99 and prf.recall > 0.99
    for prf in cut.scores().at.values():
        assert prf.precision > 0.99 and 0.25 < prf.recall < 0.75
