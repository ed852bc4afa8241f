"""A read-only static file server for the workspace on 127.0.0.1, so the Prefect UI's links open files."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _ReadOnlyHandler(SimpleHTTPRequestHandler):
    """GET and HEAD only (SimpleHTTPRequestHandler has no write methods); quiet logs."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_workspace(workspace: Path, port: int) -> ThreadingHTTPServer:
    """Start serving `workspace` on 127.0.0.1:port in a daemon thread; call .shutdown() to stop."""
    handler = functools.partial(_ReadOnlyHandler, directory=str(workspace.resolve()))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, name="photoforge-files", daemon=True).start()
    return server
