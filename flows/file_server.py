"""A read-only file server for the workspace on 127.0.0.1, so the Prefect UI's links open files.

It serves regular files whose real path lies inside the workspace, and nothing else: no
directory listings, nothing in a dot-folder (`.prefect/prefect.db`, temp dirs, checkpoints),
nothing a symlink leads to outside. It answers only requests addressed to a local host name,
so a web page that rebinds its own DNS name to 127.0.0.1 cannot read the workspace.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

LOCAL_HOSTS = ("127.0.0.1", "localhost")


class _WorkspaceHandler(SimpleHTTPRequestHandler):
    """GET and HEAD of workspace files (SimpleHTTPRequestHandler's copy and MIME types); quiet logs."""

    def __init__(self, *args: Any, root: Path, hosts: frozenset[str], **kwargs: Any) -> None:
        self.root = root  # set first: the base __init__ handles the request
        self.hosts = hosts
        super().__init__(*args, directory=str(root), **kwargs)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def send_head(self) -> BinaryIO | None:
        """Headers for a servable file, and the open file; otherwise the error, and None."""
        if not self._host_allowed():
            self.send_error(HTTPStatus.FORBIDDEN, "not a local host name")
            return None
        target = self._target()
        if target is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        try:
            file = open(target, "rb")  # noqa: SIM115 - do_GET copies it, then closes it
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        stat = os.fstat(file.fileno())
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", self.guess_type(str(target)))
        self.send_header("Content-Length", str(stat.st_size))
        self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
        self.end_headers()
        return file

    def _host_allowed(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        if host.startswith("["):  # [::1]:port
            name = host.partition("]")[0] + "]"
        else:
            name = host.rpartition(":")[0] if ":" in host else host
        return name in self.hosts

    def _target(self) -> Path | None:
        """The requested file's real path if it is a regular file inside the workspace, outside dot-folders."""
        try:
            names = unquote(urlsplit(self.path).path, errors="strict").split("/")
        except UnicodeDecodeError:
            return None
        names = [name for name in names if name]
        if not names or any(name.startswith(".") or "\\" in name or "\0" in name for name in names):
            return None
        try:
            real = self.root.joinpath(*names).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):
            return None
        if not real.is_relative_to(self.root) or not real.is_file():
            return None
        if any(part.startswith(".") for part in real.relative_to(self.root).parts):
            return None
        return real

    def _refuse_method(self) -> None:
        self.close_connection = True  # its body, if any, is left unread
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse_method


def serve_workspace(workspace: Path, port: int, *, hosts: Iterable[str] = ()) -> ThreadingHTTPServer:
    """Start serving `workspace` on 127.0.0.1:port in a daemon thread; call .shutdown() and .server_close().

    `hosts`: host names besides 127.0.0.1 and localhost that requests may address (a proxy's name).
    """
    root = workspace.resolve(strict=True)
    allowed = frozenset(h.lower() for h in (*LOCAL_HOSTS, *hosts))
    handler = functools.partial(_WorkspaceHandler, root=root, hosts=allowed)
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, name="photoforge-files", daemon=True).start()
    return server
