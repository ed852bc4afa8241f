"""Prefect task for stage bake."""

from __future__ import annotations

from pathlib import Path

from photoforge.stage import StageResult
from photoforge.stages.bake import STAGE, BakeInputs, BakeParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def bake(
    store: ArtefactStore,
    *,
    capture: str,
    ingest: StageResult,
    poses: StageResult,
    depth: StageResult,
    mesh: StageResult,
    uv: StageResult,
    params: BakeParams,
) -> StageResult:
    inputs = BakeInputs(capture=Path(capture), ingest=ingest, poses=poses, depth=depth, mesh=mesh, uv=uv)
    return STAGE.execute(store, inputs, params, progress=TaskProgress("bake"))
