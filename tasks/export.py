"""Prefect task for stage export."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages.export import STAGE, ExportInputs, ExportParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def export(
    store: ArtefactStore, *, mesh: StageResult, uv: StageResult, bake: StageResult, params: ExportParams
) -> StageResult:
    return STAGE.execute(store, ExportInputs(mesh=mesh, uv=uv, bake=bake), params, progress=TaskProgress("export"))
