"""Render a glTF/GLB grey-shaded in three.js (headless chromium) and compare renders pixel by pixel.

What a web viewer shows of a normal-mapped low-poly level, next to the high-res mesh it was baked from:
tools/shade_gltf.html loads the file with three.js's GLTFLoader, replaces every material by one grey
MeshStandardMaterial keeping only the normal map (or none, or the map with its green channel read
upside down: the controls), lights it with one directional light and a weak ambient one and draws it
from a fixed direction, framing a box given in the address (the same box for every level of an object:
their renders line up pixel for pixel). Chromium runs headless with WebGL on SwiftShader (software, no
GPU needed), takes a screenshot of the window and dumps the DOM, whose #result says whether the page
rendered ('done ...') or why not ('error: ...'). The page is served with `browser_load.serve`; its
/hold request keeps chromium's virtual time from running out while the textures decode.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from photoforge.qa import browser_load
from photoforge.qa.browser_load import TOOLS, WEBGL_FLAGS, run_chromium, serve

SHADE_PAGE = TOOLS / "shade_gltf.html"

Box = tuple[float, float, float, float, float, float]  # min x, y, z, max x, y, z


def unavailable_reason() -> str | None:
    """Why a GLB cannot be rendered in a browser here (None: it can)."""
    return browser_load.unavailable_reason(SHADE_PAGE)


def union_box(*vertices: np.ndarray) -> Box:
    """The box around all of the given V x 3 vertex arrays: one `frame` for every level of an object."""
    points = np.concatenate([np.asarray(v, np.float64).reshape(-1, 3) for v in vertices])
    (x0, y0, z0), (x1, y1, z1) = points.min(axis=0).tolist(), points.max(axis=0).tolist()
    return (x0, y0, z0, x1, y1, z1)


def screenshot(
    url: str, *, width: int, height: int, timeout: float = 90, budget_ms: int = 10_000
) -> tuple[np.ndarray, str]:
    """The page at `url` in a width x height window of headless chromium, WebGL on SwiftShader, once it
    loaded and ran for `budget_ms` of virtual time: (height x width x 3 uint8 screenshot, its DOM)."""
    with tempfile.TemporaryDirectory(prefix="photoforge-screenshot-") as scratch:
        shot = Path(scratch) / "screenshot.png"
        flags = [
            *WEBGL_FLAGS, f"--window-size={width},{height}", f"--virtual-time-budget={budget_ms}",
            f"--screenshot={shot}", "--dump-dom",
        ]  # fmt: skip
        run = run_chromium(flags, url, timeout=timeout)
        if run.returncode != 0 or not shot.is_file():
            said = "\n".join(line for line in run.stderr.splitlines() if "dbus" not in line)
            raise RuntimeError(f"chromium made no screenshot (exit {run.returncode}): {said.strip()[-300:]}")
        with Image.open(shot) as image:
            pixels = np.asarray(image.convert("RGB"))
        dom = run.stdout
    if pixels.shape != (height, width, 3):
        raise RuntimeError(f"chromium's screenshot is {pixels.shape[1]}x{pixels.shape[0]}, not {width}x{height}")
    return pixels, dom


def render_gltf(
    path: Path,
    *,
    normal_map: bool = True,
    flip_green: bool = False,
    size: int = 480,
    frame: Sequence[float] | None = None,
    timeout: float = 90,
) -> np.ndarray:
    """size x size x 3 uint8: the glTF/GLB at `path` grey-shaded by three.js (tools/shade_gltf.html).

    normal_map: keep the material's normal map (False: shade with the vertex normals alone).
    flip_green: read the map's green channel upside down (normalScale.y = -1), a control that should look
    worse than the right way up. frame: the box to frame (min x, y, z, max x, y, z; `union_box`): give all
    renders of one object the same box; None frames the file's own box. Black background, 0 outside.
    Raises RuntimeError when the page cannot render the file or chromium fails.
    """
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"cannot render in a browser: {reason}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    query = f"glb=/asset.glb&w={size}&h={size}&nm={int(normal_map)}&flipy={int(flip_green)}"
    if frame is not None:
        box = [float(x) for x in frame]
        if len(box) != 6 or not np.all(np.isfinite(box)) or any(box[i] > box[i + 3] for i in range(3)):
            raise ValueError(f"frame must be a box (min x, y, z, max x, y, z), got {tuple(frame)}")
        query += "&box=" + ",".join(repr(x) for x in box)
    source = Path(path).resolve()
    if not source.is_file():
        raise RuntimeError(f"no file at {source}")
    with serve(TOOLS, {"/asset.glb": source}) as base:
        pixels, dom = screenshot(f"{base}/{SHADE_PAGE.name}?{query}", width=size, height=size, timeout=timeout)
    said = browser_load.page_result(dom) or ""
    if said == "loading":
        raise RuntimeError(f"three.js was still loading {source.name} when chromium's time budget ran out")
    if not said.startswith("done"):
        raise RuntimeError(f"three.js could not render {source.name}: {said or dom.strip()[-300:]}")
    return pixels


def object_mask(*images: np.ndarray, erode: int = 2) -> np.ndarray:
    """H x W bool: pixels lit in every render (grey > 0 on the black background), less `erode` pixels along
    the silhouettes, where antialiasing and the levels' outlines differ."""
    inside = np.logical_and.reduce([np.asarray(image).max(axis=-1) > 0 for image in images])
    if erode > 0:
        inside = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=erode) > 0
    return inside


def mean_abs_difference(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean |grey a - grey b| (0-255, grey = the mean of the channels) over `mask`'s pixels (all: None)."""
    grey_a = np.asarray(a, np.float64).reshape(*np.shape(a)[:2], -1).mean(axis=-1)
    grey_b = np.asarray(b, np.float64).reshape(*np.shape(b)[:2], -1).mean(axis=-1)
    if grey_a.shape != grey_b.shape:
        raise ValueError(f"images differ in size: {grey_a.shape} and {grey_b.shape}")
    difference = np.abs(grey_a - grey_b)
    if mask is not None:
        difference = difference[np.asarray(mask, bool)]
    if difference.size == 0:
        raise ValueError("no pixels to compare")
    return float(difference.mean())
