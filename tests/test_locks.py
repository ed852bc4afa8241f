"""Stage key locks: one computation per key across processes; dead or silent holders are taken over."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest
from support_stages import demo_stage, execute, key

from photoforge.errors import StageError
from photoforge.locks import Holder, KeyLock, UnchangedWatch, boot_id, pid_namespace, read_lock, stale_reason
from photoforge.stage import StageParams
from photoforge.store import LOCKS, ArtefactStore


class Params(StageParams):
    size: int = 3


# Each process marks itself in the counter file when it computes, then holds its computation until
# the other one either waits on the lock (the fix) or computes too (today's bug): no timing involved.
RACER = """
import logging, sys, time
from pathlib import Path
sys.path.insert(0, TESTS)
from photoforge.stage import StageParams
from photoforge.store import ArtefactStore
from support_stages import demo_stage, execute

class Params(StageParams):
    size: int = 3

workspace, capture, me, other, shared = sys.argv[1:6]
shared = Path(shared)
logger = logging.getLogger("photoforge")
logger.setLevel(logging.INFO)
logger.addHandler(logging.FileHandler(shared / f"{me}.log"))

def compute(out):
    with open(shared / "counter", "a") as counter:
        counter.write(me + "\\n")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        log = shared / f"{other}.log"
        if "waiting for" in (log.read_text() if log.exists() else ""):
            break
        if other in (shared / "counter").read_text().split():
            break
        time.sleep(0.05)
    (out / "data.txt").write_text(me)
    return {"summary": me}

result = execute(demo_stage(Params), ArtefactStore(Path(workspace), capture), Params(), {"x": "1"}, compute)
print(result.model_dump_json())
""".replace("TESTS", repr(str(Path(__file__).resolve().parent)))


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """The photoforge logger's records (the CLI's set-up may have turned its propagation off)."""
    seen: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger("photoforge")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)
    logger.setLevel(level)


def _messages(records: list[logging.LogRecord]) -> str:
    return "\n".join(record.getMessage() for record in records)


def _in_thread(fn: Callable[[], object]) -> dict:
    """Run fn in a thread; a generous join, so a lock that never frees fails the test instead of hanging it."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "still waiting for the lock after 120 s"
    if "error" in box:
        raise box["error"]
    return box


def _write_lock(path: Path, holder: Holder, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(holder)))
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def _counting(calls: list[str]) -> Callable[[Path], dict]:
    def compute(out: Path) -> dict:
        calls.append(out.name)
        (out / "data.txt").write_text("result")
        return {"summary": "ok"}

    return compute


@pytest.mark.parametrize("captures", [("cap", "cap"), ("a", "b")], ids=["same-capture", "same-photos-two-folders"])
def test_two_processes_compute_a_key_once(tmp_path: Path, captures: tuple[str, str]) -> None:
    workspace, shared = tmp_path / "ws", tmp_path / "shared"
    shared.mkdir()
    (shared / "counter").write_text("")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(workspace), capture, me, other, str(shared)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for capture, me, other in ((captures[0], "p0", "p1"), (captures[1], "p1", "p0"))
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    computed = (shared / "counter").read_text().split()
    assert len(computed) == 1, f"computed {len(computed)} times: {computed}"
    results = {me: json.loads(out) for me, (out, _) in zip(("p0", "p1"), outputs, strict=True)}
    maker = computed[0]
    waiter = "p1" if maker == "p0" else "p0"
    assert results[maker]["reused"] is False and results[waiter]["reused"] is True
    assert results[waiter]["path"] == results[maker]["path"]
    assert Path(results[maker]["path"], "data.txt").read_text() == maker
    maker_pid = procs[int(maker[1])].pid
    log = (shared / f"{waiter}.log").read_text()
    assert f"demo: waiting for host {socket.gethostname()} pid {maker_pid} (started " in log
    assert "computing the same key" in log
    assert f"(computed meanwhile by host {socket.gethostname()} pid {maker_pid})" in log
    assert list((workspace / LOCKS).iterdir()) == []


def test_waiter_computes_when_the_holder_gives_up(tmp_path: Path, records: list[logging.LogRecord]) -> None:
    stage, store, calls = demo_stage(Params), ArtefactStore(tmp_path, "cap"), []
    lock = KeyLock(store.lock_path("demo", key(stage, Params(), {})), label="demo", poll=0.05)
    lock.acquire()
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(r=execute(stage, store, Params(), {}, _counting(calls))))
    thread.start()
    deadline = time.monotonic() + 120
    while "demo: waiting for" not in _messages(records) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert calls == []  # waiting, not computing
    lock.release()  # the holder failed: no artefact
    thread.join(timeout=120)
    assert len(calls) == 1 and box["r"].reused is False
    assert f"pid {os.getpid()} (started " in _messages(records)


def test_lock_of_a_dead_process_is_taken_over_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records: list[logging.LogRecord]
) -> None:
    monkeypatch.setenv("PHOTOFORGE_LOCK_STALE_S", "3600")  # only the dead pid can free it within the test
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stage, store, calls = demo_stage(Params), ArtefactStore(tmp_path, "cap"), []
    path = store.lock_path("demo", key(stage, Params(), {}))
    holder = Holder(
        socket.gethostname(), dead.pid, time.time() - 60, "dead", "demo", pid_namespace(), time.time(), boot_id()
    )
    _write_lock(path, holder)
    result = _in_thread(lambda: execute(stage, store, Params(), {}, _counting(calls)))["value"]
    assert result.reused is False and len(calls) == 1
    assert (
        f"took over the lock of host {socket.gethostname()} pid {dead.pid} (started 60 s ago): its process is gone"
        in (_messages(records))
    )
    assert not path.exists()


def test_silent_lock_of_another_host_is_taken_over(tmp_path: Path, records: list[logging.LogRecord]) -> None:
    path = tmp_path / LOCKS / "depth-k.lock"
    hour_ago = time.time() - 3600
    _write_lock(path, Holder("render-node-7", 4242, hour_ago, "theirs", "depth", 1, 1.0), mtime=hour_ago)
    lock = KeyLock(path, label="depth", stale_after=1.0, poll=0.05)
    _in_thread(lock.acquire)
    state = read_lock(path)
    assert state is not None and state[0] is not None
    assert (state[0].host, state[0].pid) == (socket.gethostname(), os.getpid())
    assert re.search(r"depth: waiting for host render-node-7 pid 4242 \(started 36\d\d s ago\)", _messages(records))
    took_over = (
        r"depth: took over the lock of host render-node-7 pid 4242 \(started 36\d\d s ago\): no heartbeat for \d s"
    )
    assert re.search(took_over, _messages(records))
    lock.release()
    assert list(path.parent.iterdir()) == []


def test_a_lock_that_keeps_changing_is_not_stale_however_old() -> None:
    """Staleness is measured on the contender's clock from the last change it saw, never from the file's times."""
    watch = UnchangedWatch()
    beat1, beat2 = (1, 100, b"{}"), (1, 200, b"{}")
    assert [watch.observe(beat1, 0.0), watch.observe(beat1, 50.0)] == [0.0, 50.0]
    assert [watch.observe(beat2, 51.0), watch.observe(beat2, 60.0)] == [0.0, 9.0]
    other = Holder("render-node-7", 4242, 0.0, "t")
    assert stale_reason(other, unchanged_for=299.0, stale_after=300.0) is None
    assert stale_reason(other, unchanged_for=300.0, stale_after=300.0) == "no heartbeat for 300 s"
    assert stale_reason(None, unchanged_for=300.0, stale_after=300.0) == "no heartbeat for 300 s"  # unreadable file
    # Alive on this machine: never taken over, however long its heartbeat stalls.
    me = Holder(
        socket.gethostname(), os.getpid(), 0.0, "t", "", pid_namespace(), psutil.Process().create_time(), boot_id()
    )
    assert stale_reason(me, unchanged_for=1e9, stale_after=300.0) is None


def test_recycled_pid_and_other_hosts_are_told_apart() -> None:
    here, ns, started, boot = socket.gethostname(), pid_namespace(), psutil.Process().create_time(), boot_id()
    assert not Holder(here, os.getpid(), 0.0, "t", "", ns, started, boot).is_gone()
    assert Holder(here, os.getpid(), 0.0, "t", "", ns, started - 3600, boot).is_gone()  # same pid, another process
    assert not Holder("render-node-7", 999_999_999, 0.0, "t").is_gone()  # cannot be probed from here
    assert not Holder(here, os.getpid(), 0.0, "t", "", (ns or 0) + 1, started - 3600, boot).is_gone()  # a container
    assert not Holder(here, os.getpid(), 0.0, "t", "", ns, started - 3600, "another-boot").is_gone()  # a cloned VM


def test_holder_heartbeat_touches_the_lock_file(tmp_path: Path) -> None:
    path = tmp_path / "k.lock"
    lock = KeyLock(path, label="demo", stale_after=60.0, heartbeat=0.05)
    lock.acquire()
    os.utime(path, (0, 0))
    deadline = time.monotonic() + 120
    while path.stat().st_mtime == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    touched = path.stat().st_mtime
    lock.release()
    assert touched > time.time() - 3600  # the heartbeat set it to now
    assert not path.exists()


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
def test_failed_compute_releases_the_lock(tmp_path: Path, error: BaseException) -> None:
    stage, store = demo_stage(Params), ArtefactStore(tmp_path, "cap")

    def crash(out: Path) -> dict:
        assert store.lock_path("demo", key(stage, Params(), {})).exists()  # held while computing
        raise error

    with pytest.raises(type(error)):
        execute(stage, store, Params(), {}, crash)
    assert list((tmp_path / LOCKS).iterdir()) == []
    calls: list[str] = []
    assert execute(stage, store, Params(), {}, _counting(calls)).reused is False and len(calls) == 1


def test_bad_staleness_setting_names_the_stage_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOFORGE_LOCK_STALE_S", "soon")
    with pytest.raises(StageError, match=r"\[demo\] PHOTOFORGE_LOCK_STALE_S=soon: not a positive number of seconds"):
        execute(demo_stage(Params), ArtefactStore(tmp_path, "cap"), Params(), {}, lambda out: {})


def test_unusable_lock_folder_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / LOCKS).write_text("not a folder")
    with pytest.raises(
        StageError, match=rf"\[demo\] {tmp_path / LOCKS}: cannot create the lock folder \(File exists\)"
    ):
        execute(demo_stage(Params), ArtefactStore(tmp_path, "cap"), Params(), {}, lambda out: {})
