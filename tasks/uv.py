"""Prefect task for stage uv."""

from __future__ import annotations

from photoforge.geometry.detail_levels import DetailLevel
from photoforge.stage import StageResult
from photoforge.stages.uv import STAGE, UVInputs, UVParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def uv(store: ArtefactStore, *, mesh: StageResult, level: DetailLevel, params: UVParams) -> StageResult:
    return STAGE.execute(store, UVInputs(mesh=mesh, level=level), params, progress=TaskProgress("uv"))
