"""Prefect task for stage depth."""

from __future__ import annotations

from typing import Any

from photoforge.stage import StageResult
from photoforge.stages import depth as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


def _key(inputs: dict[str, Any]) -> tuple[ArtefactStore, str]:
    return inputs["store"], stage.STAGE.key(inputs["params"], stage.key_inputs(inputs["frames"], inputs["sparse"]))


@stage_task(stage.STAGE, _key)
def depth(store: ArtefactStore, frames: StageResult, sparse: StageResult, params: stage.DepthParams) -> StageResult:
    return stage.execute(store, frames, sparse, params, TaskProgress("depth"))
