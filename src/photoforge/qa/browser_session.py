"""Drive a headless chromium page over the DevTools protocol: wait for the page in real time, run script, screenshot.

`--screenshot --virtual-time-budget` (browser_render) suits a page whose work is network requests:
virtual time does not wait for web workers or image decoding, so a page that sorts splats in a worker, or
decodes textures, may still say "loading" when the budget runs out. Here chromium runs with
`--remote-debugging-pipe` (the DevTools protocol as NUL-terminated JSON on file descriptors 3 and 4, no
port, no websocket library): the caller waits until the page's own expression says it is done, in real
seconds, evaluates script in it (e.g. turn the viewer) and takes screenshots of the same page.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from photoforge.qa.browser_load import WEBGL_FLAGS, chromium_command


class BrowserPage:
    """One page of a chromium started by `browser_page`; every call raises RuntimeError on a failure."""

    def __init__(self, process: subprocess.Popen[bytes], *, to_browser: int, from_browser: int, log: Path) -> None:
        self._process = process
        self._log = log
        self._to, self._from = to_browser, from_browser
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None

    def _send(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None and not method.startswith("Target."):
            message["sessionId"] = self._session
        try:
            os.write(self._to, json.dumps(message).encode() + b"\0")
        except OSError as exc:  # BrokenPipeError: chromium is gone
            raise RuntimeError(f"chromium is gone ({exc}){self._said()}") from exc
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"chromium: {method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("chromium did not answer in time")
            ready, _, _ = select.select([self._from], [], [], left)
            if ready:
                chunk = os.read(self._from, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed its DevTools pipe (it exited){self._said()}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _attach(self, *, width: int, height: int) -> None:
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self._send("Page.enable")
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self._send("Emulation.setDeviceMetricsOverride", metrics)

    def _said(self) -> str:
        """The end of chromium's own log, to say why it failed."""
        try:
            lines = [x for x in self._log.read_text(errors="replace").splitlines() if "dbus" not in x.lower()]
        except OSError:
            return ""
        return f": {' / '.join(lines[-3:])[-400:]}" if lines else ""

    def goto(self, url: str) -> None:
        self._send("Page.navigate", {"url": url})

    def evaluate(self, expression: str, *, timeout: float = 30) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        result = self._send("Runtime.evaluate", params, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(f"script failed in the page: {details.get('exception', {}).get('description', details)}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float) -> Any:
        """Poll `expression` until it is truthy (its value) or `timeout` real seconds pass (RuntimeError).

        A script error counts as not yet: right after goto() the old document may still answer, or none.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError as exc:
                if self._process.poll() is not None:
                    raise
                value, last = None, exc
            else:
                last = None
            if value:
                return value
            if time.monotonic() > deadline:
                why = f" (last: {last})" if last else ""
                raise RuntimeError(f"the page did not get there in {timeout:g} s: {expression}{why}")
            time.sleep(0.2)

    def screenshot(self) -> np.ndarray:
        """H x W x 3 uint8 RGB of the page's viewport."""
        data = self._send("Page.captureScreenshot", {"format": "png"}, timeout=60)["data"]
        image = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise RuntimeError("chromium's screenshot is not a PNG")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@contextmanager
def browser_page(*, width: int, height: int, webgl: bool = True) -> Iterator[BrowserPage]:
    """A blank width x height page in a fresh headless chromium (WebGL on SwiftShader), closed afterwards."""
    with ExitStack() as stack:
        profile = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="photoforge-chromium-")))
        fds = _Descriptors()
        stack.callback(fds.close_all)
        to_read, to_browser = fds.pipe()  # chromium reads its commands on fd 3
        from_browser, to_write = fds.pipe()  # and writes its answers on fd 4
        log = profile / "chromium.log"
        flags = [*(WEBGL_FLAGS if webgl else ("--disable-gpu",)), "--remote-debugging-pipe",
                 f"--window-size={width},{height}"]  # fmt: skip
        command = chromium_command(flags, "about:blank", profile=profile / "user")

        def descriptors() -> None:  # in the child: the pipe ends at 3 and 4, copied above 10 first (no clobbering)
            high_read, high_write = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_read, to_write))
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        with log.open("wb") as said:
            process = subprocess.Popen(
                command, stdout=said, stderr=said, pass_fds=(3, 4), preexec_fn=descriptors, start_new_session=True
            )
        stack.callback(_stop, process)
        fds.close(to_read)  # the child's ends: chromium holds them now (its exit then ends our reads)
        fds.close(to_write)
        page = BrowserPage(process, to_browser=to_browser, from_browser=from_browser, log=log)
        page._attach(width=width, height=height)
        yield page


class _Descriptors:
    """File descriptors this process opened, each closed once (a closed number may be reused at once)."""

    def __init__(self) -> None:
        self._open: set[int] = set()

    def pipe(self) -> tuple[int, int]:
        read, write = os.pipe()
        self._open |= {read, write}
        return read, write

    def close(self, fd: int) -> None:
        if fd in self._open:
            self._open.discard(fd)
            os.close(fd)

    def close_all(self) -> None:
        for fd in list(self._open):
            self.close(fd)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Chromium and its renderer and GPU processes (its own process group), gone."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
