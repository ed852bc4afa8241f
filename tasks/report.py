"""Prefect task for stage report."""

from __future__ import annotations

from typing import Any

from photoforge.stage import StageResult
from photoforge.stages import report as stage
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(stage)
def report(
    store: ArtefactStore,
    capture: str,
    results: dict[str, StageResult],
    preset: str,
    overrides: dict[str, Any],
    params: stage.ReportParams,
) -> StageResult:
    return stage.execute(store, capture, results, preset, overrides, params, TaskProgress("report"))
