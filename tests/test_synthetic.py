"""Synthetic object captures (photoforge.synthetic.make_object_capture): photos and truth that agree.

Every shape in its layout, rendered small (6 views, 480x360): the files a user hands in and the
truth are written, the truth object stands on its support upright in metres, the printed markers
are detected where the truth says (so scale and support can be checked against them), the masks
are the object's, the object's colour stands out from its surroundings, and the cameras are where
the layout puts them.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import trimesh

from photoforge.qa.pose_errors import read_strecha_dir
from photoforge.synthetic import TABLE_SHAPES, WALL_SHAPES, ObjectCapture, make_object_capture

VIEWS, WIDTH, HEIGHT = 6, 480, 360
CASES = [(shape, "table") for shape in TABLE_SHAPES] + [(shape, "wall") for shape in WALL_SHAPES]


@pytest.fixture(scope="module", params=CASES, ids=[f"{shape}-{layout}" for shape, layout in CASES])
def capture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ObjectCapture:
    shape, layout = request.param
    root = tmp_path_factory.mktemp(shape)
    return make_object_capture(root, shape=shape, layout=layout, views=VIEWS, width=WIDTH, height=HEIGHT)


def _object(capture: ObjectCapture) -> trimesh.Trimesh:
    return trimesh.load(capture.mesh, process=False)


def _detector(subpixel: bool = False) -> cv2.aruco.ArucoDetector:
    parameters = cv2.aruco.DetectorParameters()
    if subpixel:
        parameters.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    return cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50), parameters)


def _grey(capture: ObjectCapture, name: str) -> np.ndarray:
    return cv2.imread(str(capture.capture / "images" / name), cv2.IMREAD_GRAYSCALE)


def test_writes_the_photos_a_user_hands_in_and_the_truth(capture: ObjectCapture) -> None:
    names = sorted(p.name for p in (capture.capture / "images").glob("*.png"))
    assert len(names) == VIEWS
    assert sorted(p.name for p in capture.masks.glob("*.png")) == names
    assert sorted(read_strecha_dir(capture.cameras)) == names
    assert cv2.imread(str(capture.capture / "images" / names[0])).shape == (HEIGHT, WIDTH, 3)
    k = np.loadtxt(capture.capture / "K.txt")
    assert k.shape == (3, 3) and k[0, 2] == WIDTH / 2 and k[1, 2] == HEIGHT / 2
    truth = json.loads(capture.truth.read_text())
    assert truth["units"] == "m" and truth["up"] == [0.0, 0.0, 1.0]
    assert truth["marker_dictionary"] == "DICT_4X4_50" and truth["marker_size"] == 0.05
    assert [m["id"] for m in truth["markers"]] == list(range(6))
    assert ObjectCapture.read(capture.capture.parent).object_height == capture.object_height


def test_the_object_stands_on_its_support_upright_in_metres(capture: ObjectCapture) -> None:
    mesh = _object(capture)
    assert mesh.is_watertight and mesh.volume > 0
    low, high = mesh.bounds
    assert abs(low[2]) < 1e-3  # its base on z = 0
    assert 0.2 <= capture.object_height <= 0.4
    assert capture.object_height == pytest.approx(high[2] - low[2], abs=1e-6)
    truth = json.loads(capture.truth.read_text())
    assert np.allclose(truth["object_bbox"]["min"], low) and np.allclose(truth["object_bbox"]["max"], high)
    plane = np.array(capture.support_plane)
    # the object touches its support plane and lies on the side its normal points to
    assert (mesh.vertices @ plane[:3] + plane[3]).min() == pytest.approx(0.0, abs=1e-3)
    assert capture.support_plane == ((0.0, 0.0, 1.0, 0.0) if capture.layout == "table" else (0.0, 1.0, 0.0, 0.0))


def test_markers_lie_on_the_support_clear_of_the_object(capture: ObjectCapture) -> None:
    mesh = _object(capture)
    for corners in capture.markers.values():
        if capture.layout == "table":
            assert np.allclose(corners[:, 2], 0.0)
            gaps = np.linalg.norm(corners[:, None, :2] - mesh.vertices[None, :, :2], axis=2)
        else:
            assert np.allclose(corners[:, 1], 0.0)
            gaps = np.abs(corners[:, None, 0] - mesh.vertices[None, :, 0])  # beside the bust, not under it
        assert gaps.min() > 0.02
        sides = np.linalg.norm(np.roll(corners, -1, axis=0) - corners, axis=1)
        assert np.allclose(sides, capture.marker_size)


def test_markers_are_detected_where_the_truth_puts_them(capture: ObjectCapture) -> None:
    cameras = read_strecha_dir(capture.cameras)
    detector = _detector(subpixel=True)
    seen, errors = [], []
    for name, camera in cameras.items():
        corners, ids, _ = detector.detectMarkers(_grey(capture, name))
        ids = [] if ids is None else ids.ravel().tolist()
        assert set(ids) <= set(capture.markers)  # no marker read as another
        seen.append(len(ids))
        for found, marker_id in zip(corners, ids, strict=True):
            truth, _ = camera.project(capture.markers[marker_id])
            errors.append(np.linalg.norm(found.reshape(4, 2) - (truth - 0.5), axis=1))  # OpenCV pixel centres
    assert min(seen) >= 2, f"markers seen per view: {seen}"  # 3 to 6 of the 6 at 480x360
    # Sub-pixel corners agree with the truth projected, to the detector's own bias (about 0.5 px inwards
    # here): a misplaced, turned or mirrored print would be off by a good part of a marker (25 px).
    assert np.median(np.concatenate(errors)) < 1.0


def test_the_masks_are_the_object_s_silhouette(capture: ObjectCapture) -> None:
    mesh = _object(capture)
    for name, camera in read_strecha_dir(capture.cameras).items():
        mask = cv2.imread(str(capture.masks / name), cv2.IMREAD_GRAYSCALE) > 0
        pixels, depth = camera.project(mesh.vertices)
        assert (depth > 0).all()
        inside = (pixels >= 0).all(axis=1) & (pixels[:, 0] < WIDTH) & (pixels[:, 1] < HEIGHT)
        assert inside.all(), "the object leaves the frame"
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        column, row = pixels.astype(int).T
        assert grown[row, column].mean() > 0.99
        rows = np.flatnonzero(mask.any(axis=1))
        assert 0.25 < (rows[-1] - rows[0]) / HEIGHT < 0.75  # about half the frame high


def test_the_object_differs_in_colour_from_its_surroundings(capture: ObjectCapture) -> None:
    for name in sorted(p.name for p in capture.masks.glob("*.png"))[::2]:
        rgb = cv2.imread(str(capture.capture / "images" / name))[..., ::-1].astype(float)
        mask = cv2.imread(str(capture.masks / name), cv2.IMREAD_GRAYSCALE)
        near = cv2.dilate(mask, np.ones((25, 25), np.uint8)) & ~cv2.dilate(mask, np.ones((7, 7), np.uint8))
        inner = cv2.erode(mask, np.ones((5, 5), np.uint8)) > 0
        warmth = rgb[..., 0] - rgb[..., 2]  # red less blue: the object is warm, the mat and wallpaper are not
        assert warmth[inner].mean() - warmth[near > 0].mean() > 25  # 45 to 80 (of 255) measured


def test_cameras_are_where_the_layout_puts_them(capture: ObjectCapture) -> None:
    cameras = read_strecha_dir(capture.cameras).values()
    mesh = _object(capture)
    target = mesh.bounds.mean(axis=0)
    for camera in cameras:
        offset = camera.centre - target
        elevation = math.degrees(math.asin(offset[2] / np.linalg.norm(offset)))
        pixel, _ = camera.project(target[None])
        assert np.allclose(pixel[0], (WIDTH / 2, HEIGHT / 2), atol=1.0)  # aimed at the object
        if capture.layout == "table":
            assert 10 < elevation < 60
        else:
            azimuth = math.degrees(math.atan2(offset[0], offset[1]))  # from the wall's normal, +y
            assert camera.centre[1] > 0.3 and abs(azimuth) <= 65 and -15 <= elevation <= 35
    if capture.layout == "table":
        azimuths = sorted(math.atan2(c.centre[1] - target[1], c.centre[0] - target[0]) for c in cameras)
        assert np.diff(azimuths).max() < math.radians(120)  # all round the object


@pytest.mark.parametrize(
    ("shape", "layout", "message"),
    [("teapot", "table", "unknown shape"), ("bust", "table", "does not go with"), ("vase", "wall", "does not go with")],
)
def test_bad_arguments_are_refused(tmp_path, shape: str, layout: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        make_object_capture(tmp_path, shape=shape, layout=layout)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())
