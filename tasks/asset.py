"""Prefect task for stage asset."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages.asset import STAGE, AssetInputs, AssetParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def asset(
    store: ArtefactStore, *, poses: StageResult, fusion: StageResult, scale: StageResult, params: AssetParams
) -> StageResult:
    return STAGE.execute(
        store, AssetInputs(poses=poses, fusion=fusion, scale=scale), params, progress=TaskProgress("asset")
    )
