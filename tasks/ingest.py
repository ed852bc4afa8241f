"""Prefect task for stage ingest."""

from __future__ import annotations

from photoforge.io.capture_files import CaptureFolder
from photoforge.stage import StageResult
from photoforge.stages.ingest import STAGE, IngestInputs, IngestParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def ingest(store: ArtefactStore, *, capture: str, params: IngestParams) -> StageResult:
    inputs = IngestInputs(capture=CaptureFolder(path=capture))
    return STAGE.execute(store, inputs, params, progress=TaskProgress("ingest"))
