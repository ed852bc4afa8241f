"""Stopping on SIGTERM or Ctrl-C without leaving anything behind.

Python's default SIGTERM action kills the process without running atexit handlers, so Prefect's ephemeral
server (a child process) was left listening with parent PID 1. Here SIGTERM raises `Interrupted` in the main
thread like Ctrl-C raises KeyboardInterrupt; inside a flow Prefect's own SIGTERM bridge runs first and marks
the flow run Crashed, then hands the signal back to this handler. The CLI then stops every child process by
PID and exits with 128 + the signal number.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from types import FrameType
from typing import Any

log = logging.getLogger("photoforge")

_CHILD_GRACE_S = 5.0


class Interrupted(BaseException):
    """SIGTERM received: a BaseException, like KeyboardInterrupt, so that no `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def install_handlers() -> None:
    """SIGTERM raises Interrupted in the main thread (SIGINT already raises KeyboardInterrupt)."""
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def keep_handlers_over_native_ones() -> None:
    """Import pycolmap, then install ours again: on its first import pycolmap installs glog's failure
    handler over SIGTERM, which dumps a stack and aborts instead of stopping cleanly. Stages import it
    lazily, in a worker thread, where no Python handler can be put back; so a run imports it up front."""
    import pycolmap  # noqa: F401

    install_handlers()


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def signal_number(exc: BaseException) -> int:
    """The signal behind an interruption: SIGINT for Ctrl-C, else the one that was received."""
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT
    return int(getattr(exc, "signum", getattr(exc, "signal", signal.SIGTERM)))


def is_interruption(exc: BaseException) -> bool:
    """Ctrl-C, our SIGTERM, or Prefect's TerminationSignal (its SIGTERM bridge inside a flow run)."""
    if isinstance(exc, KeyboardInterrupt | Interrupted):
        return True
    exceptions = sys.modules.get("prefect.exceptions")
    if exceptions is None:  # Prefect not imported, so it raised nothing (and `--help`'s SystemExit stays fast)
        return False
    return isinstance(exc, exceptions.TerminationSignal)


def stop_children() -> None:
    """Stop Prefect's ephemeral server and every other process this one started (Dask workers, ffmpeg).

    Signals are ignored meanwhile: a second Ctrl-C must not interrupt the clean-up itself.
    """
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _stop_ephemeral_servers()
        _stop_descendants()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_ephemeral_servers() -> None:
    server_module = sys.modules.get("prefect.server.api.server")
    if server_module is None:
        return
    for server in list(server_module.SubprocessASGIServer._instances.values()):
        with contextlib.suppress(Exception):
            server.stop()


def _stop_descendants() -> None:
    import psutil

    try:
        children = psutil.Process(os.getpid()).children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=_CHILD_GRACE_S)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=_CHILD_GRACE_S)


def stop_process_group(process: subprocess.Popen[Any], *, grace_s: float = _CHILD_GRACE_S * 2) -> None:
    """SIGTERM a child started with start_new_session, then SIGKILL its group if it does not stop in time."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def finish(code: int) -> None:
    """Exit as Python would, without tearing down every imported module (0.6-1.2 s with Prefect and the stages'
    libraries loaded, a third of a cached re-run).

    What an ordinary exit does first still happens, in the same order: threads joined (threading's own shutdown),
    atexit handlers run (Prefect delivers its pending logs and events and stops its ephemeral server; logging
    flushes its handlers); then the streams are flushed and the process ends. Call from the main thread.
    """
    shutdown_threads = getattr(threading, "_shutdown", None)
    if shutdown_threads is not None:
        shutdown_threads()
    atexit._run_exitfuncs()
    exit_now(code)


def exit_now(code: int) -> None:
    """Exit without joining worker threads: a stage thread in the middle of a depth map would hold the exit
    for minutes. Everything that must outlive the process is already on disk (artefacts are atomic).
    No logging.shutdown(): Prefect's API log handler would wait forever for the server stopped just before."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
