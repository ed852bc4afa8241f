"""Prefect task for stage export."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages import export as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(stage)
def export(
    store: ArtefactStore, mesh: StageResult, uv: StageResult, bake: StageResult, params: stage.ExportParams
) -> StageResult:
    return stage.execute(store, mesh, uv, bake, params, TaskProgress("export"))
