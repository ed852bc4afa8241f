"""The one way a photoforge stage becomes a Prefect task: content-keyed cache, results as records."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, ParamSpec

from prefect import Task, task

from photoforge.stage import Stage, StageResult
from photoforge.store import ArtefactStore
from tasks.cache import ArtefactCachePolicy, KeyFunction

P = ParamSpec("P")


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
    what lets Prefect report a reused stage as Cached.
    """
    stage: Stage = module.STAGE
    key_function = keyed_by(module)

    def decorate(fn: Callable[P, StageResult]) -> Task[P, StageResult]:
        return task(
            name=stage.name,
            cache_policy=ArtefactCachePolicy(stage=stage.name, key_function=key_function),
            persist_result=True,
            result_storage=Path("/"),
            result_serializer="json",
            retries=0,
        )(fn)

    return decorate
