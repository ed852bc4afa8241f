"""Prefect task for stage turntable."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages import turntable as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(stage)
def turntable(
    store: ArtefactStore,
    uv: StageResult,
    bake: StageResult,
    params: stage.TurntableParams,
    splat: StageResult | None = None,
    mesh: StageResult | None = None,
) -> StageResult:
    return stage.execute(store, uv, bake, params, TaskProgress("turntable"), splat=splat, mesh=mesh)
