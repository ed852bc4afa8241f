"""The turntable's framing: the object fills about 70% of the frame height, centred, from every side.

Measured on what the orbit's cameras see (ray-cast masks), not on the framing's own arithmetic.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
import pytest

from photoforge.render.raycast import MeshScene
from photoforge.render.turntable import Orbit, frame_orbit, orbit_cameras
from photoforge.render.turntable_video import VideoFiles, mesh_turntable
from photoforge.stage import no_progress

ORBIT = Orbit(24, 320, 180, 20.0, 35.0, (32, 32, 36), (-0.5, -0.7, -0.5), 0.35)
Mesh = tuple[np.ndarray, np.ndarray]


def box(
    size: tuple[float, float, float], corner: tuple[float, float, float] = (0.0, 0.0, 0.0), levels: int = 3
) -> Mesh:
    """A box from `corner`, its faces subdivided (many vertices, as a reconstructed mesh has)."""
    mesh = o3d.geometry.TriangleMesh.create_box(*size).subdivide_midpoint(levels)
    return np.asarray(mesh.vertices) + corner, np.asarray(mesh.triangles)


def merged(*meshes: Mesh) -> Mesh:
    offsets = np.cumsum([0] + [len(v) for v, _ in meshes[:-1]])
    return np.concatenate([v for v, _ in meshes]), np.concatenate(
        [f + o for (_, f), o in zip(meshes, offsets, strict=True)]
    )


def seen(mesh: Mesh, orbit: Orbit = ORBIT) -> dict[str, np.ndarray]:
    """Per frame of the orbit: the object's height and width shares, and its middle's offset from the frame's."""
    scene = MeshScene(*mesh)
    rows: dict[str, list[float]] = {"height": [], "width": [], "dy": [], "dx": []}
    for camera in orbit_cameras(mesh[0], orbit):
        mask = scene.cast(camera).mask
        ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        rows["height"].append((ys[-1] - ys[0] + 1) / orbit.height)
        rows["width"].append((xs[-1] - xs[0] + 1) / orbit.width)
        rows["dy"].append((ys[0] + ys[-1] + 1) / 2 / orbit.height - 0.5)
        rows["dx"].append((xs[0] + xs[-1] + 1) / 2 / orbit.width - 0.5)
    return {name: np.array(values) for name, values in rows.items()}


def test_tall_thin_box_fills_seventy_percent_of_the_height_centred() -> None:
    shares = seen(box((0.3, 1.5, 0.3), (-0.15, 0.0, -0.15)))
    assert 0.65 <= shares["height"].min() <= shares["height"].max() <= 0.75, shares["height"]
    assert np.abs(shares["dy"]).max() < 0.02 and np.abs(shares["dx"]).max() < 0.02


def test_off_centre_object_is_framed_on_its_bounds_not_its_median() -> None:
    """An L (a column on a long slab) far from the origin: most vertices lie in the slab, the middle does not."""
    column = box((0.3, 1.2, 0.3), (2.0, 0.5, -1.0))
    slab = box((1.2, 0.25, 0.5), (2.0, 0.5, -1.0))
    shares = seen(merged(column, slab))
    assert 0.6 <= shares["height"].min() <= shares["height"].max() <= 0.8, shares["height"]
    assert np.abs(shares["dy"]).max() < 0.05 and np.abs(shares["dx"]).max() < 0.05
    assert abs(shares["dy"].mean()) < 0.02 and abs(shares["dx"].mean()) < 0.02
    axis = np.mean([c.centre for c in orbit_cameras(merged(column, slab)[0], ORBIT)], axis=0)
    assert np.allclose(axis[[0, 2]], [2.6, -0.75], atol=1e-6)  # the orbit turns about the bounds' middle


def test_wide_flat_box_is_bounded_by_the_width_rule() -> None:
    """A 3 x 0.3 x 3 slab: at 90% of the width from its diagonal, it cannot fill 60% of the height from every side."""
    shares = seen(box((3.0, 0.3, 3.0), (-1.5, 0.0, -1.5)))
    assert 0.86 <= shares["width"].max() <= 0.9 + 1 / ORBIT.width, shares["width"]
    assert shares["height"].max() <= 0.8 and shares["height"].min() < 0.6
    assert abs(shares["dy"].mean()) < 0.02 and abs(shares["dx"].mean()) < 0.02


def test_a_portrait_frame_is_bounded_by_its_width() -> None:
    portrait = Orbit(24, 180, 320, 20.0, 35.0, (0, 0, 0), (0.0, 0.0, 1.0), 0.35)
    shares = seen(box((1.0, 1.0, 1.0), (-0.5, 0.0, -0.5)), portrait)
    assert shares["width"].max() <= 0.9 + 1 / portrait.width and shares["height"].max() < 0.6


def test_a_few_stray_vertices_do_not_move_the_framing() -> None:
    """A speck of stray surface far off (under 0.5% of the vertices) leaves distance and target as they were."""
    vertices, faces = box((0.4, 1.0, 0.6), (-0.2, 0.0, -0.3), levels=5)
    speck, speck_faces = box((0.05, 0.05, 0.05), (30.0, 12.0, -25.0))
    speck, speck_faces = speck[:12], speck_faces[(speck_faces < 12).all(axis=1)]
    assert len(speck) < 0.005 * len(vertices)
    with_speck, _ = merged((vertices, faces), (speck, speck_faces))
    clean, stray = frame_orbit(vertices, ORBIT), frame_orbit(with_speck, ORBIT)
    assert stray.distance == pytest.approx(clean.distance, rel=0.02)
    assert np.allclose(stray.target, clean.target, atol=0.02)


def test_turntable_measures_the_height_share_it_renders(tmp_path: Path) -> None:
    """mesh_turntable's per-frame height shares match the ray-cast masks', and the poster shows the object."""
    vertices, faces = box((0.5, 1.2, 0.8), (1.0, 0.0, 2.0))
    uvs, texture = np.full((len(vertices), 2), 0.5), np.full((4, 4, 3), 180, np.uint8)
    files = VideoFiles(tmp_path / "t.mp4", tmp_path / "poster.png", tmp_path / "sheet.png")
    video = mesh_turntable(
        vertices, faces, uvs, texture, ORBIT, files, fps=12, quality=5, tiles=12, progress=no_progress
    )
    expected = seen((vertices, faces))["height"]
    assert np.allclose(video.heights, expected, atol=1.5 / ORBIT.height)
    assert 0.6 <= min(video.heights) <= max(video.heights) <= 0.8
    poster = cv2.imread(str(files.poster))
    assert poster is not None and poster.shape == (ORBIT.height, ORBIT.width, 3)
    rows = np.flatnonzero((poster != ORBIT.background[::-1]).any(axis=2).any(axis=1))
    assert 0.6 <= (rows[-1] - rows[0] + 1) / ORBIT.height <= 0.8
