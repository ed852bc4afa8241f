"""Which source views a reference view's depth is matched against (photoforge.camera.views)."""

from __future__ import annotations

import itertools

import numpy as np

from photoforge.camera.model import Camera, Rigid3
from photoforge.camera.views import RegisteredView, nearest_by_angle

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])


def _looking_at_origin(name: str, centre: np.ndarray) -> Camera:
    forward = -centre / np.linalg.norm(centre)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])  # rows: the camera's axes in the world
    return Camera(name, K, Rigid3(rotation, -rotation @ centre), 640, 480)


def _three_rings() -> tuple[list[RegisteredView], dict[int, np.ndarray]]:
    """A table layout: rings of 8 at 15/35/55 degrees, staggered; an object at the origin that every view
    sees, and a table whose points the high views see far more of (as on a real object capture)."""
    rng = np.random.default_rng(3)
    object_points = rng.normal(scale=0.05, size=(300, 3))
    table_points = np.c_[rng.uniform(-0.6, 0.6, size=(3000, 2)), np.zeros(3000)]
    points = {i: p for i, p in enumerate(np.vstack([object_points, table_points]))}
    views = []
    for ring, elevation in enumerate((15.0, 35.0, 55.0)):
        for step in range(8):
            azimuth = np.radians(45.0 * step + 22.5 * (ring % 2))
            e = np.radians(elevation)
            centre = 0.8 * np.array([np.cos(e) * np.cos(azimuth), np.cos(e) * np.sin(azimuth), np.sin(e)])
            camera = _looking_at_origin(f"r{ring}_{step}", centre)
            table_share = 0.1 + 0.4 * ring  # higher: more of the table in view
            seen_table = 300 + np.flatnonzero(rng.random(3000) < table_share)
            views.append(RegisteredView(len(views), camera, np.concatenate([np.arange(300), seen_table])))
    return views, points


def _angle(a: Camera, b: Camera) -> float:
    cos = a.centre @ b.centre / (np.linalg.norm(a.centre) * np.linalg.norm(b.centre))
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def test_sources_are_the_nearest_viewpoints_not_the_views_seeing_most_of_the_table() -> None:
    views, points = _three_rings()
    by_angle = nearest_by_angle(views, points)
    for view in views:
        if not view.camera.name.startswith("r0"):
            continue
        first = [views[j] for j in by_angle[view.index][:4]]
        # the two staggered middle-ring views (30 degrees away) first, then the 40-43 degree ones
        assert {v.camera.name[:2] for v in first[:2]} == {"r1"}, [v.camera.name for v in first]
        assert max(_angle(view.camera, v.camera) for v in first) < 44
        # however many table points the top ring shares: nearest first, all the way down (angles here are
        # at the object's centre; the ranking's at the median of the view's points, a little off it)
        angles = [_angle(view.camera, views[j].camera) for j in by_angle[view.index]]
        assert all(a <= b + 2.0 for a, b in itertools.pairwise(angles)) and len(angles) == len(views) - 1


def test_a_near_duplicate_frame_ranks_behind_a_real_baseline() -> None:
    views, points = _three_rings()
    ref = views[0]
    nudged = ref.camera.centre + np.array([0.0, 0.014, 0.0])  # 1 degree away: hardly any depth resolution
    twin = RegisteredView(len(views), _looking_at_origin("twin", nudged), ref.point_ids)
    ranked = nearest_by_angle([*views, twin], points)[0]
    assert ranked[0] != twin.index
    assert ranked.index(twin.index) >= 4
