"""Prefect task for stage ingest."""

from __future__ import annotations

from pathlib import Path

from photoforge.stage import StageResult
from photoforge.stages import ingest as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(stage)
def ingest(store: ArtefactStore, capture: str, params: stage.IngestParams) -> StageResult:
    return stage.execute(store, Path(capture), params, TaskProgress("ingest"))
