"""A real Prefect server and process workers on 127.0.0.1: the multi-machine setup on one machine.

For tests and benchmarks of the work-pool path (flows/deployments.py, prefect.yaml). Every process
is started in its own session and stopped by PID, its children included; nothing outlives `close`.
Every process and the cluster's own client wait for a slow server instead of failing: a loaded
2-core machine (other test jobs, SQLite) answers in seconds, not milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from prefect.client.base import PrefectHttpxSyncClient
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from flows.deployments import ROOT, PoolSetup

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
REQUEST_TIMEOUT_S = 120.0
CLIENT_RETRIES = 8
COMMAND_TIMEOUT_S = 600.0

# Prefect's settings for a loaded machine, in every process the cluster starts (server, workers and,
# through the workers, the flow-run processes; CLI commands). The client retries timeouts, dropped
# connections and 503s (the server's answer when SQLite is busy) with exponential backoff; 500s are
# not retried, as not every route is idempotent.
PATIENT_PREFECT = {
    "PREFECT_API_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT_S),  # default 60 s per request
    "PREFECT_CLIENT_MAX_RETRIES": str(CLIENT_RETRIES),  # default 5: 2+4+...+256 s of backoff in all
    "PREFECT_SERVER_DATABASE_TIMEOUT": "60",  # default 10 s: SQLite waits this long for a lock
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackCluster:
    """`prefect server start` with its own PREFECT_HOME, plus named process workers."""

    def __init__(self, home: Path, setup: PoolSetup, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.setup = setup
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = (
            os.environ
            | {
                "PREFECT_HOME": str(home),
                "PREFECT_API_URL": self.api,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                **PATIENT_PREFECT,
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "PREFECT_WORKER_PREFETCH_SECONDS": "1",
                "PREFECT_LOGGING_LEVEL": "INFO",
                "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "results"),
            }
            | (extra_env or {})
        )
        self.env.pop("PREFECT_API_KEY", None)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._client: PrefectHttpxSyncClient | None = None

    # processes -----------------------------------------------------------------------------
    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def _command(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        """A user's CLI command, given the time a loaded machine needs."""
        return subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        )

    def start_server(self, timeout: float = 180.0) -> None:
        prefect = [sys.executable, "-m", "prefect"]
        self._start("server", [*prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes["server"].poll() is not None:
                raise RuntimeError(f"prefect server exited: see {self.logs / 'server.log'}")
            try:
                if httpx.get(f"{self.api}/health", timeout=10).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"prefect server not healthy after {timeout:.0f} s")

    def deploy(self) -> None:
        """The user's command: `photoforge deploy` (pools + prefect.yaml)."""
        setup = self.setup
        command = [sys.executable, "-m", "flows.cli", "deploy", "--workspace", str(setup.workspace)]
        command += ["--inbox", str(setup.inbox), "--preset", setup.preset, "--cron", setup.cron]
        command += ["--cpu-pool", setup.cpu_pool]
        command += ["--gpu-pool", setup.gpu_pool] if setup.gpu_pool else ["--no-gpu-pool"]
        command += ["--heartbeat-s", str(setup.heartbeat_s), "--crash-after-s", str(setup.crash_after_s)]
        done = self._command(command)
        if done.returncode != 0:
            raise RuntimeError(f"photoforge deploy failed:\n{done.stdout}\n{done.stderr}")

    def start_worker(self, name: str, pool: str, limit: int | None = None) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
        command += ["--name", name] + (["--limit", str(limit)] if limit else [])
        return self._start(name, command)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> list[int]:
        """Signal a process and every descendant (flow-run subprocesses start their own sessions)."""
        process = self.processes.pop(name)
        try:
            tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(sig)
        psutil.wait_procs(tree, timeout=30)
        process.wait(timeout=30)
        return [member.pid for member in tree]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        for name in [n for n in self.processes if n != "server"] + ["server"]:
            if name in self.processes:
                self.kill(name, signal.SIGTERM if name == "server" else signal.SIGKILL)

    def __enter__(self) -> LoopbackCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # API -------------------------------------------------------------------------------------
    def run_deployment(self, name: str, parameters: dict[str, Any]) -> str:
        """The user's command: `prefect deployment run NAME --params JSON`; returns the flow run id."""
        command = [sys.executable, "-m", "prefect", "deployment", "run", name, "--params", json.dumps(parameters)]
        done = self._command(command)
        found = re.search(r"UUID:\s*([0-9a-f-]{36})", done.stdout)
        if done.returncode != 0 or not found:
            raise RuntimeError(f"prefect deployment run failed:\n{done.stdout}\n{done.stderr}")
        return found.group(1)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call through Prefect's own client: a slow answer is waited for and retried."""
        if self._client is None:
            self._client = PrefectHttpxSyncClient(base_url=self.api, timeout=REQUEST_TIMEOUT_S)
        with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: CLIENT_RETRIES}):
            return self._client.request(method, path, json=body).json()

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/flow_runs/{flow_run_id}")

    def wait(self, flow_run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.flow_run(flow_run_id)
            if run["state_type"] in TERMINAL:
                return run
            time.sleep(1)
        raise TimeoutError(f"flow run {flow_run_id} not finished after {timeout:.0f} s")

    def flow_runs(self, flow_name: str) -> list[dict[str, Any]]:
        body = {"flows": {"name": {"any_": [flow_name]}}}
        return self.request("POST", "/flow_runs/filter", body)

    def states(self, flow_run_id: str) -> list[dict[str, Any]]:
        """Every state the run went through, oldest first."""
        return self.request("GET", f"/flow_run_states/?flow_run_id={flow_run_id}")

    def heartbeats(self, flow_run_id: str) -> list[float]:
        """When the run's process reported it was alive (epoch seconds, oldest first; the newest 50)."""
        body = {
            "filter": {
                "event": {"name": ["prefect.flow-run.heartbeat"]},
                "resource": {"id": [f"prefect.flow-run.{flow_run_id}"]},
            },
            "limit": 50,
        }
        events = self.request("POST", "/events/filter", body)["events"]
        return sorted(datetime.fromisoformat(event["occurred"]).timestamp() for event in events)
