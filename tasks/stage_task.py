"""The one way a photoforge stage becomes a Prefect task: content-keyed cache, results as records."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

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


def keyed_by(stage: Stage[Any, Any, Any]) -> KeyFunction:
    """The cache key from the task's inputs: its Inputs fields (the task's parameters of those names) and params."""
    names = list(stage.inputs.model_fields)

    def key(inputs: dict[str, Any]) -> tuple[ArtefactStore, str]:
        stage_inputs = stage.inputs(**{name: inputs.get(name) for name in names})
        return inputs["store"], stage.key(stage_inputs, inputs["params"])

    return key


def check_signature(stage: Stage[Any, Any, Any], fn: Callable[..., Any]) -> None:
    """A stage task takes `store`, then keyword-only the stage's Inputs fields and `params`: the cache key
    is computed from those names, so a mismatch would key the wrong thing."""
    parameters = inspect.signature(fn).parameters
    expected = {"store", "params", *stage.inputs.model_fields}
    if set(parameters) != expected or next(iter(parameters)) != "store":
        raise TypeError(
            f"task {fn.__name__}: parameters {list(parameters)}; expected store, then {sorted(expected - {'store'})}"
        )
    if any(p.kind is not inspect.Parameter.KEYWORD_ONLY for name, p in parameters.items() if name != "store"):
        raise TypeError(f"task {fn.__name__}: every parameter after store must be keyword-only")


def stage_task(
    stage: Stage[Any, Any, Any],
) -> Callable[[Callable[Concatenate[ArtefactStore, P], StageResult]], Task[Concatenate[ArtefactStore, P], StageResult]]:
    """Decorate a thin wrapper that calls `stage.execute` with the stage's Inputs built from its parameters.

    The result (a small StageResult) is persisted as JSON next to the artefact, which is
    what lets Prefect report a reused stage as Cached; it is read back only as plain JSON
    (tasks/records.py), since anyone who can write the workspace can edit it.
    """
    key_function = keyed_by(stage)

    def decorate(
        fn: Callable[Concatenate[ArtefactStore, P], StageResult],
    ) -> Task[Concatenate[ArtefactStore, P], StageResult]:
        check_signature(stage, fn)
        return RecordTask(
            fn=fn,
            name=stage.name,
            cache_policy=ArtefactCachePolicy(stage=stage.name, key_function=key_function),
            persist_result=True,
            result_serializer="json",
            retries=0,
        )

    return decorate
