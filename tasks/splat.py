"""Prefect task for stage splat (a GPU stage: on the GPU pool when one is configured)."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages.splat import STAGE, SplatInputs, SplatParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def splat(store: ArtefactStore, *, depth: StageResult, fusion: StageResult | None, params: SplatParams) -> StageResult:
    return STAGE.execute(store, SplatInputs(depth=depth, fusion=fusion), params, progress=TaskProgress("splat"))
