"""Open a page in headless chromium and read what it wrote: here, whether three.js loads a GLB.

ES modules do not load from file://, so the page (tools/load_gltf.html) and the GLB are served over
http://127.0.0.1 on a free port by Python's http.server in a thread, for as long as chromium runs.
Chromium's virtual time does not wait for image decoding, so a budget runs out while a large GLB's
textures decode; it does wait for network requests: the page asks /hold at once (answered when the
page asks /release, after it wrote its result), which keeps the budget from running out under it.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from photoforge.qa.gltf_validation import TOOLS

LOADER_PAGE = TOOLS / "load_gltf.html"
THREE = TOOLS / "node_modules" / "three" / "build" / "three.module.js"
HOLD_S = 60  # the longest a page's /hold waits for its /release (under load_gltf's timeout)
_RESULT = re.compile(r'<pre id="result">(.*?)</pre>', re.S)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def unavailable_reason(page: Path = LOADER_PAGE) -> str | None:
    """Why a GLB cannot be opened in a browser with `page` (a tools/ page) here (None: it can)."""
    if chromium() is None:
        return "chromium is not installed (scripts/setup.sh installs it)"
    if not THREE.is_file():
        return "tools/node_modules/three missing (scripts/setup.sh installs it)"
    if not page.is_file():
        return f"{page} missing"
    return None


def page_result(dom: str) -> str | None:
    """What a tools/ page wrote into its #result (None: no #result in the DOM)."""
    found = _RESULT.search(dom)
    return html.unescape(found.group(1)).strip() if found else None


class _Handler(SimpleHTTPRequestHandler):
    """Files under the served directory, and the extra files at their own addresses; no request log."""

    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",  # module scripts need a JavaScript type
        ".mjs": "text/javascript",
        ".glb": "model/gltf-binary",
        ".wasm": "application/wasm",
    }

    def __init__(self, *args, extra: dict[str, Path], released: threading.Event, **kwargs) -> None:
        self.extra = extra
        self.released = released
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        route = self.path.split("?", 1)[0]
        if route not in ("/hold", "/release"):
            return super().do_GET()
        if route == "/hold":
            self.released.wait(HOLD_S)
        else:
            self.released.set()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(b"ok")
        return None

    def translate_path(self, path: str) -> str:
        route = path.split("?", 1)[0].split("#", 1)[0]
        return str(self.extra[route]) if route in self.extra else super().translate_path(path)

    def log_message(self, format: str, *args) -> None:
        pass


@contextmanager
def serve(directory: Path, extra: dict[str, Path] | None = None) -> Iterator[str]:
    """Serve `directory` (and each of `extra`'s files at its address, e.g. {'/asset.glb': path}) over
    http://127.0.0.1 on a free port; yields the base address, without a trailing slash."""
    released = threading.Event()
    handler = partial(_Handler, directory=str(directory), extra=dict(extra or {}), released=released)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        released.set()  # a page that never released: let its /hold answer
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


COMMON_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)  # fmt: skip
# WebGL in software (SwiftShader: no GPU needed), one CSS pixel per pixel, no scrollbars in screenshots
WEBGL_FLAGS = (
    "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--hide-scrollbars", "--force-device-scale-factor=1",
    "--disable-features=OptimizationGuideOnDeviceModel,OnDeviceModelService",
)  # fmt: skip


def chromium_command(flags: Sequence[str], url: str, *, profile: Path) -> list[str]:
    """Headless chromium with `flags` and the fresh profile folder `profile` on `url`; RuntimeError when it
    is not installed."""
    browser = chromium()
    if browser is None:
        raise RuntimeError("chromium is not installed (scripts/setup.sh installs it)")
    return [browser, *COMMON_FLAGS, *flags, f"--user-data-dir={profile}", url]


def run_chromium(flags: list[str], url: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Headless chromium with `flags` (and a fresh profile) on `url`; RuntimeError when missing or over `timeout`."""
    with tempfile.TemporaryDirectory(prefix="photoforge-chromium-") as profile:
        command = chromium_command(flags, url, profile=Path(profile))
        # its own process group: on a timeout the renderer and GPU processes go with the browser
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True) as process:  # fmt: skip
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise RuntimeError(f"chromium did not finish in {timeout:g} s") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def dump_dom(url: str, *, timeout: float = 90, budget_ms: int = 10_000) -> str:
    """The page's DOM after it loaded and ran for `budget_ms` of virtual time (chromium --dump-dom)."""
    run = run_chromium(["--disable-gpu", f"--virtual-time-budget={budget_ms}", "--dump-dom"], url, timeout=timeout)
    if run.returncode != 0 or not run.stdout.strip():
        raise RuntimeError(f"chromium failed (exit {run.returncode}): {run.stderr.strip()[-300:]}")
    return run.stdout


def load_gltf(path: Path, *, timeout: float = 90) -> str:
    """What three.js's GLTFLoader (with the meshopt decoder) makes of the glTF/GLB at `path` in headless
    chromium: 'ok faces=N meshes=M textures=K tangents=yes|no size=X,Y,Z maps=...' or 'error: ...'."""
    reason = unavailable_reason()
    if reason is not None:
        return f"error: {reason}"
    with serve(TOOLS, {"/asset.glb": Path(path).resolve()}) as base:
        try:
            dom = dump_dom(f"{base}/{LOADER_PAGE.name}?glb=/asset.glb", timeout=timeout)
        except RuntimeError as exc:
            return f"error: {exc}"
    text = page_result(dom)
    if text is None:
        return f"error: no result in the page: {dom[-300:]}"
    return "error: the page was still loading when chromium's time budget ran out" if text == "loading" else text


def parse_result(text: str) -> dict[str, str]:
    """'ok faces=2048 textures=3 ...' as {'status': 'ok', 'faces': '2048', 'textures': '3', ...}."""
    status, _, rest = text.partition(" ")
    fields = dict(item.split("=", 1) for item in rest.split() if "=" in item) if status == "ok" else {}
    return {"status": status, **fields} if status == "ok" else {"status": "error", "message": text}
