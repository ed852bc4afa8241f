"""Where Prefect keeps its state when no server is configured, and settings that hold on a busy machine.

`configure` must run before `import prefect`: Prefect reads its settings from the environment on import.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from photoforge.errors import PhotoforgeError

log = logging.getLogger("photoforge")

# Prefect's defaults assume an idle machine: a 20 s ephemeral-server start, 10 s SQLite statements. On a loaded
# 2-core machine the server start alone took longer than 20 s and client calls timed out. Users' own values win.
LOADED_MACHINE_SETTINGS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_API_REQUEST_TIMEOUT": "120",
    "PREFECT_CLIENT_MAX_RETRIES": "8",
    "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
    "PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT": "30",
}

START_ATTEMPTS = 2


def configure(workspace: Path, verbose: bool = False) -> Path | None:
    """Point Prefect at WORKSPACE/.prefect (SQLite) unless the user configured a server or home.

    Returns the PREFECT_HOME used, or None when the user's own configuration applies.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "photoforge")
    for name, value in LOADED_MACHINE_SETTINGS.items():
        os.environ.setdefault(name, value)
    # Heartbeats every 30 s (Prefect's minimum; default 180): on a shared server `photoforge deploy`'s
    # zombie-run automation crashes runs silent for 90 s, which would otherwise include every local run.
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30")
    if not verbose:
        # photoforge prints its own progress and errors; Prefect's console lines would repeat them.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_INTERNAL_LOGGING_LEVEL", "CRITICAL")
    if "PREFECT_API_URL" in os.environ or "PREFECT_HOME" in os.environ:
        return None
    home = (workspace / ".prefect").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(home)
    return home


def start_local_api(stage: str) -> None:
    """Start Prefect's ephemeral API now (not inside the first flow call), retrying a slow start once.

    Prefect starts it lazily and, when it is slow, raises a 40-line RuntimeError and leaves the half-started
    server process running. Here a failed start is stopped, tried again, then reported as one line.
    No-op when a server is configured (PREFECT_API_URL).
    """
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return
    from prefect.server.api.server import SubprocessASGIServer

    timeout = settings.server.ephemeral.startup_timeout_seconds
    for attempt in range(1, START_ATTEMPTS + 1):
        server = SubprocessASGIServer()
        try:
            with _children_die_with_us():
                server.start()
            return
        except Exception as exc:  # a timeout (RuntimeError), or the health probe's own httpx errors when slow
            server.stop()  # Prefect leaves the slow process running: stop it before trying again
            log.warning("Prefect's local API did not start in %d s (attempt %d): %s", timeout, attempt, _first(exc))
    raise PhotoforgeError(
        f"[{stage}] Prefect's local API server did not start in {timeout} s, twice (is the machine busy?): "
        "try again, raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or run `photoforge server start` once "
        "(runs on the workspace then use that server)"
    )


@contextlib.contextmanager
def _children_die_with_us() -> Iterator[None]:
    """Processes Prefect starts meanwhile get `dies_with_parent` (it builds the server's Popen itself, so
    Popen is wrapped while the server starts)."""
    preexec = dies_with_parent()
    if preexec is None:
        yield
        return
    original = subprocess.Popen

    class _BoundPopen(original):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("preexec_fn", preexec)
            super().__init__(*args, **kwargs)

    subprocess.Popen = _BoundPopen  # type: ignore[misc]
    try:
        yield
    finally:
        subprocess.Popen = original  # type: ignore[misc]


_PR_SET_PDEATHSIG = 1


def dies_with_parent() -> Callable[[], None] | None:
    """A Popen `preexec_fn` that makes the child get SIGTERM when this process dies, however it dies (Linux).

    A C++ abort inside COLMAP (e.g. its database on a full disk) or SIGKILL runs no Python clean-up, and
    Prefect's server process was left listening with parent PID 1: prctl(PR_SET_PDEATHSIG) in the child
    ties its life to ours. None where prctl is not available.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_death_signal


def _first(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
