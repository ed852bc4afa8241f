"""A minimal stage for tests of the machinery (store, locks): inputs `x`, work given as `compute(out) -> dict`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from photoforge.stage import Progress, Stage, StageInputs, StageMetrics, StageParams, StageResult
from photoforge.store import ArtefactStore


class DemoInputs(StageInputs):
    x: str = "1"


def _never(inputs: DemoInputs, *, out: Path, params: StageParams, progress: Progress) -> StageMetrics:
    raise AssertionError("demo stages run through execute() with their own compute")


def demo_stage(params: type[StageParams] = StageParams, name: str = "demo") -> Stage[Any, Any, Any]:
    return Stage(name, inputs=DemoInputs, params=params, metrics=StageMetrics, run=_never)


def execute(
    stage: Stage[Any, Any, Any],
    store: ArtefactStore,
    params: StageParams,
    inputs: Mapping[str, str],
    compute: Callable[[Path], dict[str, Any]],
) -> StageResult:
    """`stage.execute` with the work as a function of the output dir returning a metrics dict."""
    return stage.execute_with(store, DemoInputs(**inputs), params, lambda out: StageMetrics(**compute(out)))


def key(stage: Stage[Any, Any, Any], params: StageParams, inputs: Mapping[str, str]) -> str:
    return stage.key(DemoInputs(**inputs), params)


def handmade_artefact(root: Path, stage: str, metrics: StageMetrics) -> StageResult:
    """A stage's artefact written by hand: its manifest and metrics (the caller adds its files)."""
    path = root / stage
    path.mkdir(parents=True)
    values = metrics.as_manifest()
    (path / "manifest.json").write_text(json.dumps({"key": f"{stage}-key", "seconds": 1.0, "metrics": values}))
    return StageResult(stage=stage, key=f"{stage}-key", path=str(path), metrics=values, reused=False, seconds=1.0,
                       compute_seconds=1.0)  # fmt: skip
