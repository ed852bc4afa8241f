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
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil

from photoforge.locks import boot_id, pid_namespace

log = logging.getLogger("photoforge")

RUNS_DIR = ".runs"


def _this_process() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "created": psutil.Process().create_time(), **_machine()}


def _machine() -> dict[str, Any]:
    """What tells this machine's processes from another's: containers share a host name, cloned VMs a pid namespace."""
    return {"boot": boot_id(), "pidns": pid_namespace()}


def is_gone(record: dict[str, Any]) -> bool:
    """True when the recorded process is certainly dead: same machine, and no process with that PID and start time."""
    if record.get("host") != socket.gethostname() or any(record.get(k) != v for k, v in _machine().items()):
        return False
    try:
        process = psutil.Process(int(record["pid"]))
        return abs(process.create_time() - float(record["created"])) > 1.0
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


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
        record.write_text(json.dumps({"flow_run_id": flow_run_id, **_this_process()}))
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
    return _crash_recorded(workspace, is_gone)


def crash_own_runs(workspace: Path) -> list[str]:
    """Crash the flow runs this process still runs (a signal stops it: e.g. batch's captures in worker threads)."""
    me = _this_process()
    return _crash_recorded(workspace, lambda record: all(record.get(k) == v for k, v in me.items()))


def _crash_recorded(workspace: Path, select: Callable[[dict[str, Any]], bool]) -> list[str]:
    crashed: list[str] = []
    for path in sorted((Path(workspace) / RUNS_DIR).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a record cut short by the kill itself
            continue
        if not select(record):
            continue
        try:
            if _crash_flow_run(UUID(str(record["flow_run_id"])), record):
                crashed.append(str(record["flow_run_id"]))
        except Exception as exc:  # an unreachable API must not stop the new run
            log.debug("could not mark %s crashed: %s", path.name, exc)
            continue
        path.unlink(missing_ok=True)
    return crashed


def _crash_flow_run(flow_run_id: UUID, record: dict[str, Any]) -> bool:
    """Move the flow run and its unfinished task runs to Crashed; False when it had already ended."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    message = f"process {record['pid']} on {record['host']} is gone (killed?); marked by a later photoforge run"
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
