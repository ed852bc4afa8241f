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

from photoforge.layout import POSTER, REPORT_HTML, REPORT_JSON, SHEET, VIDEO
from photoforge.report.html import SECTIONS
from photoforge.stages import report, turntable

FRAMES, WIDTH, HEIGHT = 24, 320, 240


@pytest.fixture(scope="module")
def shown(asset_run: dict) -> dict:
    store, cfg = asset_run["store"], asset_run["cfg"]
    params = cfg.turntable.model_copy(update={"frames": FRAMES, "width": WIDTH, "height": HEIGHT})
    video = turntable.STAGE.execute(
        store, turntable.TurntableInputs(uv=asset_run["uv"], bake=asset_run["bake"]), params
    )
    results = {name: asset_run[key] for name, key in (("ingest", "frames"), ("poses", "sparse"), ("depth", "depth"))}
    results |= {name: asset_run[name] for name in ("fusion", "mesh", "uv", "bake", "export")}
    results["turntable"] = video
    inputs = report.ReportInputs(
        capture="synthetic", results=results, preset="standard", overrides={"uv.texture_size": 1024}
    )
    page = report.STAGE.execute(store, inputs, cfg.report)
    return {"turntable": video, "report": page, "background": np.array(params.background)}


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
    assert poster.shape == (HEIGHT, WIDTH, 3) and sheet.shape[1] == 4 * 320


def test_report_has_every_section_and_its_images(shown: dict) -> None:
    page = (shown["report"].dir / REPORT_HTML).read_text()
    for key, title in SECTIONS:
        if key == "splat":  # no splat stage in this run: no empty section either
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
        "turntable": ("frames", "render_fps"),
    }
    for section, keys in expected.items():
        for key in keys:
            assert data[section][key] is not None, f"{section}.{key}"
    assert data["stages"][0]["stage"] == "ingest" and len(data["stages"]) == 9
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
