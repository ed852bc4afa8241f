"""What every stage shares: its identity, its cache key, and cached execution.

A stage's key hashes the content of its inputs (for an upstream artefact: that artefact's
key), its params, its code VERSION and the versions of the libraries it calls, so keys
chain down the DAG and a change re-runs exactly the stages below it.
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from photoforge import __version__
from photoforge.diskspace import require_free
from photoforge.hashing import combine
from photoforge.locks import Holder, KeyLock
from photoforge.store import MANIFEST, ArtefactStore, atomic_dir, read_manifest, write_json

log = logging.getLogger("photoforge")


class Progress(Protocol):
    """Reports progress of long work: `done` of `total` units, with a short message."""

    def __call__(self, done: int, total: int, message: str = "") -> None: ...


def no_progress(done: int, total: int, message: str = "") -> None:
    """A Progress that reports nothing (library calls outside the CLI and the flow)."""


class StageParams(BaseModel):
    """Base for a stage's params: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StageResult(BaseModel):
    """A reference to a complete artefact: small enough to pass between Prefect tasks."""

    stage: str
    key: str
    path: str
    metrics: dict[str, Any]
    reused: bool
    seconds: float
    compute_seconds: float

    @property
    def dir(self) -> Path:
        return Path(self.path)

    def summary_metric(self) -> str:
        return str(self.metrics.get("summary", ""))


@dataclass(frozen=True)
class Stage:
    name: str
    version: str
    libraries: tuple[str, ...] = ()

    def library_versions(self) -> dict[str, str]:
        return {lib: _dist_version(lib) for lib in self.libraries}

    def key(self, params: StageParams, inputs: Mapping[str, Any]) -> str:
        return combine(
            {
                "stage": self.name,
                "version": self.version,
                "params": params.model_dump(mode="json"),
                "inputs": dict(inputs),
                "libraries": self.library_versions(),
            }
        )

    def execute(
        self,
        store: ArtefactStore,
        params: StageParams,
        inputs: Mapping[str, Any],
        compute: Callable[[Path], dict[str, Any]],
    ) -> StageResult:
        """Reuse the artefact for this key if one is complete, else compute it atomically.

        Under the key's lock: a run that needs a key another process is computing waits for
        it and reuses its artefact rather than computing it a second time.
        """
        start = time.perf_counter()
        key = self.key(params, inputs)
        found = store.find(self.name, key)
        if found is not None:
            return self._reuse(found, key, start)
        with KeyLock(store.lock_path(self.name, key), label=self.name) as lock:
            found = store.find(self.name, key)
            if found is not None:
                return self._reuse(found, key, start, maker=lock.waited_for)
            return self._compute(store, params, inputs, compute, key=key, start=start)

    def _reuse(self, found: Path, key: str, start: float, maker: Holder | None = None) -> StageResult:
        manifest = read_manifest(found)
        by = f" (computed meanwhile by host {maker.host} pid {maker.pid})" if maker is not None else ""
        log.info("%s: reusing %s%s", self.name, found, by)
        return StageResult(
            stage=self.name,
            key=key,
            path=str(found),
            metrics=manifest.get("metrics", {}),
            reused=True,
            seconds=time.perf_counter() - start,
            compute_seconds=float(manifest.get("seconds", 0.0)),
        )

    def _compute(
        self,
        store: ArtefactStore,
        params: StageParams,
        inputs: Mapping[str, Any],
        compute: Callable[[Path], dict[str, Any]],
        *,
        key: str,
        start: float,
    ) -> StageResult:
        final = store.stage_dir(self.name, key)
        require_free(self.name, final.parent)
        started = datetime.now(UTC)
        begin = time.perf_counter()  # a wait for the lock is not compute time
        with atomic_dir(final) as tmp:
            metrics = compute(tmp)
            seconds = time.perf_counter() - begin
            write_json(
                tmp / MANIFEST,
                {
                    "stage": self.name,
                    "key": key,
                    "version": self.version,
                    "photoforge": __version__,
                    "params": params.model_dump(mode="json"),
                    "inputs": dict(inputs),
                    "libraries": self.library_versions(),
                    "started": started.isoformat(),
                    "finished": datetime.now(UTC).isoformat(),
                    "seconds": round(seconds, 3),
                    "metrics": metrics,
                },
            )
        return StageResult(
            stage=self.name,
            key=key,
            path=str(final),
            metrics=metrics,
            reused=False,
            seconds=time.perf_counter() - start,
            compute_seconds=seconds,
        )


# Builds of one library under another distribution name (same module, same version numbers).
_BUILDS = {"pycolmap": ("pycolmap", "pycolmap-cuda12")}


def _dist_version(dist: str) -> str:
    """The library's version without its local build tag: `2.5.1+cu124` and `2.5.1+cpu` key alike,
    so a CPU worker and a GPU worker agree on keys and reuse each other's artefacts."""
    for name in _BUILDS.get(dist, (dist,)):
        try:
            return importlib.metadata.version(name).split("+")[0]
        except importlib.metadata.PackageNotFoundError:
            continue
    return "absent"
