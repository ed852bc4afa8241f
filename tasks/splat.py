"""Prefect task for stage splat (a GPU stage: on the GPU pool when one is configured)."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages import splat as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(stage)
def splat(
    store: ArtefactStore, depth: StageResult, fusion: StageResult | None, params: stage.SplatParams
) -> StageResult:
    return stage.execute(store, depth, fusion, params, TaskProgress("splat"))
