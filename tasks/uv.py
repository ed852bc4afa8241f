"""Prefect task for stage uv."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages import uv as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(stage)
def uv(store: ArtefactStore, mesh: StageResult, params: stage.UVParams) -> StageResult:
    return stage.execute(store, mesh, params, TaskProgress("uv"))
