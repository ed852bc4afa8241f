"""Which Prefect task runner spreads the work inside one run (the per-view depth maps).

Chosen from the environment, so a worker's job variables pick it without touching the flow:
- PHOTOFORGE_DASK_ADDRESS=tcp://scheduler:8786: prefect-dask's DaskTaskRunner on that Dask cluster;
- PHOTOFORGE_DASK_ADDRESS=local:N: a temporary local Dask cluster of N single-threaded processes;
- otherwise a thread pool of PHOTOFORGE_VIEW_WORKERS threads (default 1: torch already uses every core).
"""

from __future__ import annotations

import os
import re

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

DASK_ADDRESS = "PHOTOFORGE_DASK_ADDRESS"
VIEW_WORKERS = "PHOTOFORGE_VIEW_WORKERS"


class StoppableThreadPoolTaskRunner(ThreadPoolTaskRunner):
    """A thread pool that does not wait for its running tasks when it is cancelled.

    Prefect's pool joins its threads when cancelled or closed, so SIGTERM during a batch waited for the whole
    capture (minutes) before the process could stop. Here the queue is cancelled and the threads are left to end
    with the process; what they were writing are temp dirs that the next run removes. A normal exit is unchanged:
    every future the flows submit has been collected by then.
    """

    def cancel_all(self) -> None:
        for event in self._cancel_events.values():
            event.set()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def view_task_runner() -> TaskRunner:
    address = os.environ.get(DASK_ADDRESS, "").strip()
    if not address:
        return StoppableThreadPoolTaskRunner(max_workers=max(1, int(os.environ.get(VIEW_WORKERS, "1"))))
    from prefect_dask import DaskTaskRunner

    local = re.fullmatch(r"local(?::(\d+))?", address)
    if local:
        workers = int(local.group(1) or 2)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True})
    return DaskTaskRunner(address=address)
