"""Prefect task for stage turntable."""

from __future__ import annotations

from typing import Any

from photoforge.stage import StageResult
from photoforge.stages import turntable as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


def _key(inputs: dict[str, Any]) -> tuple[ArtefactStore, str]:
    return inputs["store"], stage.STAGE.key(inputs["params"], stage.key_inputs(inputs["uv"], inputs["bake"]))


@stage_task(stage.STAGE, _key)
def turntable(store: ArtefactStore, uv: StageResult, bake: StageResult, params: stage.TurntableParams) -> StageResult:
    return stage.execute(store, uv, bake, params, TaskProgress("turntable"))
