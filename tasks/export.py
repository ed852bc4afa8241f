"""Prefect task for stage export."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages.export import STAGE, ExportInputs, ExportParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def export(
    store: ArtefactStore,
    *,
    mesh: StageResult,
    uv: StageResult,
    bake: StageResult,
    lod_uvs: list[StageResult],
    lod_bakes: list[StageResult],
    params: ExportParams,
) -> StageResult:
    inputs = ExportInputs(mesh=mesh, uv=uv, bake=bake, lod_uvs=lod_uvs, lod_bakes=lod_bakes)
    return STAGE.execute(store, inputs, params, progress=TaskProgress("export"))
