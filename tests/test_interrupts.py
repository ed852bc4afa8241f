"""Stopping photoforge: SIGTERM and Ctrl-C stop every child, mark the run, print the summary; SIGKILLed runs
are marked Crashed by the next run."""

from __future__ import annotations

import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from conftest import cli_env

from flows.loopback import free_port

PHOTOFORGE = Path(sys.executable).with_name("photoforge")
FAST = [
    *("--preset", "preview", "--set", "ingest.max_size=480", "--set", "poses.max_features=2048"),
    *("--set", "depth.max_size=320", "--set", "depth.planes=32", "--set", "mesh.poisson_depth=7"),
]
WAIT_S = 300  # a loaded 2-core machine: Prefect's start alone has taken 40 s


def _wait_for(condition, what: str, process: subprocess.Popen | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"exited ({process.returncode}) before {what}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s"
        time.sleep(0.2)


def _started_stage(workspace: Path, capture: str, stage: str) -> bool:
    """The stage's temp dir exists: its task is computing."""
    return any((workspace / capture / stage).glob(".tmp-*"))


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _flow_run_states(workspace: Path) -> list[str]:
    with sqlite3.connect(workspace / ".prefect" / "prefect.db") as db:
        return [row[0] for row in db.execute("SELECT state_type FROM flow_run ORDER BY created")]


def _task_run_states(workspace: Path) -> dict[str, str]:
    with sqlite3.connect(workspace / ".prefect" / "prefect.db") as db:
        return {row[0].split("-")[0]: row[1] for row in db.execute("SELECT name, state_type FROM task_run")}


def _assert_all_gone(processes: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(processes, timeout=30)
    assert not alive, f"left running: {[' '.join(p.cmdline()[:6]) for p in alive]}"
    assert processes, "the run had no child process to stop (Prefect's server should be one)"


def _signalled(
    command: list[str], *, ready: Callable[[], bool], what: str, sig: signal.Signals
) -> tuple[int, str, str, list[psutil.Process]]:
    """Start the command, send `sig` once `ready()`; its exit code, output and the children it had then."""
    process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(ready, what, process)
        children = _descendants(process.pid)
        process.send_signal(sig)
        out, err = process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in err and "Traceback" not in out
    return process.returncode, out, err, children


@pytest.mark.parametrize(("sig", "code", "said"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_signal_stops_run_cleanly(
    sample_subset: Path, tmp_path: Path, sig: signal.Signals, code: int, said: str
) -> None:
    """`kill PID` or Ctrl-C during poses: no server left behind, the run Crashed, the summary so far printed."""
    workspace = tmp_path / "ws"
    summary = tmp_path / "summary.json"
    command = [str(PHOTOFORGE), "run", str(sample_subset), "--workspace", str(workspace), *FAST, "--json", str(summary)]
    started = functools.partial(_started_stage, workspace, sample_subset.name, "poses")
    returncode, out, err, children = _signalled(command, ready=started, what="poses stage", sig=sig)
    assert returncode == code, out + err
    assert f"interrupted by {said}" in err
    assert "poses" in out and "interrupted" in out  # the summary table so far
    rows = json.loads(summary.read_text())["stages"]
    assert [(r["stage"], r["status"]) for r in rows] == [("ingest", "ran"), ("poses", "interrupted")]
    _assert_all_gone(children)
    assert _flow_run_states(workspace) == ["CRASHED"]
    assert _task_run_states(workspace) == {"ingest": "COMPLETED", "poses": "CRASHED"}
    assert not any((workspace / sample_subset.name / "poses").glob(".tmp-*"))  # no half-written artefact
    assert not list((workspace / ".runs").glob("*.json"))


def test_sigterm_stops_batch_and_crashes_its_runs(sample_subset: Path, tmp_path: Path) -> None:
    """A batch stopped mid-capture: the capture's run and the batch run are Crashed, nothing left running."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sample_subset.rename(inbox / "fountain")
    workspace = tmp_path / "ws"
    command = [str(PHOTOFORGE), "batch", str(inbox), "--workspace", str(workspace), *FAST]
    started = functools.partial(_started_stage, workspace, "fountain", "poses")
    returncode, out, err, children = _signalled(command, ready=started, what="poses stage", sig=signal.SIGTERM)
    assert returncode == 143, out + err
    assert "interrupted by SIGTERM" in err
    _assert_all_gone(children)
    states = _flow_run_states(workspace)
    assert len(states) == 2 and set(states) == {"CRASHED"}, states  # process-inbox and the capture's reconstruct


def test_sigkilled_run_is_marked_crashed_by_the_next_run(sample_subset: Path, tmp_path: Path) -> None:
    """SIGKILL leaves the flow run Running; the next run on the workspace marks it Crashed (and its tasks)."""
    workspace = tmp_path / "ws"
    command = [str(PHOTOFORGE), "run", str(sample_subset), "--workspace", str(workspace), *FAST]
    run = subprocess.Popen(
        command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_for(lambda: _started_stage(workspace, sample_subset.name, "poses"), "poses stage", run)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the whole group: its Prefect server too
        run.wait()
    assert _flow_run_states(workspace) == ["RUNNING"]
    assert len(list((workspace / ".runs").glob("*.json"))) == 1

    again = subprocess.run(
        [*command, "--until", "ingest"], env=cli_env(), capture_output=True, text=True, timeout=WAIT_S
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "was left Running by a killed process: marked Crashed" in " ".join(again.stderr.split())
    assert _flow_run_states(workspace) == ["CRASHED", "COMPLETED"]
    with sqlite3.connect(workspace / ".prefect" / "prefect.db") as db:
        unfinished = db.execute("SELECT state_type FROM task_run WHERE name NOT LIKE 'ingest-%'").fetchall()
    # poses' task run, when Prefect had recorded it before the kill (task runs are reported asynchronously)
    assert all(state == "CRASHED" for (state,) in unfinished), unfinished
    assert not list((workspace / ".runs").glob("*.json"))


def test_sigterm_stops_ui_and_its_server(tmp_path: Path) -> None:
    """`kill PID` on `photoforge ui`: the Prefect server it started stops too, both ports are free again."""
    from flows.ports import bind_error

    workspace = tmp_path / "ws"
    ports = [free_port(), free_port()]
    command = [str(PHOTOFORGE), "ui", "--workspace", str(workspace), "--port", str(ports[0])]
    answers = functools.partial(_answers, f"http://127.0.0.1:{ports[0]}/api/health")
    command += ["--files-port", str(ports[1])]
    returncode, out, err, children = _signalled(command, ready=answers, what="Prefect UI", sig=signal.SIGTERM)
    assert returncode == 143, out + err
    assert "stopped by SIGTERM" in err
    _assert_all_gone(children)
    assert bind_error(ports[0]) is None and bind_error(ports[1]) is None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False
