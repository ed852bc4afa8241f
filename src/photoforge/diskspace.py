"""Free space checked before a stage writes anything.

A full disk is an error the user fixes, so it should read as one line. Python writers raise OSError(ENOSPC),
which the flow turns into that line; but COLMAP's database on a full disk throws inside a C++ destructor and
aborts the whole process (SIGABRT, a C stack dump, nothing reported). A check before the stage starts is the
only place where that case can still be said clearly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from photoforge.errors import NO_SPACE_ADVICE, StageError

MIN_FREE_ENV = "PHOTOFORGE_MIN_FREE_MB"
DEFAULT_MIN_FREE_MB = 64
_MB = 1024 * 1024


def min_free_bytes() -> int:
    """The free space every stage keeps in reserve (PHOTOFORGE_MIN_FREE_MB, default 64)."""
    raw = os.environ.get(MIN_FREE_ENV, str(DEFAULT_MIN_FREE_MB))
    try:
        return max(0, int(float(raw) * _MB))
    except ValueError as exc:
        raise StageError("workspace", f"{MIN_FREE_ENV}={raw!r} is not a number of megabytes") from exc


def require_free(stage: str, path: Path, *, needed_bytes: int = 0) -> None:
    """Fail with 'no space left' when the disk under `path` has less than the stage needs plus the reserve."""
    need = needed_bytes + min_free_bytes()
    if need <= 0:
        return
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < need:
        raise StageError(
            stage,
            f"no space left on device: {free / _MB:.1f} MB free where this stage needs about {need / _MB:.1f} MB: "
            + NO_SPACE_ADVICE,
            path,
        )
