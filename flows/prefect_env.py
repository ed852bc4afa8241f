"""Where Prefect keeps its state when no server is configured: a project-local PREFECT_HOME.

Must run before `import prefect`: Prefect reads its settings from the environment on import.
"""

from __future__ import annotations

import os
from pathlib import Path


def configure(workspace: Path, verbose: bool = False) -> Path | None:
    """Point Prefect at WORKSPACE/.prefect (SQLite) unless the user configured a server or home.

    Returns the PREFECT_HOME used, or None when the user's own configuration applies.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "photoforge")
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
