"""Prefect task for stage ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from photoforge.stage import StageResult
from photoforge.stages import ingest as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


def _key(inputs: dict[str, Any]) -> tuple[ArtefactStore, str]:
    return inputs["store"], stage.STAGE.key(inputs["params"], stage.key_inputs(Path(inputs["capture"])))


@stage_task(stage.STAGE, _key)
def ingest(store: ArtefactStore, capture: str, params: stage.IngestParams) -> StageResult:
    return stage.execute(store, Path(capture), params, TaskProgress("ingest"))
