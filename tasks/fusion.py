"""Prefect task for stage fusion."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages.fusion import STAGE, FusionInputs, FusionParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def fusion(store: ArtefactStore, *, depth: StageResult, params: FusionParams) -> StageResult:
    return STAGE.execute(store, FusionInputs(depth=depth), params, progress=TaskProgress("fusion"))
