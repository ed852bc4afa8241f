"""Prefect task for stage scale."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages.scale import STAGE, ScaleInputs, ScaleParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def scale(store: ArtefactStore, *, ingest: StageResult, poses: StageResult, params: ScaleParams) -> StageResult:
    return STAGE.execute(store, ScaleInputs(ingest=ingest, poses=poses), params, progress=TaskProgress("scale"))
