"""Turntable video and QA report on the synthetic asset: a playable mp4, a complete report."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from support_stages import handmade_artefact

from photoforge.geometry.pointcloud import write_ply
from photoforge.layout import (
    ISOLATION_JSON,
    OBJECT_PLY,
    POSTER,
    REMOVED_PLY,
    REPORT_HTML,
    REPORT_JSON,
    SHEET,
    VIDEO,
    IsolatedAsset,
)
from photoforge.metrics import AssetMetrics, ScaleMetrics, TurntableMetrics
from photoforge.report.html import SECTIONS
from photoforge.report.isolation_html import asset_section
from photoforge.report.isolation_view import ISOLATION_PNG, SIZE
from photoforge.stage import StageResult, no_progress
from photoforge.stages import report

FRAMES, WIDTH, HEIGHT = 24, 320, 240  # the `shown` fixture's turntable (tests/conftest.py)


def _decode(path: Path) -> tuple[dict, list[np.ndarray]]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return meta, [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]


def test_turntable_is_a_browser_playable_mp4(shown: dict) -> None:
    path = shown["turntable"].dir / VIDEO
    meta, frames = _decode(path)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["size"] == (WIDTH, HEIGHT) and len(frames) == FRAMES
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "faststart: the index comes first"


def test_turntable_frames_show_the_object_turning(shown: dict) -> None:
    _, frames = _decode(shown["turntable"].dir / VIDEO)
    background = shown["background"]
    for frame in frames:
        covered = (np.abs(frame.astype(int) - background).sum(axis=2) > 30).mean()
        assert 0.05 < covered < 0.9, covered
    changes = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in itertools.pairwise(frames)]
    assert min(changes) > 1.0  # every frame differs from the previous one: it turns
    poster = cv2.imread(str(shown["turntable"].dir / POSTER))
    sheet = cv2.imread(str(shown["turntable"].dir / SHEET))
    assert poster is not None and sheet is not None
    assert poster.shape == (HEIGHT, WIDTH, 3) and sheet.shape[1] == 4 * 320


def test_turntable_frames_the_object_at_seventy_percent_of_the_height(shown: dict) -> None:
    """The framing, measured on the rendered frames: 60-80% of the frame height from every side."""
    metrics = shown["turntable"].metrics_as(TurntableMetrics)
    assert metrics.object_height_min is not None and metrics.object_height_max is not None
    assert 0.6 <= metrics.object_height_min <= metrics.object_height_max <= 0.8, metrics
    _, frames = _decode(shown["turntable"].dir / VIDEO)
    background = shown["background"]
    for frame in frames:
        rows = np.flatnonzero((np.abs(frame.astype(int) - background).sum(axis=2) > 30).any(axis=1))
        assert 0.55 <= (rows[-1] - rows[0] + 1) / HEIGHT <= 0.85  # the encoded video too (its edges blur)


def test_report_has_every_section_and_its_images(shown: dict) -> None:
    page = (shown["report"].dir / REPORT_HTML).read_text()
    for key, title in SECTIONS:
        if key in ("splat", "scale", "asset") and key not in shown["results"]:  # not made: no empty section either
            assert f'<section id="{key}">' not in page
            continue
        assert f'<section id="{key}">' in page and title in page
    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    assert len(uris) >= 4 + 2 + 2  # depth previews, evaluation side-by-sides, texture, turntable
    for uri in uris:
        image = cv2.imdecode(np.frombuffer(base64.b64decode(uri), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.size > 0
    assert 'src="turntable.mp4"' in page


def test_report_json_has_every_metric(shown: dict) -> None:
    data = json.loads((shown["report"].dir / REPORT_JSON).read_text())
    expected = {
        "inputs": ("photos", "kept", "rejected", "skipped"),
        "poses": ("registered_fraction", "mean_reprojection_error_px", "mean_track_length", "points"),
        "depth": ("usable_fraction", "backend"),
        "fusion": ("points",),
        "mesh": ("faces", "watertight", "manifold"),
        "texture": ("coverage", "gltf_validator_errors"),
        "left_out": ("psnr_left_out", "ssim_left_out", "psnr_used", "ssim_used"),
        "turntable": ("frames", "render_fps", "object_height_min", "object_height_max"),
    }
    for section, keys in expected.items():
        for key in keys:
            assert data[section][key] is not None, f"{section}.{key}"
    assert data["stages"][0]["stage"] == "ingest" and len(data["stages"]) == len(shown["results"])
    assert data["versions"]["pycolmap"] and data["preset"] == "standard"
    assert {c["stage"] for c in data["checks"]} >= {"poses", "depth", "mesh", "bake", "export"}


def test_report_renders_in_headless_chromium(shown: dict, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    shot = tmp_path / "report.png"
    page = (shown["report"].dir / REPORT_HTML).resolve().as_uri()
    subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1200,4000",
            "--virtual-time-budget=5000", f"--screenshot={shot}", page,
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (4000, 1200)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    colourful = ((hsv[..., 1] > 60) & (hsv[..., 2] > 40)).mean()
    assert colourful > 0.02, f"the page shows no images ({colourful:.3%} colourful pixels)"


# --- the scale and asset stages in the report --------------------------------------------------------

# world -> asset (rows: the asset's axes in the world): up is the world's -z, and not its own inverse
WORLD_TO_ASSET = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])
GREEN, GREY = (40, 200, 60), (128, 128, 128)


def _isolated_object(root: Path) -> StageResult:
    """An object (a green box standing on y = 0) kept; the grey floor under it and a floater removed."""
    rng = np.random.default_rng(0)
    box = rng.uniform([-0.2, 0.0, -0.15], [0.2, 0.6, 0.15], (20_000, 3))
    floor = np.column_stack([rng.uniform(-0.6, 0.6, 8000), rng.normal(0, 0.002, 8000), rng.uniform(-0.6, 0.6, 8000)])
    floater = rng.normal([0.35, 0.75, 0.0], 0.02, (500, 3))
    metrics = AssetMetrics(
        kind="object", kind_requested="auto", kind_evidence={"convergence": 0.91, "cameras_on_ring": 20},
        support="floor", points_in=28_500, points_kept=20_000,
        removed={"outside_region": 0, "support": 8000, "floaters": 500}, removed_percent=29.82, crop=None,
        crop_source="auto", units="sfm", summary="object",
    )  # fmt: skip
    result = handmade_artefact(root, "asset", metrics)
    removed = np.concatenate([floor, floater])
    for name, points, colour in ((OBJECT_PLY, box, GREEN), (REMOVED_PLY, removed, GREY)):
        world = points @ WORLD_TO_ASSET  # asset = R world, so world = R^T asset
        write_ply(result.dir / name, world, np.tile(colour, (len(points), 1)), np.zeros_like(world))
    isolation = IsolatedAsset(kind="object", rotation=WORLD_TO_ASSET.tolist(), support=[0.0, -1.0, 0.0, 0.0],
                              support_kind="floor")  # fmt: skip
    (result.dir / ISOLATION_JSON).write_text(isolation.model_dump_json())
    return result


@pytest.fixture(scope="module")
def isolated(shown: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The synthetic run's report with a scale (none: SfM units) and an isolated object beside it."""
    root = tmp_path_factory.mktemp("isolated")
    scale = ScaleMetrics(
        source="none", units="sfm", marker_size_m=None, dictionary=None, markers_found=0, views_with_markers=0,
        metres_per_unit=None, spread_percent=None, summary="no scale",
    )  # fmt: skip
    results = shown["results"] | {"scale": handmade_artefact(root, "scale", scale), "asset": _isolated_object(root)}
    out = root / "report"
    out.mkdir()
    inputs = report.ReportInputs(capture="synthetic", results=results, preset="standard", overrides={})
    report.run(inputs, out=out, params=report.ReportParams.model_validate({}), progress=no_progress)
    return {"dir": out, "page": (out / REPORT_HTML).read_text(), "data": json.loads((out / REPORT_JSON).read_text())}


def test_report_tells_what_isolation_decided_and_removed(isolated: dict) -> None:
    page, data = isolated["page"], isolated["data"]
    assert '<section id="asset">' in page and '<section id="scale">' in page
    assert page.index('<section id="poses">') < page.index('<section id="scale">') < page.index('<section id="depth">')
    assert "Decided: <b>object</b> (asked: auto: from the cameras)" in page
    assert "<th>convergence</th><td>0.91</td>" in page and "floor or table" in page
    assert "No floor, table or wall was found" not in page  # the floor was found
    assert "<th>on or behind the support plane</th><td>8000 points (28.1% of the fused cloud)</td>" in page
    assert "<th>floaters (not connected to the object)</th><td>500 points (1.8% of the fused cloud)</td>" in page
    assert "<th>in all</th><td>8500 points (29.82%)</td>" in page
    assert data["asset"]["removed"] == {"outside_region": 0, "support": 8000, "floaters": 500}
    support = [c for c in data["checks"] if c["stage"] == "asset"]
    assert [(c["status"], c["reason"]) for c in support] == [
        ("not checked", "the mesh stage measured no support share")
    ]


def test_report_says_how_to_get_metres_without_a_scale(isolated: dict) -> None:
    page = isolated["page"]
    assert "SfM units" in page and "4x4_50" in page
    assert (
        "--set scale.marker_size=0.05" in page and "<code>markers.yaml</code> holding <code>size: 0.05</code>" in page
    )
    assert isolated["data"]["scale"]["units"] == "sfm"
    assert not [c for c in isolated["data"]["checks"] if c["stage"] == "scale"]  # no scale asked for: nothing to check


def test_isolation_picture_shows_the_floor_removed_under_the_object(isolated: dict) -> None:
    """The side view is in the asset frame: the removed floor (red) lies under the object (green), not beside it."""
    image = cv2.imread(str(isolated["dir"] / ISOLATION_PNG))
    assert image is not None
    picture = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(int)
    width, height = SIZE
    assert picture.shape[0] == height and picture.shape[1] > 2 * width
    side = picture[:, :width]
    red, green, blue = side[..., 0], side[..., 1], side[..., 2]
    removed = (red > 150) & (green < 90) & (blue < 90)
    kept = (green > 150) & (red < 100)
    kept_rows, kept_cols = np.nonzero(kept)
    removed_rows, removed_cols = np.nonzero(removed)
    assert kept.mean() > 0.05 and removed.mean() > 0.005
    floor = removed_rows >= kept_rows.max() - 3  # a band at the object's foot, across the picture
    floater = removed_rows < kept_rows.min() + 0.3 * np.ptp(kept_rows)  # up, and to the right: +x is right
    assert (floor | floater).all() and floor.sum() > 2 * floater.sum() > 0
    assert np.ptp(removed_cols[floor]) > 1.5 * np.ptp(kept_cols)
    assert np.median(removed_rows[floor]) - kept_rows.max() < 8
    assert removed_cols[floater].min() > kept_cols.max()
    assert '<section id="asset"><h2>The object alone</h2>' in isolated["page"]
    assert isolated["page"].count("data:image/jpeg;base64") >= 9  # the picture beside the others


def _asset_metrics(kind: str, support: str | None) -> dict:
    return AssetMetrics(
        kind=kind, kind_requested="auto", kind_evidence={"reason": "why"}, support=support, points_in=100,
        points_kept=60, removed={"outside_region": 40, "support": 0, "floaters": 0}, removed_percent=40.0, crop=None,
        crop_source=None, units="sfm",
    ).model_dump(mode="json")  # fmt: skip


def test_asset_section_says_when_no_support_was_found_and_what_a_scene_keeps() -> None:
    no_support = asset_section(_asset_metrics("object", None))
    assert "No floor, table or wall was found" in no_support and "set asset.crop" in no_support
    assert "<th>support found</th><td>none</td>" in no_support
    scene = asset_section(_asset_metrics("scene", None))
    assert "A scene: the fused cloud is kept whole" in scene and "Removed" not in scene
    assert "<th>reason</th><td>why</td>" in scene  # the evidence, for a scene too
