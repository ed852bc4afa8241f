"""The one way a photoforge stage becomes a Prefect task: content-keyed cache, results as records."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, ParamSpec, TypeVar

from prefect import Task

from photoforge.stage import Stage, StageResult
from photoforge.store import ArtefactStore
from tasks.cache import ArtefactCachePolicy, KeyFunction
from tasks.records import record_storage

P = ParamSpec("P")
R = TypeVar("R")


class RecordTask(Task[P, R]):
    """A Task whose Prefect records are read through `JsonRecordStorage`: plain JSON, never code.

    Prefect takes a storage block only once it is saved on a server; this one has no server
    state (a base path and a check), so it is set after Prefect's checks, on copies (with_options) too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("result_storage", None)
        super().__init__(*args, **kwargs)
        self.result_storage = record_storage()

    def with_options(self, **options: Any) -> Task[P, R]:  # type: ignore[override]
        options.pop("result_storage", None)
        copy = super().with_options(result_storage=Path("/"), **options)  # a plain Task: it checks the storage
        copy.result_storage = record_storage()
        return copy


def keyed_by(module: ModuleType) -> KeyFunction:
    """The cache key from the stage module's `key_inputs`, given the task inputs of the same names."""
    names = list(inspect.signature(module.key_inputs).parameters)

    def key(inputs: dict[str, Any]) -> tuple[ArtefactStore, str]:
        keyed = module.key_inputs(**{name: inputs.get(name) for name in names})
        return inputs["store"], module.STAGE.key(inputs["params"], keyed)

    return key


def stage_task(module: ModuleType) -> Callable[[Callable[P, StageResult]], Task[P, StageResult]]:
    """Decorate a thin wrapper that calls the stage module's `execute`.

    The result (a small StageResult) is persisted as JSON next to the artefact, which is
    what lets Prefect report a reused stage as Cached; it is read back only as plain JSON
    (tasks/records.py), since anyone who can write the workspace can edit it.
    """
    stage: Stage = module.STAGE
    key_function = keyed_by(module)

    def decorate(fn: Callable[P, StageResult]) -> Task[P, StageResult]:
        return RecordTask(
            fn=fn,
            name=stage.name,
            cache_policy=ArtefactCachePolicy(stage=stage.name, key_function=key_function),
            persist_result=True,
            result_serializer="json",
            retries=0,
        )

    return decorate
