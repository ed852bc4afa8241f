"""Prefect task for stage fusion."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages import fusion as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(stage)
def fusion(store: ArtefactStore, depth: StageResult, params: stage.FusionParams) -> StageResult:
    return stage.execute(store, depth, params, TaskProgress("fusion"))
