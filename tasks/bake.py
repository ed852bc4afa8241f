"""Prefect task for stage bake."""

from __future__ import annotations

from pathlib import Path

from photoforge.stage import StageResult
from photoforge.stages import bake as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(stage)
def bake(
    store: ArtefactStore,
    capture: str,
    frames: StageResult,
    sparse: StageResult,
    depth: StageResult,
    mesh: StageResult,
    uv: StageResult,
    params: stage.BakeParams,
) -> StageResult:
    return stage.execute(store, Path(capture), frames, sparse, depth, mesh, uv, params, TaskProgress("bake"))
