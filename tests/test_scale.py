"""Scale from ArUco markers: synthetic views of printed markers on a table, cameras in arbitrary SfM units.

The views are rendered here (each marker on a white card warped by its plane-to-image homography onto a
textured table, supersampled), so the true metres per unit is known exactly: the SfM world is the true
world times SFM_UNITS_PER_METRE.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from photoforge.camera.markers import (
    DICTIONARIES,
    LocatedMarker,
    MarkerDetector,
    MarkerSpec,
    locate_markers,
    metres_per_unit,
    pick_dictionary,
    read_marker_spec,
)
from photoforge.camera.model import Camera, Rigid3
from photoforge.camera.triangulation import triangulate
from photoforge.errors import StageError
from photoforge.layout import FRAMES_DIR, FRAMES_JSON, MARKERS_YAML, SCALE_JSON, SPARSE_DIR, ScaleEstimate
from photoforge.stage import StageResult
from photoforge.stages.scale import ARUCO_DICTIONARIES, STAGE, ScaleInputs, ScaleParams, marker_spec
from photoforge.store import ArtefactStore

SIZE = 0.05  # metres, black border included
SFM_UNITS_PER_METRE = 0.37
WIDTH, HEIGHT, FOCAL = 960, 720, 900.0
MARKERS = {3: (-0.08, -0.05), 11: (0.09, 0.0), 27: (0.0, 0.1)}  # id: centre on the table (z = 0), metres
LONE = (42, (0.0, -0.12))  # a marker printed in view 0 only
SUPERSAMPLE = 3


def _camera(name: str, centre: np.ndarray, *, units: float = 1.0) -> Camera:
    """A pinhole camera at `centre` looking at the origin, z up; its world scaled by `units`."""
    forward = -centre / np.linalg.norm(centre)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    k = np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1]])
    return Camera(name, k, Rigid3(rotation, -rotation @ centre * units), WIDTH, HEIGHT)


def _ring(units: float = 1.0, count: int = 8) -> list[Camera]:
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return [
        _camera(f"f{i:02d}.png", np.array([0.35 * np.cos(a), 0.35 * np.sin(a), 0.4]), units=units)
        for i, a in enumerate(angles)
    ]


def _card(marker: int, dictionary: int) -> np.ndarray:
    """The marker (360 px, 6 cells of 60 px for 4x4) in the middle of a white card 1.6 times its side."""
    card = np.full((576, 576), 255, np.uint8)
    card[108:468, 108:468] = cv2.aruco.generateImageMarker(cv2.aruco.getPredefinedDictionary(dictionary), marker, 360)
    return card


def _card_corners(centre: tuple[float, float], side: float) -> np.ndarray:
    """World corners of a square on the table: the image's top-left first, clockwise (image y = world -y)."""
    x, y = centre
    h = side / 2
    return np.array([[x - h, y + h, 0], [x + h, y + h, 0], [x + h, y - h, 0], [x - h, y - h, 0]])


def _render(camera: Camera, markers: dict[int, tuple[float, float]], seed: int) -> np.ndarray:
    """A grey view of marker cards on a smooth textured table, rendered at 3x and area-averaged down."""
    big = camera.scaled(WIDTH * SUPERSAMPLE, HEIGHT * SUPERSAMPLE)
    rng = np.random.default_rng(seed)
    table = cv2.resize(rng.random((HEIGHT // 16, WIDTH // 16)).astype(np.float32), (big.width, big.height))
    image = (90 + 80 * table).astype(np.float32)
    for marker, centre in markers.items():
        card = _card(marker, cv2.aruco.DICT_4X4_50)
        source = np.array([[-0.5, -0.5], [575.5, -0.5], [575.5, 575.5], [-0.5, 575.5]], np.float32)
        target = (big.project(_card_corners(centre, SIZE * 1.6))[0] - 0.5).astype(np.float32)  # OpenCV pixels
        homography = cv2.getPerspectiveTransform(source, target)
        size = (big.width, big.height)
        warped = cv2.warpPerspective(card.astype(np.float32), homography, size, flags=cv2.INTER_LINEAR)
        cover = cv2.warpPerspective(np.ones_like(card, np.float32), homography, size, flags=cv2.INTER_LINEAR)
        image = image * (1 - cover) + warped
    small = cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    return np.clip(small + rng.normal(0, 1.5, small.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def views() -> dict[str, np.ndarray]:
    """The ring's views in true metres: every marker in every view, the lone one in view 0 only."""
    out = {}
    for i, camera in enumerate(_ring()):
        out[camera.name] = _render(camera, {**MARKERS, **(dict([LONE]) if i == 0 else {})}, seed=i)
    return out


def _sightings(views: dict[str, np.ndarray], names: list[str]) -> dict[str, dict[str, dict]]:
    detector = MarkerDetector(names)
    found: dict[str, dict[str, dict]] = {name: {} for name in names}
    for view, image in views.items():
        for name, corners in detector.detect(image).items():
            found[name][view] = corners
    return found


def test_markers_give_metres_per_sfm_unit(views: dict[str, np.ndarray]) -> None:
    cameras = {c.name: c for c in _ring(units=SFM_UNITS_PER_METRE)}
    sightings = _sightings(views, ["4x4_50"])["4x4_50"]
    assert all(set(MARKERS) <= set(corners) for corners in sightings.values())  # each view sees all three
    markers = locate_markers(sightings, cameras, max_error=3.0)
    assert [m.id for m in markers] == sorted(MARKERS)
    assert all(len(m.views) == len(cameras) for m in markers)  # no view rejected on clean renders
    scale, spread = metres_per_unit(markers, SIZE)
    error = abs(scale * SFM_UNITS_PER_METRE - 1)
    assert error < 0.001, f"scale {scale:.5f} vs {1 / SFM_UNITS_PER_METRE:.5f}: {error:.3%}"  # measured 0.01%
    assert spread < 0.2, spread
    for marker in markers:  # the triangulated corners are the printed ones, in SfM units
        truth = _card_corners(MARKERS[marker.id], SIZE) * SFM_UNITS_PER_METRE
        assert np.abs(marker.corners - truth).max() < 0.002 * SFM_UNITS_PER_METRE


def test_blur_does_not_shrink_the_markers(views: dict[str, np.ndarray]) -> None:
    """Corners from the edges: OpenCV's sub-pixel corners alone sit ~0.6 px inside at this blur (0.8% scale)."""
    blurred = {name: cv2.GaussianBlur(image, (0, 0), 1.5) for name, image in views.items()}
    cameras = {c.name: c for c in _ring(units=SFM_UNITS_PER_METRE)}
    markers = locate_markers(_sightings(blurred, ["4x4_50"])["4x4_50"], cameras, max_error=3.0)
    assert len(markers) == len(MARKERS)
    scale, _ = metres_per_unit(markers, SIZE)
    assert abs(scale * SFM_UNITS_PER_METRE - 1) < 0.002, scale * SFM_UNITS_PER_METRE  # measured 0.01%


def test_auto_names_the_smallest_dictionary_that_holds_the_markers(views: dict[str, np.ndarray]) -> None:
    cameras = {c.name: c for c in _ring(units=SFM_UNITS_PER_METRE)}
    sightings = _sightings(views, list(DICTIONARIES))
    assert set(sightings["4x4_1000"]["f00.png"]) >= set(MARKERS)  # the bigger dictionaries hold them too
    dictionary, markers = pick_dictionary(sightings, cameras, max_error=3.0)
    assert dictionary == "4x4_50"
    assert [m.id for m in markers] == sorted(MARKERS)


def test_wrong_dictionary_finds_nothing(views: dict[str, np.ndarray]) -> None:
    sightings = _sightings(views, ["5x5_50", "6x6_250", "apriltag_36h11"])
    assert all(not corners for by_view in sightings.values() for corners in by_view.values())
    cameras = {c.name: c for c in _ring(units=SFM_UNITS_PER_METRE)}
    assert pick_dictionary(sightings, cameras, max_error=3.0) == (None, [])


def test_a_marker_seen_in_one_view_does_not_count(views: dict[str, np.ndarray]) -> None:
    sightings = _sightings(views, ["4x4_50"])["4x4_50"]
    assert LONE[0] in sightings["f00.png"]  # detected, in that one view
    cameras = {c.name: c for c in _ring(units=SFM_UNITS_PER_METRE)}
    assert LONE[0] not in {m.id for m in locate_markers(sightings, cameras, max_error=3.0)}


def test_a_view_that_disagrees_is_dropped() -> None:
    """Exact projections, one view's pixels shifted 20 px: triangulation keeps the others, exactly."""
    cameras = _ring(units=SFM_UNITS_PER_METRE, count=5)
    points = _card_corners((0.02, 0.03), SIZE) * SFM_UNITS_PER_METRE
    pixels = np.stack([c.project(points)[0] for c in cameras])
    pixels[2] += [20.0, -5.0]
    fit = triangulate(cameras, pixels, max_error=1.0, min_angle_deg=1.0)
    assert fit is not None
    assert fit.views == (0, 1, 3, 4)
    assert np.abs(fit.points - points).max() < 1e-9
    assert fit.errors.max() < 1e-6
    assert triangulate(cameras[:2], pixels[[0, 2]], max_error=1.0, min_angle_deg=1.0) is None  # two that disagree


def test_scale_is_the_median_side_and_spread_the_scaled_mad() -> None:
    """A unit square and a bent quad (sides 0.99, 1.01, 1.10, 1.5): the median stays on the square's side."""
    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    bent = np.array([[0, 0, 0], [0.99, 0, 0], [0.99, 1.01, 0], [0, 1.5, 0]], float)
    markers = [LocatedMarker(1, ("a", "b"), square, np.zeros(2)), LocatedMarker(2, ("a", "b"), bent, np.zeros(2))]
    estimates = 0.05 / np.concatenate([m.sides for m in markers])
    scale, spread = metres_per_unit(markers, 0.05)
    assert scale == pytest.approx(np.median(estimates)) and scale == pytest.approx(0.05, rel=0.011)
    mad = np.median(np.abs(estimates - scale))
    assert spread == pytest.approx(1.4826 * mad / scale * 100) and 0 < spread < 2


def test_dictionary_names_agree_with_the_params() -> None:
    assert set(ARUCO_DICTIONARIES) - {"auto"} == set(DICTIONARIES)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("size: [0.05\n", "not valid YAML"),
        ("- 0.05\n", "mapping"),
        ("dictionary: 4x4_50\n", "size None"),
        ("size: 50\n", "size 50"),
        ("size: five cm\n", "size 'five cm'"),
        ("size: -0.05\n", "size -0.05"),
        ("size: 0.05\ndictionary: 9x9_10\n", "9x9_10"),
        ("size: 0.05\nsise: 0.05\n", "unknown key(s) sise"),
    ],
)
def test_malformed_markers_yaml_says_what_to_write(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / MARKERS_YAML
    path.write_text(text)
    with pytest.raises(StageError) as caught:
        read_marker_spec(path)
    assert caught.value.stage == "scale" and caught.value.path == str(path)
    assert says in caught.value.cause and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_marker_size_from_params_or_markers_yaml(tmp_path: Path) -> None:
    path = tmp_path / MARKERS_YAML
    assert marker_spec(ScaleParams(), path) is None  # no file, no size
    path.write_text("size: 0.04\ndictionary: 5X5_100\n")
    assert read_marker_spec(path) == MarkerSpec(0.04, "5x5_100")
    assert marker_spec(ScaleParams(), path) == MarkerSpec(0.04, "5x5_100")
    assert marker_spec(ScaleParams(marker_size=0.1, dictionary="6x6_50"), path) == MarkerSpec(0.1, "6x6_50")
    path.write_text("size: 0.04\n")
    assert marker_spec(ScaleParams(), path) == MarkerSpec(0.04, "auto")


# --- the stage, on a real COLMAP model with lens distortion ---------------------------------------------

RADIAL = -0.08  # SIMPLE_RADIAL k: corners move ~20 px at the image corners


def _distort(pinhole: np.ndarray, lens: object, k: np.ndarray) -> np.ndarray:
    """The view as the distorting lens saw it: each output pixel samples the pinhole image where its ray goes."""
    u, v = np.meshgrid(np.arange(WIDTH) + 0.5, np.arange(HEIGHT) + 0.5)
    rays = lens.cam_from_img(np.stack([u.ravel(), v.ravel()], axis=1))  # type: ignore[attr-defined]
    source = (rays @ k[:2, :2].T + k[:2, 2] - 0.5).astype(np.float32).reshape(HEIGHT, WIDTH, 2)
    return cv2.remap(pinhole, source[..., 0], source[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _artefact(stage: str, path: Path) -> StageResult:
    return StageResult(
        stage=stage, key=f"{stage}-key", path=str(path), metrics={}, reused=False, seconds=0.0, compute_seconds=0.0
    )


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StageResult]:
    """An ingest artefact (frames, frames.json, markers.yaml) and a poses artefact (a COLMAP model in SfM units)."""
    import pycolmap

    root = tmp_path_factory.mktemp("scale_capture")
    ingest, poses = root / "ingest", root / "poses"
    (ingest / FRAMES_DIR).mkdir(parents=True)
    (poses / SPARSE_DIR).mkdir(parents=True)
    lens = pycolmap.Camera.create_from_model_name(1, "SIMPLE_RADIAL", FOCAL, WIDTH, HEIGHT)
    lens.params = [FOCAL, WIDTH / 2, HEIGHT / 2, RADIAL]
    model = pycolmap.Reconstruction()
    model.add_camera_with_trivial_rig(lens)
    truth, sfm = _ring(), _ring(units=SFM_UNITS_PER_METRE)
    for i, (camera, posed) in enumerate(zip(truth, sfm, strict=True)):
        image = _distort(_render(camera, MARKERS, seed=i), lens, camera.k)
        cv2.imwrite(str(ingest / FRAMES_DIR / camera.name), image)
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(posed.cam_from_world.rotation), posed.cam_from_world.translation)
        model.add_image_with_trivial_frame(pycolmap.Image(name=camera.name, camera_id=1, image_id=i + 1), pose)
    model.write(poses / SPARSE_DIR)
    frames = [{"source": c.name, "kept": True, "frame": c.name, "width": WIDTH, "height": HEIGHT} for c in truth]
    (ingest / FRAMES_JSON).write_text(json.dumps({"frames": frames}))
    (ingest / MARKERS_YAML).write_text(f"size: {SIZE}\n")
    return {"ingest": _artefact("ingest", ingest), "poses": _artefact("poses", poses)}


def test_stage_scales_a_distorted_capture_from_markers_yaml(capture: dict[str, StageResult], tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int, message: str = "") -> None:
        calls.append((done, total))

    result = STAGE.execute(ArtefactStore(tmp_path, "cap"), ScaleInputs(**capture), ScaleParams(), progress=progress)
    assert calls == [(i, 8) for i in range(1, 9)]
    metrics = result.metrics
    assert metrics["source"] == "markers" and metrics["units"] == "m"
    assert metrics["dictionary"] == "4x4_50"
    assert metrics["markers_found"] == 3 and metrics["views_with_markers"] == 8
    # measured 0.01%; without the lens taken out of the corners, 0.5%
    assert abs(metrics["metres_per_unit"] * SFM_UNITS_PER_METRE - 1) < 0.002, metrics["metres_per_unit"]
    assert metrics["spread_percent"] < 0.3
    estimate = ScaleEstimate.read(result.dir)
    assert estimate.source == "markers" and estimate.metres_per_unit == metrics["metres_per_unit"]
    details = json.loads((result.dir / SCALE_JSON).read_text())["markers"]
    assert [d["id"] for d in details] == sorted(MARKERS)
    assert all(len(d["corners_xyz"]) == 4 and len(d["views"]) == 8 for d in details)


def test_stage_without_size_or_markers_falls_back(
    capture: dict[str, StageResult], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ArtefactStore(tmp_path, "cap")
    (Path(capture["ingest"].path) / MARKERS_YAML).rename(tmp_path / "aside.yaml")
    try:
        none = STAGE.execute(store, ScaleInputs(**capture), ScaleParams())
        height = STAGE.execute(store, ScaleInputs(**capture), ScaleParams(object_height=0.3))
        with caplog.at_level("WARNING", logger="photoforge"):
            wrong = STAGE.execute(store, ScaleInputs(**capture), ScaleParams(marker_size=SIZE, dictionary="6x6_250"))
    finally:
        (tmp_path / "aside.yaml").rename(Path(capture["ingest"].path) / MARKERS_YAML)
    assert ScaleEstimate.read(none.dir).source == "none" and none.metrics["units"] == "sfm"
    estimate = ScaleEstimate.read(height.dir)
    assert estimate.source == "object_height" and estimate.object_height_m == 0.3
    assert ScaleEstimate.read(wrong.dir).source == "none" and wrong.metrics["markers_found"] == 0
    assert "dictionaries tried 6x6_250" in caplog.text and "0 of 8 registered frames" in caplog.text
