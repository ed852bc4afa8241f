"""Prefect task for stage report."""

from __future__ import annotations

from typing import Any

from photoforge.stage import StageResult
from photoforge.stages import report as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


def _key(inputs: dict[str, Any]) -> tuple[ArtefactStore, str]:
    keyed = stage.key_inputs(inputs["results"], inputs["preset"], inputs["overrides"])
    return inputs["store"], stage.STAGE.key(inputs["params"], keyed)


@stage_task(stage.STAGE, _key)
def report(
    store: ArtefactStore,
    capture: str,
    results: dict[str, StageResult],
    preset: str,
    overrides: dict[str, Any],
    params: stage.ReportParams,
) -> StageResult:
    return stage.execute(store, capture, results, preset, overrides, params, TaskProgress("report"))
