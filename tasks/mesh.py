"""Prefect task for stage mesh."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages.mesh import STAGE, MeshInputs, MeshParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def mesh(
    store: ArtefactStore,
    *,
    asset: StageResult,
    depth: StageResult,
    splat: StageResult | None = None,
    params: MeshParams,
) -> StageResult:
    inputs = MeshInputs(asset=asset, depth=depth, splat=splat)
    return STAGE.execute(store, inputs, params, progress=TaskProgress("mesh"))
