"""One computation per stage key: a lock file that also holds on shared (NFS) workspaces.

Two runs that need the same stage key would otherwise both compute it and throw one copy
away. Keys are content hashes and `ArtefactStore.find` reuses any capture's artefact, so the
lock is per key across captures (WORKSPACE/.locks/STAGE-KEY.lock): the same photos under two
folder names are computed once too.

Why a module of our own: fcntl/flock locks may not hold across NFS clients; filelock's
SoftFileLease (an O_EXCL marker with a heartbeat) takes over a stale marker only through an
atomic rename-exchange, which NFS refuses, so there a crashed worker's lock would block its
key until someone deleted it by hand. Here the lock file is created with O_CREAT|O_EXCL and
holds JSON {host, pid, started, ...}; the holder touches it every few seconds (heartbeat). A
contender takes it over when the holder's process is gone (same machine: its pid, and that
pid's start time against a recycled pid) or, on another host, when the file has not changed
for `stale_after` seconds of the contender's own clock (clocks of two hosts may disagree).
A takeover first renames the file to a unique name: of several contenders only one rename
succeeds, and a contender that moved a fresh lock by mistake puts it back.

The lock saves work; artefacts stay correct without it (`store.atomic_dir`), so the rare
race no lock file can rule out (a stalled holder taken over while alive) costs a duplicate
computation, never a half-written artefact.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from photoforge.errors import StageError

log = logging.getLogger("photoforge")

STALE_ENV = "PHOTOFORGE_LOCK_STALE_S"
DEFAULT_STALE_S = 300.0  # generous: a holder's heartbeat thread can stall behind a long call that keeps the GIL
_REMIND_S = 300.0  # repeat the "waiting for" line this often during a long wait

# What a lock file's content and stat look like to a contender: any change is a heartbeat.
Signature = tuple[int, int, bytes]


# The locks this process holds now (for release_held).
_HELD: set[KeyLock] = set()


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file says."""

    host: str
    pid: int
    started: float  # the holder's wall clock, seconds since the epoch
    token: str  # tells this holding apart from any other, even of the same pid
    stage: str = ""
    pidns: int | None = None  # containers on one host share its name but not its pids
    pid_started: float | None = None  # the process's start time: a recycled pid has another
    boot: str | None = None  # the kernel's boot id: cloned machines can share a host name and pid namespace inode

    @classmethod
    def of_this_process(cls, *, token: str, stage: str) -> Holder:
        """This process, as a lock file (or a run record) names it."""
        return cls(
            host=socket.gethostname(),
            pid=os.getpid(),
            started=time.time(),
            token=token,
            stage=stage,
            pidns=pid_namespace(),
            pid_started=psutil.Process().create_time(),
            boot=boot_id(),
        )

    def is_this_process(self) -> bool:
        return self.on_this_machine() and self.pid == os.getpid()

    def describe(self) -> str:
        return f"host {self.host} pid {self.pid} (started {max(0.0, time.time() - self.started):.0f} s ago)"

    def on_this_machine(self) -> bool:
        return self.host == socket.gethostname() and self.pidns == pid_namespace() and self.boot == boot_id()

    def is_gone(self) -> bool:
        """Provably dead; only the holder's own machine can tell."""
        if not self.on_this_machine():
            return False
        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
            started = process.create_time()
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False
        return self.pid_started is not None and abs(started - self.pid_started) > 1.0


def stale_after_s(stage: str) -> float:
    """Seconds without a heartbeat after which another host's lock is taken over."""
    text = os.environ.get(STALE_ENV, "")
    if not text:
        return DEFAULT_STALE_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise StageError(stage, f"{STALE_ENV}={text}: not a positive number of seconds (unset: {DEFAULT_STALE_S:.0f})")
    return value


class KeyLock:
    """Hold the lock file at `path` while computing one stage key; wait while another process holds it.

    `waited_for` is the last holder waited for (None: the lock was free).
    """

    def __init__(
        self,
        path: Path,
        *,
        label: str,
        stale_after: float | None = None,
        heartbeat: float | None = None,
        poll: float = 0.5,
    ) -> None:
        self.path = Path(path)
        self.label = label
        self.stale_after = stale_after if stale_after is not None else stale_after_s(label)
        self.heartbeat = heartbeat if heartbeat is not None else min(15.0, self.stale_after / 4)
        self.poll = poll
        self.waited_for: Holder | None = None
        self._mine: Holder | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> KeyLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StageError(self.label, f"cannot create the lock folder ({exc.strerror})", self.path.parent) from exc
        watch = UnchangedWatch()
        announced: str | None = None
        reminded = 0.0
        while not self._create():
            state = read_lock(self.path)
            if state is None:
                continue  # released meanwhile: try again at once
            holder, signature = state
            unchanged_for = watch.observe(signature, time.monotonic())
            why = stale_reason(holder, unchanged_for=unchanged_for, stale_after=self.stale_after)
            if why is not None:
                if self._take_over(signature):
                    who = holder.describe() if holder else "an unreadable lock"
                    log.warning("%s: took over the lock of %s: %s", self.label, who, why)
                continue
            token = holder.token if holder else ""
            if token != announced or time.monotonic() - reminded >= _REMIND_S:
                who = holder.describe() if holder else f"the holder of {self.path}"
                log.info("%s: waiting for %s, computing the same key", self.label, who)
                announced, reminded = token, time.monotonic()
            self.waited_for = holder
            time.sleep(self.poll)
        try:
            self._stop = threading.Event()
            self._beat = threading.Thread(
                target=self._heartbeat, args=(self._stop,), name=f"lock-{self.label}", daemon=True
            )
            self._beat.start()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        mine, self._mine = self._mine, None
        _HELD.discard(self)
        state = read_lock(self.path)
        if mine is not None and state is not None and state[0] is not None and state[0].token == mine.token:
            self.path.unlink(missing_ok=True)

    def _create(self) -> bool:
        """Exactly one process creates the lock file, on NFS too."""
        me = Holder.of_this_process(token=secrets.token_hex(8), stage=self.label)
        # Written whole to a temp file, then hard-linked to the lock name: link() fails when the name exists
        # (on NFS too), and a waiter never reads a half-written lock (O_EXCL then write() allowed that).
        staged = self.path.with_name(f".{self.path.name}.{me.token}.tmp")
        try:
            staged.write_text(json.dumps(asdict(me)))
            os.link(staged, self.path)
        except FileExistsError:
            return False
        except OSError as exc:
            if not _linked(staged):  # NFS may report a failed link() that did happen: the link count tells
                cause = f"cannot create the stage's lock file ({exc.strerror})"
                raise StageError(self.label, cause, self.path) from exc
        finally:
            staged.unlink(missing_ok=True)
        self._mine = me
        _HELD.add(self)
        return True

    def _take_over(self, judged: Signature) -> bool:
        """Remove the lock judged stale, unless it changed since: one rename wins among contenders."""
        aside = self.path.with_name(f"{self.path.name}.stale-{secrets.token_hex(8)}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False  # another contender took it first
        except OSError as exc:
            cause = f"cannot take over a stale lock ({exc.strerror}): delete it if no run computes this stage"
            raise StageError(self.label, cause, self.path) from exc
        moved = read_lock(aside)
        if moved is not None and moved[1] == judged:
            aside.unlink(missing_ok=True)
            return True
        # A fresh lock (a peer that took over first) or a late heartbeat: put it back, unless yet another
        # process has created one since (then two compute this key once; atomic writes keep that safe).
        with contextlib.suppress(OSError):
            os.link(aside, self.path)
        aside.unlink(missing_ok=True)
        return False

    def _heartbeat(self, stop: threading.Event) -> None:
        mine, missed = self._mine, False
        while not stop.wait(self.heartbeat):
            try:
                state = read_lock(self.path)
                if mine is None or state is None or state[0] is None or state[0].token != mine.token:
                    if not missed:  # a contender's takeover moves a live lock aside for a moment: look again
                        missed = True
                        continue
                    log.warning("%s: another process took over the lock %s; computing on", self.label, self.path)
                    return
                missed = False
                os.utime(self.path)
            except OSError as exc:  # a network filesystem's hiccup: try again at the next beat
                log.debug("%s: lock heartbeat failed: %s", self.label, exc)


class UnchangedWatch:
    """How long a lock file has looked the same, on this process's monotonic clock."""

    def __init__(self) -> None:
        self._seen: Signature | None = None
        self._since = 0.0

    def observe(self, signature: Signature, now: float) -> float:
        if signature != self._seen:
            self._seen, self._since = signature, now
        return now - self._since


def stale_reason(holder: Holder | None, *, unchanged_for: float, stale_after: float) -> str | None:
    """Why a lock may be taken over (None: its holder may still be working)."""
    if holder is not None and holder.is_gone():
        return "its process is gone"
    if holder is not None and holder.on_this_machine():
        return None  # alive here: a heartbeat that stalls behind a long computation proves nothing
    if unchanged_for >= stale_after:
        return f"no heartbeat for {unchanged_for:.0f} s"
    return None


def read_lock(path: Path) -> tuple[Holder | None, Signature] | None:
    """The holder a lock file names (None: unreadable) and its signature; None if there is no file.

    Opening the file makes an NFS client revalidate its attributes (close-to-open), so a
    heartbeat shows at once rather than after the attribute cache expires.
    """
    try:
        with open(path, "rb") as file:
            stat = os.fstat(file.fileno())
            content = file.read(4096)
    except FileNotFoundError:
        return None
    return _parse(content), (stat.st_ino, stat.st_mtime_ns, content)


def _parse(content: bytes) -> Holder | None:
    try:
        data: dict[str, Any] = json.loads(content)
        known = {field.name for field in fields(Holder)}
        holder = Holder(**{k: v for k, v in data.items() if k in known})
    except (ValueError, TypeError):
        return None
    typed = isinstance(holder.pid, int) and isinstance(holder.started, int | float)
    return holder if typed and isinstance(holder.host, str) and isinstance(holder.token, str) else None


def _linked(path: Path) -> bool:
    try:
        return path.stat().st_nlink == 2
    except OSError:
        return False


def boot_id() -> str | None:
    """This boot of this machine (Linux): with the host name and pid namespace, which processes we can see."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def release_held() -> None:
    """Release every lock this process holds: for an exit that skips `finally` blocks (os._exit after a signal),
    so that other hosts need not wait PHOTOFORGE_LOCK_STALE_S for them."""
    for lock in list(_HELD):
        with contextlib.suppress(Exception):
            lock.release()


def pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
