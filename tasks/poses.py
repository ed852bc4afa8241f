"""Prefect task for stage poses."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages import poses as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(stage)
def poses(store: ArtefactStore, frames: StageResult, params: stage.PosesParams) -> StageResult:
    return stage.execute(store, frames, params, TaskProgress("poses"))
