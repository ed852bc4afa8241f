"""Prefect task for stage mesh."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages import mesh as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(stage)
def mesh(
    store: ArtefactStore,
    cloud: StageResult,
    depth: StageResult,
    params: stage.MeshParams,
    splat: StageResult | None = None,
) -> StageResult:
    return stage.execute(store, cloud, depth, params, TaskProgress("mesh"), splat=splat)
