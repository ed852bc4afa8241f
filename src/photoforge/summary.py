"""A run's summary: one row per stage (ran, cached, failed, skipped or interrupted), as the CLI and --json show it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from photoforge.stage import StageResult

Status = Literal["ran", "cached", "failed", "skipped", "interrupted"]


class StageRow(BaseModel):
    stage: str
    status: Status
    seconds: float
    path: str | None = None
    key: str | None = None
    metric: str = ""
    metrics: dict[str, Any] = {}
    compute_seconds: float | None = None
    ran_on: str | None = None  # the deployment (GPU pool) that ran it, when not this process

    @classmethod
    def from_result(cls, result: StageResult, cached: bool, seconds: float) -> StageRow:
        return cls(
            stage=result.stage,
            status="cached" if cached or result.reused else "ran",
            seconds=round(seconds, 3),
            path=result.path,
            key=result.key,
            metric=result.summary_metric(),
            metrics=result.metrics,
            compute_seconds=round(result.compute_seconds, 3),
        )


class RunSummary(BaseModel):
    capture: str
    preset: str
    overrides: dict[str, Any] = {}
    workspace: str
    flow_run_id: str | None = None
    status: Literal["completed", "failed", "interrupted"] = "completed"
    error: str | None = None
    outputs: str | None = None  # WORKSPACE/CAPTURE/outputs when the run got that far
    config_hash: str = ""  # of the full, validated stage params
    stages: list[StageRow] = []
