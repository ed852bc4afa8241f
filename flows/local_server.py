"""A Prefect server kept up between runs, so that a run skips the ephemeral API's 7-15 s start.

`photoforge server start` starts `prefect server start` on a free 127.0.0.1 port against the workspace's
Prefect database (WORKSPACE/.prefect, the one `photoforge ui` shows), in its own session so that it
outlives the command, and records it in WORKSPACE/.prefect/server.json: URL, PID, the process's start time
(which tells a reused PID from it) and PREFECT_HOME. `photoforge ui` records its own server there while it is
open. A run on the workspace whose user set no PREFECT_API_URL uses a recorded server that is alive, answers
/api/health and serves the same PREFECT_HOME; otherwise it starts Prefect's ephemeral API as before. A record
whose process is gone is removed.

No Prefect import here: `photoforge server status` and the check before a run stay fast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from flows.ports import check_free, free_port
from photoforge.errors import StageError

log = logging.getLogger("photoforge")

STATE_FILE = "server.json"
HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0  # a loaded 2-core machine took over 20 s for Prefect's own ephemeral start
HEALTH_TIMEOUT_S = 5.0
STOP_GRACE_S = 10.0

# No proxy for 127.0.0.1, whatever http_proxy says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class ServerRecord:
    """A local Prefect server as WORKSPACE/.prefect/server.json records it."""

    url: str  # the API, http://127.0.0.1:PORT/api
    pid: int
    started: float  # the process's start time (epoch s): a reused PID has another
    home: str  # PREFECT_HOME it serves
    owner: str  # "server" (photoforge server start) or "ui" (photoforge ui)
    log: str = ""

    @property
    def address(self) -> str:
        """Where the UI is (the API without /api)."""
        return self.url.removesuffix("/api")

    def is_alive(self) -> bool:
        import psutil

        try:
            process = psutil.Process(self.pid)
            return abs(process.create_time() - self.started) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def is_healthy(self, timeout: float = HEALTH_TIMEOUT_S) -> bool:
        return healthy(self.url, timeout)


def state_path(workspace: Path) -> Path:
    return Path(workspace) / ".prefect" / STATE_FILE


def read(workspace: Path) -> ServerRecord | None:
    """The recorded server, alive or not; None when there is no readable record (a damaged one is removed)."""
    path = state_path(workspace)
    try:
        return ServerRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        log.debug("ignoring %s: %s", path, exc)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def live(workspace: Path) -> ServerRecord | None:
    """The recorded server if its process still runs (a record whose process is gone is removed)."""
    record = read(workspace)
    if record is None:
        return None
    if not record.is_alive():
        forget(workspace, record.pid)
        return None
    return record


def healthy(url: str, timeout: float = HEALTH_TIMEOUT_S) -> bool:
    """GET URL/health answers 200."""
    try:
        with _opener.open(f"{url}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def reuse(workspace: Path) -> ServerRecord | None:
    """Point this process's Prefect at the workspace's recorded server when it is up and serves this
    PREFECT_HOME: sets PREFECT_API_URL, so no ephemeral API starts. Call after `prefect_env.configure`,
    before Prefect is imported (it reads its settings once). None, nothing changed: the user set
    PREFECT_API_URL, Prefect is already imported, or no such server answers."""
    if "PREFECT_API_URL" in os.environ or "prefect" in sys.modules:
        return None
    record = live(workspace)
    if record is None or not _same_home(record.home, os.environ.get("PREFECT_HOME", "")):
        return None
    if not record.is_healthy():
        log.warning(
            "the Prefect server at %s (pid %d) does not answer: starting Prefect's own", record.address, record.pid
        )
        return None
    os.environ["PREFECT_API_URL"] = record.url
    return record


def start(workspace: Path, port: int | None = None, timeout: float = START_TIMEOUT_S) -> tuple[ServerRecord, bool]:
    """Start `prefect server start` for this workspace in the background, or find the one running.

    Returns the record and whether it was started now. Call after `prefect_env.configure` (the server gets this
    environment: PREFECT_HOME, the settings for a loaded machine).
    """
    if "PREFECT_API_URL" in os.environ:
        raise StageError(
            "server", "PREFECT_API_URL is set: runs use that server; unset it to start a local one", workspace
        )
    running = live(workspace)
    if running is not None:
        if not _same_home(running.home, os.environ.get("PREFECT_HOME", "")):
            cause = f"a server for PREFECT_HOME={running.home} runs for this workspace: `photoforge server stop` first"
            raise StageError("server", cause, workspace)
        return running, False
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    home.mkdir(parents=True, exist_ok=True)
    if port:
        check_free(port, flag="--port", command="server")
    else:
        port = free_port(HOST)
    url = f"http://{HOST}:{port}/api"
    log_path = home / "server.log"
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)]
    with open(log_path, "ab") as log_file:
        # Its own session: it outlives this command and a Ctrl-C in this terminal; `server stop` ends its group.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    record = ServerRecord(url, process.pid, _start_time(process.pid), str(home.resolve()), "server", str(log_path))
    try:
        _wait_healthy(process, url, timeout, log_path)
        _write(workspace, record)
    except BaseException:  # too slow, Ctrl-C meanwhile: nothing left running without a record
        _stop_group(record)
        raise
    return record, True


def _wait_healthy(process: subprocess.Popen[bytes], url: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while not healthy(url, timeout=2.0):
        if process.poll() is not None:
            raise StageError(
                "server", f"prefect server start exited with code {process.returncode}: read this log", log_path
            )
        if time.monotonic() > deadline:
            cause = f"the Prefect server did not answer in {timeout:.0f} s (is the machine busy?): try again, or read"
            raise StageError("server", cause + " this log", log_path)
        time.sleep(0.25)


def stop(workspace: Path) -> ServerRecord | None:
    """Stop the workspace's `photoforge server start` server (SIGTERM, SIGKILL after a grace) and remove its
    record; returns it, or None when none was running."""
    record = live(workspace)
    if record is None:
        return None
    if record.owner == "ui":
        raise StageError(
            "server",
            f"the server at {record.address} is photoforge ui's (pid {record.pid}): stop that `photoforge ui` (Ctrl-C)",
        )
    _stop_group(record)
    forget(workspace, record.pid)
    return record


def record_while_up(workspace: Path, process: subprocess.Popen[bytes], url: str) -> Callable[[], None]:
    """Record a server another command runs (`photoforge ui`) once it answers, unless one is recorded already.

    Returns the function that removes the record again (call it when the server stops). Nothing is recorded
    when the user set PREFECT_API_URL (runs use that server).
    """
    if "PREFECT_API_URL" in os.environ:
        return lambda: None
    done = threading.Event()
    record = ServerRecord(url, process.pid, _start_time(process.pid), _home(), "ui")

    def wait_then_record() -> None:
        while not done.is_set() and process.poll() is None:
            if healthy(url, timeout=2.0):
                if live(workspace) is None and not done.is_set():
                    _write(workspace, record)
                return
            done.wait(0.5)

    thread = threading.Thread(target=wait_then_record, name="photoforge-record-server", daemon=True)
    thread.start()

    def forget_it() -> None:
        done.set()
        thread.join(timeout=5)
        forget(workspace, record.pid)

    return forget_it


def forget(workspace: Path, pid: int) -> None:
    """Remove the record if it still names this process."""
    record = read(workspace)
    if record is not None and record.pid == pid:
        with contextlib.suppress(OSError):
            state_path(workspace).unlink()


def _write(workspace: Path, record: ServerRecord) -> None:
    path = state_path(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text(json.dumps(asdict(record), indent=2) + "\n")
    os.replace(temp, path)


def _stop_group(record: ServerRecord) -> None:
    """SIGTERM the server's process group (it leads its own session), SIGKILL it after the grace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not record.is_alive():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(record.pid) == record.pid:
                os.killpg(record.pid, sig)
            else:
                os.kill(record.pid, sig)
        deadline = time.monotonic() + STOP_GRACE_S
        while record.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)


def _start_time(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def _home() -> str:
    home = os.environ.get("PREFECT_HOME")
    return str(Path(home).resolve()) if home else ""


def _same_home(recorded: str, current: str) -> bool:
    return bool(recorded) and bool(current) and Path(recorded).resolve() == Path(current).resolve()
