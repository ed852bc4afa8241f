"""The stage contract: typed inputs, params and metrics, a key derived from them, cached execution.

A stage is a `Stage[Inputs, Params, Metrics]` value named STAGE in its module under
photoforge/stages/. Its key hashes, for each field of its Inputs, the upstream artefact's key (or
the value), its params (resolved), and the code it runs with the libraries that code imports
(photoforge.code_keys), so keys chain down the DAG and a change re-runs exactly the stages below it.
docs/ARCHITECTURE.md walks through a minimal stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from photoforge import __version__
from photoforge.code_keys import fingerprint
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


def off_or_at_least(minimum: float, why: str) -> AfterValidator:
    """A parameter that is 0 (off) or at least `minimum`: a value between would silently be wrong."""

    def check(value: float) -> float:
        if 0 < value < minimum:
            raise ValueError(f"0 (off) or at least {minimum:g}: {why}")
        return value

    return AfterValidator(check)


def odd_window() -> AfterValidator:
    """A window side in pixels that must be odd: an even window has no centre pixel and shifts by half."""

    def check(value: int) -> int:
        if value % 2 == 0:
            raise ValueError("an odd number of pixels (1, 3, 5, ...): an even window has no centre pixel")
        return value

    return AfterValidator(check)


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

    def metrics_as(self, model: type[M]) -> M:
        """The metrics as the stage's typed model: a renamed or missing metric fails here, loudly."""
        return model.model_validate(self.metrics)


class StageMetrics(BaseModel):
    """Base for a stage's metrics: typed fields, written to the manifest and read back by the report."""

    model_config = ConfigDict(extra="forbid")

    summary: str = ""

    def as_manifest(self) -> dict[str, Any]:
        """The metrics as written to the manifest (override to leave out what was not measured)."""
        return self.model_dump(mode="json")


class Keyed(Protocol):
    """An input value that names its own content for the key (a capture folder: its files' digests)."""

    def cache_key(self) -> Any: ...


class StageInputs(BaseModel):
    """A stage's inputs, one field per upstream artefact (a StageResult) or input value.

    The key hashes every field: an artefact by its key, a `Keyed` value by its `cache_key()`, any
    other value as JSON. A field declared with `Field(exclude=True)` is not hashed: it only locates
    data whose content another field already keys (the capture folder of photos ingest has keyed).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    def used(self, params: Any) -> Self:
        """These inputs as `params` use them: override to drop an optional input they do not read
        (so it does not enter the key) or to fail early on one they need and lack."""
        return self

    def key_part(self) -> dict[str, Any]:
        return {name: key_of(getattr(self, name)) for name, info in type(self).model_fields.items() if not info.exclude}


def key_of(value: Any) -> Any:
    """What an input contributes to a key: content identity, never a path."""
    if isinstance(value, StageResult):
        return value.key
    if hasattr(value, "cache_key"):
        return value.cache_key()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): key_of(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [key_of(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{type(value).__name__} cannot be part of a cache key: make it Keyed or exclude the field")


I = TypeVar("I", bound=StageInputs)  # noqa: E741
P = TypeVar("P", bound=StageParams)
M = TypeVar("M", bound=StageMetrics)
I_contra = TypeVar("I_contra", bound=StageInputs, contravariant=True)
P_contra = TypeVar("P_contra", bound=StageParams, contravariant=True)
M_co = TypeVar("M_co", bound=StageMetrics, covariant=True)


class StageRun(Protocol[I_contra, P_contra, M_co]):
    """A stage's work: read the inputs' artefacts, write into `out` (a fresh temp dir), return metrics."""

    def __call__(self, inputs: I_contra, *, out: Path, params: P_contra, progress: Progress) -> M_co: ...


@dataclass(frozen=True)
class Stage(Generic[I, P, M]):
    """One stage: its name, the types of its contract, its work. The module of `run` is what its
    code key fingerprints, with every photoforge module that module imports."""

    name: str
    inputs: type[I]
    params: type[P]
    metrics: type[M]
    run: StageRun[I, P, M]
    resolve: Callable[[P], P] = field(default=lambda params: params)  # e.g. `auto` -> what runs here

    @property
    def module(self) -> str:
        return self.run.__module__

    def code(self) -> dict[str, Any]:
        found = fingerprint(self.module)
        return {"code": found.code, "libraries": found.libraries}

    def key(self, inputs: I, params: P) -> str:
        params = self.resolve(params)
        return combine(
            {
                "stage": self.name,
                "params": params.model_dump(mode="json"),
                "inputs": inputs.used(params).key_part(),
                **self.code(),
            }
        )

    def execute(self, store: ArtefactStore, inputs: I, params: P, *, progress: Progress = no_progress) -> StageResult:
        """Reuse the artefact for this key if one is complete, else compute it atomically.

        Under the key's lock: a run that needs a key another process is computing waits for
        it and reuses its artefact rather than computing it a second time.
        """
        params = self.resolve(params)  # run sees the params the key hashed
        inputs = inputs.used(params)
        return self.execute_with(
            store, inputs, params, lambda out: self.run(inputs, out=out, params=params, progress=progress)
        )

    def execute_with(
        self, store: ArtefactStore, inputs: I, params: P, compute: Callable[[Path], StageMetrics]
    ) -> StageResult:
        """`execute` with the work given as `compute(out)`: for a stage that wraps its run (splat resumes
        from a checkpoint kept outside the artefact dir)."""
        start = time.perf_counter()
        params = self.resolve(params)
        inputs = inputs.used(params)
        key = self.key(inputs, params)
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
        params: P,
        inputs: I,
        compute: Callable[[Path], StageMetrics],
        *,
        key: str,
        start: float,
    ) -> StageResult:
        final = store.stage_dir(self.name, key)
        require_free(self.name, final.parent)
        started = datetime.now(UTC)
        begin = time.perf_counter()  # a wait for the lock is not compute time
        with atomic_dir(final) as tmp:
            measured = compute(tmp)
            if not isinstance(measured, self.metrics):
                raise TypeError(f"{self.name}: run returned {type(measured).__name__}, not {self.metrics.__name__}")
            metrics = measured.as_manifest()
            seconds = time.perf_counter() - begin
            write_json(
                tmp / MANIFEST,
                {
                    "stage": self.name,
                    "key": key,
                    "photoforge": __version__,
                    "params": params.model_dump(mode="json"),
                    "inputs": inputs.key_part(),
                    **self.code(),
                    "modules": list(fingerprint(self.module).modules),
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
