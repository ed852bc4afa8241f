"""Prefect task for stage export."""

from __future__ import annotations

from typing import Any

from photoforge.stage import StageResult
from photoforge.stages import export as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


def _key(inputs: dict[str, Any]) -> tuple[ArtefactStore, str]:
    return inputs["store"], stage.STAGE.key(
        inputs["params"], stage.key_inputs(inputs["mesh"], inputs["uv"], inputs["bake"])
    )


@stage_task(stage.STAGE, _key)
def export(
    store: ArtefactStore, mesh: StageResult, uv: StageResult, bake: StageResult, params: stage.ExportParams
) -> StageResult:
    return stage.execute(store, mesh, uv, bake, params, TaskProgress("export"))
