"""Prefect task for stage poses."""

from __future__ import annotations

from typing import Any

from photoforge.stage import StageResult
from photoforge.stages import poses as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


def _key(inputs: dict[str, Any]) -> tuple[ArtefactStore, str]:
    return inputs["store"], stage.STAGE.key(inputs["params"], stage.key_inputs(inputs["frames"]))


@stage_task(stage.STAGE, _key)
def poses(store: ArtefactStore, frames: StageResult, params: stage.PosesParams) -> StageResult:
    return stage.execute(store, frames, params, TaskProgress("poses"))
