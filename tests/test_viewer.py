"""The report's interactive 3D viewer, in a real browser (headless chromium, WebGL on SwiftShader).

The synthetic asset's report is opened from disk, as a user opens it, and over http, as `photoforge ui`
serves it; screenshots show the textured model, a scripted orbit turns it, the texture and wireframe
switches change it, a second level is listed and shown, and a small splat file is drawn where the mesh is.
Set PHOTOFORGE_SCREENSHOTS=DIR to keep the screenshots (README's picture of the viewer comes from here).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import trimesh
from support_stages import handmade_artefact

from photoforge.io.outputs import publish
from photoforge.layout import ASSET_GLB, REPORT_HTML, REPORT_JSON, SPLATS_PLY, VIEWER_DIR, world_to_asset
from photoforge.metrics import SplatMetrics
from photoforge.qa import browser_load, browser_render
from photoforge.qa.browser_session import BrowserPage, browser_page
from photoforge.report import viewer
from photoforge.splatting.gaussians import Splats, rgb_to_sh
from photoforge.splatting.ply import write_splat_ply
from photoforge.stage import StageResult, no_progress
from photoforge.stages import report
from photoforge.summary import RunSummary, StageRow

WIDTH, HEIGHT = 800, 600
BACKGROUND = np.array([0x30, 0x34, 0x3A])  # the viewer's clear colour
RED = (0.9, 0.1, 0.1)

pytestmark = pytest.mark.skipif(
    browser_render.unavailable_reason() is not None or viewer.unavailable_reason() is not None,
    reason=f"{browser_render.unavailable_reason() or viewer.unavailable_reason()}",
)


READY = (
    "(e => e && /^(ready|error)/.test(e.textContent) ? e.textContent : '')(document.getElementById('viewer-status'))"
)


@contextmanager
def _viewer(page: Path | str, **query: object) -> Iterator[tuple[BrowserPage, str]]:
    """The viewer alone (viewer-only=1, `query` in the address) once it says it is ready: (page, status)."""
    address = page.resolve().as_uri() if isinstance(page, Path) else page
    address += "?" + "&".join(f"{k.replace('_', '-')}={v}" for k, v in {"viewer_only": 1, **query}.items())
    with browser_page(width=WIDTH, height=HEIGHT) as browser:
        browser.goto(address)
        said = browser.wait_for(READY, timeout=120)
        assert said.startswith("ready"), f"the viewer says: {said}"
        yield browser, said


def _shot(browser: BrowserPage, name: str) -> np.ndarray:
    """The canvas's pixels now (kept as NAME.png under $PHOTOFORGE_SCREENSHOTS when set)."""
    pixels = browser.screenshot()
    if os.environ.get("PHOTOFORGE_SCREENSHOTS"):
        folder = Path(os.environ["PHOTOFORGE_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    return _canvas(pixels)


def _show(page: Path | str, name: str, **query: object) -> tuple[np.ndarray, str]:
    """The viewer's canvas once ready, and its status line."""
    with _viewer(page, **query) as (browser, said):
        return _shot(browser, name), said


def _canvas(pixels: np.ndarray) -> np.ndarray:
    """The canvas's part of a screenshot: the box around the pixels of the viewer's clear colour."""
    clear = np.abs(pixels.astype(int) - BACKGROUND).max(axis=-1) <= 2  # a colour-space rounding step either way
    rows, cols = np.flatnonzero(clear.any(axis=1)), np.flatnonzero(clear.any(axis=0))
    assert rows.size and cols.size, "no viewer canvas in the screenshot"
    canvas = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    assert canvas.shape[0] > HEIGHT // 2 and canvas.shape[1] > WIDTH // 2, canvas.shape
    return canvas


def _model(canvas: np.ndarray) -> np.ndarray:
    """H x W bool: pixels that are not the clear colour (the model)."""
    return np.abs(canvas.astype(int) - BACKGROUND).sum(axis=-1) > 40


def _saturation(canvas: np.ndarray, mask: np.ndarray) -> float:
    """Mean HSV saturation (0-255) inside the mask less 3 pixels along its edge (antialiased with the background)."""
    inside = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=3) > 0
    return float(cv2.cvtColor(canvas, cv2.COLOR_RGB2HSV)[..., 1][inside].mean())


def test_report_folder_carries_the_viewer_and_the_models(shown: dict) -> None:
    folder = shown["report"].dir
    config = json.loads((folder / REPORT_JSON).read_text())["viewer"]
    assert config["available"] and config["download"] == ASSET_GLB, config
    assert (folder / VIEWER_DIR / "viewer.js").stat().st_size > 500_000  # three.js and Spark, bundled
    assert "MIT" in (folder / VIEWER_DIR / "LICENSES.txt").read_text()
    export_dir = shown["results"]["export"].dir
    for level in config["levels"]:
        script = (folder / level["data"]).read_text()
        encoded = re.search(r"= '([A-Za-z0-9+/=]+)';", script).group(1)
        assert base64.b64decode(encoded) == (export_dir / level["url"]).read_bytes()


def test_viewer_shows_the_textured_model_from_disk(shown: dict) -> None:
    canvas, said = _show(shown["report"].dir / REPORT_HTML, "viewer")
    assert "showing=mesh" in said and "level=asset.glb" in said and "from=data" in said, said
    assert "textures=1" in said, said
    model = _model(canvas)
    assert 0.08 < model.mean() < 0.8, f"the model covers {model.mean():.1%} of the canvas"
    assert _saturation(canvas, model) > 60, "the model shows no colours: is its texture missing?"


def test_a_scripted_orbit_turns_the_model(shown: dict) -> None:
    with _viewer(shown["report"].dir / REPORT_HTML) as (browser, _):
        front = _shot(browser, "viewer-front")
        browser.evaluate("photoforgeViewer.turn(90)")
        side = _shot(browser, "viewer-side")
    again, _ = _show(shown["report"].dir / REPORT_HTML, "viewer-side-by-address", azimuth=90)
    assert np.abs(side.astype(int) - again.astype(int)).mean() < 3, "turn(90) and ?azimuth=90 differ"
    seen = _model(front) | _model(side)
    change = np.abs(front.astype(int) - side.astype(int)).sum(axis=-1)[seen]
    assert (change > 60).mean() > 0.3, f"only {(change > 60).mean():.0%} of the model's pixels changed"


def test_texture_and_wireframe_switches_change_the_look(shown: dict) -> None:
    page = shown["report"].dir / REPORT_HTML
    textured, _ = _show(page, "viewer-textured")
    plain, said = _show(page, "viewer-plain", texture=0)
    grey, colourful = _saturation(plain, _model(plain)), _saturation(textured, _model(textured))
    print(f"saturation: texture off {grey:.1f}, on {colourful:.1f}")
    assert grey < 25 and colourful > 60, said
    wire, _ = _show(page, "viewer-wireframe", wireframe=1)
    assert _model(wire).mean() < 0.9 * _model(textured).mean(), "wireframe: the gaps between edges show through"


def test_viewer_over_http_fetches_the_glb_itself(shown: dict) -> None:
    """As `photoforge ui`'s file server serves outputs/: the GLB beside report.html, fetched by URL."""
    config = json.loads((shown["report"].dir / REPORT_JSON).read_text())["viewer"]
    name = config["levels"][0]["url"]
    extra = {f"/{name}": shown["results"]["export"].dir / name}
    with browser_load.serve(shown["report"].dir, extra) as base:
        canvas, said = _show(f"{base}/{REPORT_HTML}", "viewer-http")
    assert "from=url" in said and f"level={name}" in said, said
    assert _model(canvas).mean() > 0.08


def _splats_around(centre: np.ndarray, radius: float, asset_from_world: np.ndarray, count: int = 4000) -> Splats:
    """Red splats on a sphere around an asset-frame point, written in the world (SfM) frame."""
    rng = np.random.default_rng(3)
    directions = rng.normal(size=(count, 3))
    points = centre + radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    world = (np.c_[points, np.ones(count)] @ np.linalg.inv(asset_from_world).T)[:, :3]
    scale = np.cbrt(np.linalg.det(asset_from_world[:3, :3]))
    return Splats(
        means=torch.tensor(world, dtype=torch.float32),
        scales=torch.full((count, 3), float(np.log(radius * 0.08 / scale))),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(count, 1),
        opacities=torch.full((count,), 4.0),
        sh0=rgb_to_sh(torch.tensor([RED])).reshape(1, 1, 3).repeat(count, 1, 1),
        shN=torch.zeros((count, 0, 3)),
    )


def _splat_metrics(count: int) -> SplatMetrics:
    """The metrics of a splat artefact made by hand (only the count means anything)."""
    return SplatMetrics(
        device="cpu", device_fallback=None, strategy="mcmc", strategy_requested="mcmc", gaussians=count,
        gaussians_initial=count, steps=0, stopped_by="steps", train_seconds=0.0, steps_per_s=0.0,
        seconds_per_1k_steps=None, peak_gpu_memory_gb=0.0, peak_gpu_memory_reserved_gb=0.0, psnr_initial=10.0,
        ssim_initial=0.1, psnr=10.0, ssim=0.1, psnr_gain=0.0, evaluated_on="none", train_views=0, test_views=0,
        resolution=[1, 1], evaluations=[], schedule={}, resumed_from_step=None, notes=[], comparisons=[],
        summary=f"{count} splats made by hand",
    )  # fmt: skip


@pytest.fixture(scope="module")
def with_lod_and_splats(shown: dict, with_lod: StageResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic run's report with a LOD beside asset.glb and a small splat file."""
    root = tmp_path_factory.mktemp("viewer")
    mesh_dir = shown["results"]["mesh"].dir
    box = next(iter(trimesh.load(with_lod.dir / ASSET_GLB).geometry.values())).bounds
    splat = handmade_artefact(root, "splat", _splat_metrics(4000))
    splats = _splats_around(box.mean(axis=0), 0.3 * float(np.ptp(box, axis=0).max()), world_to_asset(mesh_dir))
    write_splat_ply(splat.dir / SPLATS_PLY, splats)
    return _report(shown["results"] | {"export": with_lod, "splat": splat}, root / "report")


def test_lods_are_listed_and_shown(with_lod_and_splats: Path) -> None:
    page = with_lod_and_splats.read_text()
    assert page.count("asset_lod1.glb") >= 1
    config = json.loads(re.search(r'id="viewer-config" type="application/json">(.*?)</script>', page).group(1))
    web = ["asset.web.glb"] if (with_lod_and_splats.parent / "viewer" / "asset.web.glb.js").is_file() else []
    assert [level["url"] for level in config["levels"]] == ["asset.glb", "asset_lod1.glb", *web]
    _, said_full = _show(with_lod_and_splats, "viewer-level0")
    light, said = _show(with_lod_and_splats, "viewer-lod1", level=1, wireframe=1)
    faces = int(re.search(r"faces=(\d+)", said).group(1))
    assert "level=asset_lod1.glb" in said and faces <= 3000 < int(re.search(r"faces=(\d+)", said_full).group(1))
    assert _model(light).mean() > 0.05
    if web:  # meshopt-compressed: the bundle's decoder reads it
        _, said_web = _show(with_lod_and_splats, "viewer-web", level=2)
        assert "level=asset.web.glb" in said_web and "textures=1" in said_web, said_web


def _report(results: dict, out: Path) -> Path:
    """report.run on `results` into `out` (its params resolved as the stage resolves them): report.html."""
    out.mkdir(parents=True)
    inputs = report.ReportInputs(capture="synthetic", results=results, preset="standard", overrides={})
    params = report.resolve(report.ReportParams.model_validate({}))
    report.run(inputs, out=out, params=params, progress=no_progress)
    return out / REPORT_HTML


def test_without_the_bundle_the_report_says_how_to_get_the_viewer(
    shown: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(viewer, "BUNDLE", tmp_path / "missing" / "viewer.js")
    params = report.resolve(report.ReportParams.model_validate({}))
    assert params.viewer is False and params.viewer_build is None
    page = _report(shown["results"], tmp_path / "report")
    text = page.read_text()
    assert "No 3D viewer in this report" in text and "scripts/setup.sh" in text and "<canvas" not in text
    assert not (page.parent / VIEWER_DIR).exists()
    assert json.loads((page.parent / REPORT_JSON).read_text())["viewer"]["available"] is False


def test_unreadable_splats_leave_the_viewer_without_them(shown: dict, tmp_path: Path) -> None:
    """A truncated splats.ply: the report and its mesh viewer are still written, and say why no splats."""
    splat = handmade_artefact(tmp_path, "splat", _splat_metrics(4000))
    (splat.dir / SPLATS_PLY).write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 4000\n")
    page = _report(shown["results"] | {"splat": splat}, tmp_path / "report")
    config = json.loads((page.parent / REPORT_JSON).read_text())["viewer"]
    assert config["available"] and config["splats"] is None and "splats.ply could not be read" in config["note"]
    assert "the splats are not in the viewer" in page.read_text()


def test_splat_view_draws_the_splats_where_the_mesh_is(with_lod_and_splats: Path) -> None:
    canvas, said = _show(with_lod_and_splats, "viewer-splats", show="splats")
    assert "showing=splats" in said and "splats=4000" in said, said
    red = (canvas[..., 0] > 150) & (canvas[..., 1] < 90) & (canvas[..., 2] < 90)
    assert red.mean() > 0.02, f"only {red.mean():.2%} of the canvas is the splats' red"
    rows, cols = np.nonzero(red)
    height, width = red.shape
    # framed on the mesh, so splats in the asset frame sit in the middle of the view
    assert abs(cols.mean() / width - 0.5) < 0.15 and abs(rows.mean() / height - 0.5) < 0.15


def test_outputs_keep_the_viewer_folder(shown: dict, tmp_path: Path) -> None:
    """The published report folder works alone: its viewer/ travels with report.html."""
    row = StageRow(stage="report", status="ran", seconds=1.0, key="k", path=str(shown["report"].dir))
    summary = RunSummary(capture="synthetic", preset="standard", workspace=str(tmp_path), stages=[row])
    outputs = publish(tmp_path / "outputs", summary)
    assert (outputs / VIEWER_DIR / "viewer.js").is_file()
    assert sorted(p.name for p in (outputs / VIEWER_DIR).iterdir()) == sorted(
        p.name for p in (shown["report"].dir / VIEWER_DIR).iterdir()
    )
