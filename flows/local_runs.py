"""Local flow runs whose process died are marked Crashed by the next run on the same workspace.

A run killed with SIGKILL (the OOM killer, a closed laptop lid, `kill -9`) cannot report its end, so the
Prefect UI would show it Running forever. While a flow runs, WORKSPACE/.runs/FLOW_RUN_ID.json records its
host, PID and process start time (the start time tells a reused PID from ours). The next run on this host
finds records whose process is gone and moves their flow run, and its task runs still Running, to Crashed.
Runs on other hosts are left alone (their liveness is not knowable from here: work pools use Prefect's
heartbeats and the zombie-run automation instead, see README).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from uuid import UUID

from photoforge.locks import Holder, read_lock

log = logging.getLogger("photoforge")

RUNS_DIR = ".runs"


@contextlib.contextmanager
def tracked(workspace: Path, flow_run_id: str | None) -> Iterator[None]:
    """Record this flow run while it runs; first mark the workspace's orphaned runs Crashed."""
    if flow_run_id is None:
        yield
        return
    runs = Path(workspace) / RUNS_DIR
    try:
        mark_orphans_crashed(workspace)
        runs.mkdir(parents=True, exist_ok=True)
        record = runs / f"{flow_run_id}.json"
        record.write_text(json.dumps(asdict(Holder.of_this_process(token=flow_run_id, stage="flow run"))))
    except OSError as exc:  # bookkeeping must never stop a run
        log.debug("run record not written: %s", exc)
        record = None
    try:
        yield
    finally:
        if record is not None:
            record.unlink(missing_ok=True)


def mark_orphans_crashed(workspace: Path) -> list[str]:
    """Crash the flow runs recorded under WORKSPACE/.runs whose process is gone; returns their ids."""
    return _crash_recorded(workspace, Holder.is_gone)


def crash_own_runs(workspace: Path) -> list[str]:
    """Crash the flow runs this process still runs (a signal stops it: e.g. batch's captures in worker threads)."""
    return _crash_recorded(workspace, Holder.is_this_process)


def _crash_recorded(workspace: Path, select: Callable[[Holder], bool]) -> list[str]:
    """A run record is a lock-file Holder whose token is the flow run id: the same test of a dead process."""
    crashed: list[str] = []
    for path in sorted((Path(workspace) / RUNS_DIR).glob("*.json")):
        state = read_lock(path)
        if state is None:
            continue
        record = state[0]
        if record is None:
            path.unlink(missing_ok=True)  # a record cut short by the kill itself
            continue
        if not select(record):
            continue
        try:
            if _crash_flow_run(UUID(record.token), record):
                crashed.append(record.token)
        except Exception as exc:  # an unreachable API must not stop the new run
            log.debug("could not mark %s crashed: %s", path.name, exc)
            continue
        path.unlink(missing_ok=True)
    return crashed


def _crash_flow_run(flow_run_id: UUID, record: Holder) -> bool:
    """Move the flow run and its unfinished task runs to Crashed; False when it had already ended."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    message = f"process {record.pid} on {record.host} is gone (killed?); marked by a later photoforge run"
    with get_client(sync_client=True) as client:
        try:
            flow_run = client.read_flow_run(flow_run_id)
        except ObjectNotFound:
            return False  # recorded by another Prefect database (PREFECT_HOME changed)
        if flow_run.state is None or flow_run.state.is_final():
            return False
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        for task_run in task_runs:
            if task_run.state is not None and not task_run.state.is_final():
                client.set_task_run_state(task_run.id, Crashed(message=message), force=True)
        client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)
    log.warning("flow run %s (%s) was left Running by a killed process: marked Crashed", flow_run.name, flow_run_id)
    return True
