"""Whether a local port can be listened on, asked before `photoforge ui` or `server start` starts anything."""

from __future__ import annotations

import errno
import socket

from photoforge.errors import StageError


def bind_error(port: int, host: str = "127.0.0.1") -> OSError | None:
    """The error a server would get listening on host:port now, or None.

    SO_REUSEADDR as uvicorn and http.server set it: a closed connection in TIME_WAIT does not count.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


def check_free(port: int, *, flag: str, host: str = "127.0.0.1", command: str = "ui") -> None:
    """Raise the one-line error for the user when host:port cannot be listened on; `flag` picks another."""
    error = bind_error(port, host)
    if error is None:
        return
    if error.errno == errno.EADDRINUSE:
        cause = f"port in use (another photoforge ui or Prefect server?): stop it or pass {flag}"
    else:
        cause = f"cannot listen there ({error.strerror or error}): pass another {flag}"
    raise StageError(command, cause, f"{host}:{port}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the system's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
