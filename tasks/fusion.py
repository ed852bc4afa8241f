"""Prefect task for stage fusion."""

from __future__ import annotations

from typing import Any

from photoforge.stage import StageResult
from photoforge.stages import fusion as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


def _key(inputs: dict[str, Any]) -> tuple[ArtefactStore, str]:
    return inputs["store"], stage.STAGE.key(inputs["params"], stage.key_inputs(inputs["depth"]))


@stage_task(stage.STAGE, _key)
def fusion(store: ArtefactStore, depth: StageResult, params: stage.FusionParams) -> StageResult:
    return stage.execute(store, depth, params, TaskProgress("fusion"))
