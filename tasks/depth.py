"""Prefect task for stage depth; its per-view maps go through the flow's task runner.

Each view is a `depth-view` task submitted to the running flow's task runner: a thread pool by
default, a Dask cluster when the flow runs with prefect-dask's DaskTaskRunner (flows/runners.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from prefect import task
from prefect.cache_policies import NO_CACHE

from photoforge.layout import DepthViewRecord
from photoforge.stage import Progress, StageResult
from photoforge.stages.depth import STAGE, DepthInputs, DepthParams, run_views
from photoforge.store import ArtefactStore
from tasks.futures import result_when_done
from tasks.progress import TaskProgress
from tasks.stage_task import stage_task

if TYPE_CHECKING:  # torch, pycolmap: loaded when a view is computed, not when the flow is imported
    from photoforge.geometry.mvs.depth_views import ViewJob


@task(name="depth-view", task_run_name="depth-view-{job.name}", cache_policy=NO_CACHE, persist_result=False)
def depth_view(job: ViewJob) -> DepthViewRecord:
    """One view's maps, written into the depth artefact's temp dir (a path every worker sees)."""
    from photoforge.geometry.mvs.depth_views import compute_view

    return compute_view(job)


def map_with_task_runner(
    compute: Callable[[ViewJob], DepthViewRecord], jobs: list[ViewJob], progress: Progress
) -> list[DepthViewRecord]:
    """Submit every view, then collect in order; a failed view fails the stage with its own error."""
    from photoforge.geometry.mvs.depth_views import view_message

    futures = [depth_view.submit(job) for job in jobs]
    records = []
    for done, future in enumerate(futures):
        records.append(result_when_done(future))
        progress(done + 1, len(jobs), view_message(records[-1]))
    return records


@stage_task(STAGE)
def depth(store: ArtefactStore, *, ingest: StageResult, poses: StageResult, params: DepthParams) -> StageResult:
    inputs = DepthInputs(ingest=ingest, poses=poses)
    progress = TaskProgress("depth")
    return STAGE.execute_with(
        store,
        inputs,
        params,
        lambda out: run_views(inputs, out=out, params=params, progress=progress, map_views=map_with_task_runner),
    )
