"""The report's interactive 3D viewer: its files beside report.html and its section of the page.

The viewer (tools/viewer/viewer.js: three.js, and Spark for splats) is bundled by scripts/setup.sh into
one classic script, because a page opened from disk (file://) can run neither ES modules nor fetch().
For the same reason each model also travels as a data script, viewer/NAME.js, that hands the model's
bytes (base64) to the viewer; over http the viewer fetches the model files themselves when it can.
Everything stays inside the report's folder, so the folder works when copied elsewhere.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from photoforge.layout import VIEWER_DIR
from photoforge.qa.gltf_validation import TOOLS

BUNDLE = TOOLS / "viewer" / "dist" / "viewer.js"
LICENSES = BUNDLE.with_name("LICENSES.txt")
# Apple Quick Look opens a USDZ in AR from a link with rel="ar" whose first child is an image.
_AR_ICON = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" fill="none" '
        b'stroke="#333" stroke-width="2"><path d="M12 2l9 5v10l-9 5-9-5V7z"/><path d="M12 22V12l9-5M12 12L3 7"/>'
        b"</svg>"
    ).decode()
)


class ViewerModel(BaseModel):
    """One model the viewer can show: its label, where http fetches it (None: only its data script)."""

    model_config = ConfigDict(extra="forbid")

    label: str
    url: str | None  # relative to report.html
    data: str  # the data script, relative to report.html
    name: str  # the key the data script files the bytes under


class ViewerConfig(BaseModel):
    """What the page's #viewer-config tells the viewer; also report.json's 'viewer'."""

    model_config = ConfigDict(extra="forbid")

    available: bool
    reason: str | None = None  # why there is no viewer
    levels: list[ViewerModel] = []
    splats: ViewerModel | None = None
    usdz: str | None = None  # an AR (Quick Look) link when the export wrote one
    download: str | None = None  # the GLB to offer for download
    note: str | None = None  # what the viewer leaves out and why (e.g. splats it could not read)


@dataclass(frozen=True)
class ModelFile:
    """A file to show: its path now, its name beside report.html, its label in the level list."""

    path: Path
    name: str
    label: str


def unavailable_reason() -> str | None:
    """Why this checkout cannot add the viewer (None: it can)."""
    if not BUNDLE.is_file():
        return "tools/viewer/dist/viewer.js missing: run scripts/setup.sh (it bundles the viewer with npm)"
    return None


def bundle_digest() -> str | None:
    """The bundle's content hash: a rebuilt viewer gives the report a new key (hashed once per build)."""
    if not BUNDLE.is_file():
        return None
    stat = BUNDLE.stat()
    return _digest(BUNDLE, stat.st_mtime_ns, stat.st_size)


@functools.cache
def _digest(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def data_script(name: str, payload: bytes) -> str:
    """A classic script that files `payload` (base64) under `name` for the viewer."""
    encoded = base64.b64encode(payload).decode("ascii")
    return f"(window.photoforgeViewerData = window.photoforgeViewerData || {{}})[{json.dumps(name)}] = {encoded!r};\n"


def write_viewer(
    out: Path,
    *,
    levels: list[ModelFile],
    splats: ModelFile | None,
    usdz: str | None,
    download: str | None,
    note: str | None = None,
) -> ViewerConfig:
    """The bundle and a data script per model under out/viewer/; the config the page embeds.

    levels: the GLBs, shown by URL over http (their names beside report.html). splats: a 3DGS PLY made
    for the viewer; it lives only in its data script (it is not a deliverable of its own).
    """
    reason = unavailable_reason()
    if reason is not None:
        return ViewerConfig(available=False, reason=reason)
    folder = out / VIEWER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BUNDLE, folder / BUNDLE.name)
    if LICENSES.is_file():
        shutil.copyfile(LICENSES, folder / LICENSES.name)  # three.js and Spark are MIT: their notices travel along

    def entry(model: ModelFile, *, url: str | None) -> ViewerModel:
        script = f"{model.name}.js"
        (folder / script).write_text(data_script(model.name, model.path.read_bytes()))
        return ViewerModel(label=model.label, url=url, data=f"{VIEWER_DIR}/{script}", name=model.name)

    return ViewerConfig(
        available=True,
        levels=[entry(level, url=level.name) for level in levels],
        splats=entry(splats, url=None) if splats is not None else None,
        usdz=usdz,
        download=download,
        note=note,
    )


def section(config: ViewerConfig) -> str:
    """The viewer's part of report.html: controls, canvas, status line, its config and the bundle."""
    if not config.available:
        return f'<p class="hint">No 3D viewer in this report: {html.escape(config.reason or "unknown")}.</p>'
    links = []
    if config.download:
        name = html.escape(config.download)
        links.append(f'<a href="{name}" download>download {name}</a>')
    if config.usdz:
        name = html.escape(config.usdz)
        links.append(f'<a rel="ar" href="{name}"><img src="{_AR_ICON}" alt="AR" width="16" height="16"> AR (iOS)</a>')
    splats = '<label><input type="checkbox" id="viewer-splats"> splats</label>' if config.splats is not None else ""
    note = f'<p class="hint">{html.escape(config.note)}</p>' if config.note else ""
    embedded = config.model_dump_json().replace("<", "\\u003c")  # no "</script>" or "<!--" can end the JSON
    return f"""<div class="viewer-bar">
<label>level <select id="viewer-level"></select></label>
<label><input type="checkbox" id="viewer-texture" checked> texture</label>
<label><input type="checkbox" id="viewer-wireframe"> wireframe</label>
{splats}<button type="button" id="viewer-reset">reset view</button> {" ".join(links)}
</div>
<canvas id="viewer-canvas"></canvas>
<p id="viewer-status">loading</p>{note}
<p class="viewer-help">Drag to orbit, scroll to zoom, right-drag to pan.</p>
<script id="viewer-config" type="application/json">{embedded}</script>
<script src="{VIEWER_DIR}/{BUNDLE.name}"></script>"""


VIEWER_CSS = """
#viewer-canvas { width: 100%; height: 560px; display: block; background: #30343a; border-radius: 4px; }
.viewer-bar { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; margin: .4em 0; }
#viewer-status, .viewer-help { font-size: 12px; color: #555; margin: .2em 0; }
body.viewer-only { margin: 0; max-width: none; padding: 6px 10px; }
body.viewer-only > :not(#viewer), body.viewer-only #viewer > h2 { display: none; }
body.viewer-only #viewer-canvas { height: calc(100vh - 90px); }
"""
