"""`photoforge server start|stop|status`: a background Prefect server that runs on the workspace reuse."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, cli_env

from flows import local_server
from flows.loopback import free_port
from flows.shutdown import stop_process_group

CLI = [sys.executable, "-m", "flows.cli"]
TIMEOUT_S = 600


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=ROOT, env=env or cli_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )


def _said(done: subprocess.CompletedProcess[str]) -> str:
    """What a command printed, as one line (the console wraps long lines)."""
    return " ".join((done.stdout + done.stderr).split())


def _reuse(workspace: Path, **env: str) -> dict[str, str | None]:
    """What a run on `workspace` would do before Prefect is imported: the API it is pointed at, if any."""
    code = (
        "import json, os, sys; from pathlib import Path; from flows import local_server, prefect_env; "
        "prefect_env.configure(Path(sys.argv[1])); record = local_server.reuse(Path(sys.argv[1])); "
        "print(json.dumps({'record': record and record.url, 'api': os.environ.get('PREFECT_API_URL')}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(workspace)],
        cwd=ROOT,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _kill_recorded(workspace: Path) -> None:
    """Clean-up after a failed test: no server outlives it."""
    record = local_server.read(workspace)
    if record is not None and record.is_alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGKILL)


@pytest.mark.prefect_server
def test_start_status_reuse_stop(tmp_path: Path, sample_subset: Path) -> None:
    workspace = tmp_path / "ws"
    try:
        started = _cli("server", "start", "--workspace", str(workspace))
        assert started.returncode == 0, started.stdout + started.stderr
        record = local_server.read(workspace)
        assert record is not None and record.owner == "server" and record.is_alive()
        assert record.url.startswith("http://127.0.0.1:") and f"up: {record.address}" in _said(started)
        assert Path(record.home) == (workspace / ".prefect").resolve()

        status = _cli("server", "status", "--workspace", str(workspace))
        assert status.returncode == 0 and f"up: {record.address}" in _said(status)

        again = _cli("server", "start", "--workspace", str(workspace))  # one server per workspace
        assert again.returncode == 0 and f"already up: {record.address}" in _said(again)
        assert local_server.read(workspace) == record

        summary = tmp_path / "run.json"
        run = _cli(
            "run", str(sample_subset), "--workspace", str(workspace), "--until", "ingest", "--json", str(summary)
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"Prefect server at {record.address} (photoforge server)" in _said(run)
        assert "starting Prefect" not in _said(run)
        flow_run = _get(f"{record.url}/flow_runs/{json.loads(summary.read_text())['flow_run_id']}")
        assert flow_run["state_type"] == "COMPLETED"  # the run's flow run is on that server

        # The user's own PREFECT_API_URL wins over the recorded server.
        assert _reuse(workspace, PREFECT_API_URL="http://127.0.0.1:9/api") == {
            "record": None,
            "api": "http://127.0.0.1:9/api",
        }
        assert _reuse(workspace) == {"record": record.url, "api": record.url}

        stopped = _cli("server", "stop", "--workspace", str(workspace))
        assert stopped.returncode == 0 and f"stopped the Prefect server at {record.address}" in _said(stopped)
        assert not local_server.state_path(workspace).exists()
        assert not record.is_alive()
        down = _cli("server", "status", "--workspace", str(workspace))
        assert down.returncode == 1 and "down:" in _said(down)
        assert _cli("server", "stop", "--workspace", str(workspace)).returncode == 0  # nothing to stop: fine
    finally:
        _kill_recorded(workspace)


def _finished_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("stale", ["dead-pid", "reused-pid", "damaged"])
def test_stale_record_is_ignored_and_removed(tmp_path: Path, stale: str) -> None:
    workspace = tmp_path / "ws"
    path = local_server.state_path(workspace)
    path.parent.mkdir(parents=True)
    url = f"http://127.0.0.1:{free_port()}/api"
    home = str(path.parent.resolve())
    if stale == "damaged":
        path.write_text('{"url": ')
    else:
        # reused-pid: a live process (this one), but not the one recorded (another start time)
        pid, started = (_finished_pid(), time.time()) if stale == "dead-pid" else (os.getpid(), 12345.0)
        path.write_text(json.dumps({"url": url, "pid": pid, "started": started, "home": home, "owner": "server"}))

    assert _reuse(workspace) == {"record": None, "api": None}  # the ephemeral API, as without a server
    assert not path.exists()

    path.write_text('{"url": ')
    status = _cli("server", "status", "--workspace", str(workspace))
    assert status.returncode == 1 and "down:" in _said(status)
    assert not path.exists()


def test_live_but_silent_server_is_not_used(tmp_path: Path) -> None:
    """A recorded process that is alive but does not answer (busy, starting): the run falls back to the
    ephemeral API; the record stays, so that `photoforge server stop` can still stop that process."""
    workspace = tmp_path / "ws"
    path = local_server.state_path(workspace)
    path.parent.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        record = local_server.ServerRecord(
            url=f"http://127.0.0.1:{free_port()}/api",
            pid=sleeper.pid,
            started=psutil.Process(sleeper.pid).create_time(),
            home=str(path.parent.resolve()),
            owner="server",
        )
        path.write_text(json.dumps(dataclasses.asdict(record)))
        assert _reuse(workspace) == {"record": None, "api": None}
        assert local_server.read(workspace) == record
        status = _cli("server", "status", "--workspace", str(workspace))
        assert status.returncode == 1 and "not answering" in _said(status)
        stopped = _cli("server", "stop", "--workspace", str(workspace))
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert sleeper.wait(timeout=30) == -signal.SIGTERM
        assert not path.exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sleeper.pid, signal.SIGKILL)
        sleeper.wait()


@pytest.mark.prefect_server
def test_ui_records_its_server_while_open(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    port, files_port = free_port(), free_port()
    ui = subprocess.Popen(
        [*CLI, "ui", "--workspace", str(workspace), "--port", str(port), "--files-port", str(files_port)],
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while (record := local_server.read(workspace)) is None:
            assert ui.poll() is None, "photoforge ui exited early"
            assert time.monotonic() < deadline, "photoforge ui did not record its server within 180 s"
            time.sleep(0.5)
        assert record.owner == "ui" and record.url == f"http://127.0.0.1:{port}/api"
        assert _reuse(workspace) == {"record": record.url, "api": record.url}
        status = _cli("server", "status", "--workspace", str(workspace))
        assert status.returncode == 0 and "photoforge ui" in _said(status)
        start = _cli("server", "start", "--workspace", str(workspace))
        assert start.returncode == 0 and f"already up: {record.address}" in _said(start)
        refused = _cli("server", "stop", "--workspace", str(workspace))
        assert refused.returncode == 2 and "photoforge ui's" in _said(refused)
        assert record.is_alive()
    finally:
        stop_process_group(ui, grace_s=30)
    assert not local_server.state_path(workspace).exists()
