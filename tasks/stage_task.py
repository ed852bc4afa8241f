"""The one way a photoforge stage becomes a Prefect task: content-keyed cache, results as records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec

from prefect import Task, task

from photoforge.stage import Stage, StageResult
from tasks.cache import ArtefactCachePolicy, KeyFunction

P = ParamSpec("P")


def stage_task(stage: Stage, key_function: KeyFunction) -> Callable[[Callable[P, StageResult]], Task[P, StageResult]]:
    """Decorate a thin wrapper that calls the stage's `execute`.

    The result (a small StageResult) is persisted as JSON next to the artefact, which is
    what lets Prefect report a reused stage as Cached.
    """

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
