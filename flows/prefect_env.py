"""Where Prefect keeps its state when no server is configured, and settings that hold on a busy machine.

`configure` must run before `import prefect`: Prefect reads its settings from the environment on import.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

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
            server.start()
            return
        except RuntimeError as exc:
            server.stop()  # Prefect leaves the slow process running: stop it before trying again
            log.warning("Prefect's local API did not start in %d s (attempt %d): %s", timeout, attempt, _first(exc))
    raise PhotoforgeError(
        f"[{stage}] Prefect's local API server did not start in {timeout} s, twice (is the machine busy?): "
        "try again, raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start `photoforge ui` in another "
        "terminal and set PREFECT_API_URL=http://127.0.0.1:4200/api"
    )


def _first(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
