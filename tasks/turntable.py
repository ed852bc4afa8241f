"""Prefect task for stage turntable."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages.turntable import STAGE, TurntableInputs, TurntableParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def turntable(
    store: ArtefactStore,
    *,
    uv: StageResult,
    bake: StageResult,
    splat: StageResult | None = None,
    mesh: StageResult | None = None,
    params: TurntableParams,
) -> StageResult:
    inputs = TurntableInputs(uv=uv, bake=bake, splat=splat, mesh=mesh)
    return STAGE.execute(store, inputs, params, progress=TaskProgress("turntable"))
