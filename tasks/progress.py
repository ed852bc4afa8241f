"""Stage progress into the Prefect run (log lines and a progress artifact), throttled."""

from __future__ import annotations

import logging
import time
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

log = logging.getLogger("photoforge.progress")

_MIN_INTERVAL_S = 1.0


class TaskProgress:
    """A photoforge Progress that reports to the log (CLI, UI) and a Prefect progress artifact."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._last = 0.0
        self._artifact: UUID | None = None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        finished = total > 0 and done >= total
        if not finished and now - self._last < _MIN_INTERVAL_S:
            return
        self._last = now
        percent = 100.0 * done / total if total else 0.0
        log.info("%s %d/%d %s", self.stage, done, total, message)
        try:
            if self._artifact is None:
                self._artifact = create_progress_artifact(percent, description=f"{self.stage}: {message}")
            else:
                update_progress_artifact(self._artifact, percent, description=f"{self.stage}: {message}")
        except Exception as exc:  # progress must never fail a stage
            log.debug("progress artifact not updated: %s", exc)
