"""Prefect task for stage uv."""

from __future__ import annotations

from typing import Any

from photoforge.stage import StageResult
from photoforge.stages import uv as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


def _key(inputs: dict[str, Any]) -> tuple[ArtefactStore, str]:
    return inputs["store"], stage.STAGE.key(inputs["params"], stage.key_inputs(inputs["mesh"]))


@stage_task(stage.STAGE, _key)
def uv(store: ArtefactStore, mesh: StageResult, params: stage.UVParams) -> StageResult:
    return stage.execute(store, mesh, params, TaskProgress("uv"))
