"""Prefect task for stage mesh."""

from __future__ import annotations

from typing import Any

from photoforge.stage import StageResult
from photoforge.stages import mesh as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


def _key(inputs: dict[str, Any]) -> tuple[ArtefactStore, str]:
    return inputs["store"], stage.STAGE.key(inputs["params"], stage.key_inputs(inputs["cloud"], inputs["depth"]))


@stage_task(stage.STAGE, _key)
def mesh(store: ArtefactStore, cloud: StageResult, depth: StageResult, params: stage.MeshParams) -> StageResult:
    return stage.execute(store, cloud, depth, params, TaskProgress("mesh"))
