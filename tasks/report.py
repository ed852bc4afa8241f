"""Prefect task for stage report."""

from __future__ import annotations

from typing import Any

from photoforge.stage import StageResult
from photoforge.stages.report import STAGE, ReportInputs, ReportParams
from photoforge.store import ArtefactStore
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@stage_task(STAGE)
def report(
    store: ArtefactStore,
    *,
    capture: str,
    results: dict[str, StageResult],
    preset: str,
    overrides: dict[str, Any],
    params: ReportParams,
) -> StageResult:
    inputs = ReportInputs(capture=capture, results=results, preset=preset, overrides=overrides)
    return STAGE.execute(store, inputs, params, progress=TaskProgress("report"))
