"""Prefect task for stage depth; its per-view maps go through the flow's task runner.

Each view is a `depth-view` task submitted to the running flow's task runner: a thread pool by
default, a Dask cluster when the flow runs with prefect-dask's DaskTaskRunner (flows/runners.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from photoforge.stage import Progress, StageResult
from photoforge.stages import depth as stage
from photoforge.store import ArtefactStore
from tasks.futures import result_when_done
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task


@task(name="depth-view", task_run_name="depth-view-{job.name}", cache_policy=NO_CACHE, persist_result=False)
def depth_view(job: stage.ViewJob) -> dict[str, Any]:
    """One view's maps, written into the depth artefact's temp dir (a path every worker sees)."""
    return stage.compute_view(job)


def map_with_task_runner(
    compute: Callable[[stage.ViewJob], dict[str, Any]], jobs: list[stage.ViewJob], progress: Progress
) -> list[dict[str, Any]]:
    """Submit every view, then collect in order; a failed view fails the stage with its own error."""
    futures = [depth_view.submit(job) for job in jobs]
    records = []
    for done, future in enumerate(futures):
        records.append(result_when_done(future))
        progress(done + 1, len(jobs), stage.view_message(records[-1]))
    return records


@stage_task(stage)
def depth(store: ArtefactStore, frames: StageResult, sparse: StageResult, params: stage.DepthParams) -> StageResult:
    return stage.execute(store, frames, sparse, params, TaskProgress("depth"), map_views=map_with_task_runner)
