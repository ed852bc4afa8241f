"""Prefect task for stage poses."""

from __future__ import annotations

from photoforge.stage import StageResult
from photoforge.stages.poses import STAGE, PosesInputs, PosesParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def poses(store: ArtefactStore, *, ingest: StageResult, params: PosesParams) -> StageResult:
    return STAGE.execute(store, PosesInputs(ingest=ingest), params, progress=TaskProgress("poses"))
