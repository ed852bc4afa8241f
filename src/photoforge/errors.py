"""Errors a user can act on: each names the stage, the file and the cause."""

from __future__ import annotations

import errno
from pathlib import Path


class PhotoforgeError(Exception):
    """Base for errors that the CLI prints as one clear line and exits non-zero on."""

    exit_code = 2


class StageError(PhotoforgeError):
    """A stage could not produce its artefact. Earlier stages' artefacts are untouched."""

    def __init__(self, stage: str, cause: str, path: Path | str | None = None) -> None:
        self.stage = stage
        self.cause = cause
        self.path = str(path) if path is not None else None
        where = f" {self.path}:" if self.path else ""
        super().__init__(f"[{stage}]{where} {cause}")

    def __reduce__(self) -> tuple:  # keep the fields when pickled across processes
        return (self.__class__, (self.stage, self.cause, self.path))


class ConfigError(PhotoforgeError):
    """A preset or a --set override is invalid; the message names the key and its place."""


# What to do about a full disk (here, and in the free-space check before a stage).
NO_SPACE_ADVICE = "free some space (or pass --workspace on a bigger disk) and run again; finished stages are kept"

# Causes of an OSError that a user fixes on their side (space, permissions), with what to do.
_OS_CAUSES = {
    errno.ENOSPC: f"no space left on device: {NO_SPACE_ADVICE}",
    errno.EDQUOT: "disk quota exceeded: free some space (or pass --workspace elsewhere) and run again",
    errno.EACCES: "permission denied: make it writable for this user, or pass another --workspace",
    errno.EPERM: "operation not permitted: make it writable for this user, or pass another --workspace",
    errno.EROFS: "read-only file system: pass a --workspace on a writable disk",
}


def user_facing_os_error(stage: str, exc: BaseException, where: Path | None = None) -> BaseException:
    """An OSError a user can fix (disk full, permissions) as a StageError naming the file (else `where`);
    anything else as is."""
    if isinstance(exc, PhotoforgeError) or not isinstance(exc, OSError) or exc.errno not in _OS_CAUSES:
        return exc
    error = StageError(stage, _OS_CAUSES[exc.errno], exc.filename or where)
    error.__cause__ = exc
    return error
