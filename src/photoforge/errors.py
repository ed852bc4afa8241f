"""Errors a user can act on: each names the stage, the file and the cause."""

from __future__ import annotations

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
