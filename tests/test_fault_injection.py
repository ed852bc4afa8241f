"""Fault injection: `photoforge run` killed with SIGKILL at seeded random moments, stage after stage.

A chain (run, kill, re-run, kill, ...) keeps the cost near one full run plus one Prefect start-up
per kill. After every kill no artefact dir may lack its manifest; every re-run reuses the stages
completed before (no temp dir of theirs appears, their manifests keep their mtime); at the end a
run completes, one more run reuses everything, and no temp dir, lock file or process is left.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from conftest import SAMPLE, SMALL_RUN, cli_env

from photoforge.layout import STAGE_ORDER
from photoforge.store import LOCKS, MANIFEST

STAGES = [s for s in STAGE_ORDER if s != "splat"]  # splat is off in the standard preset
# Where each kill aims (start-up: while Prefect starts, before any stage), and the most extra
# delay after the aimed stage's temp dir shows.
PLAN = [
    ("start-up", 8.0),
    ("ingest", 0.2),
    ("poses", 1.5),
    ("depth", 2.0),
    ("fusion", 0.5),
    ("mesh", 0.3),
    ("uv", 1.0),
    ("bake", 2.0),
    ("export", 0.3),
    ("turntable", 0.2),
    ("report", 0.2),
]
SEED = 20240611
POLL_S = 0.01


def _command(workspace: Path, summary: Path) -> list[str]:
    """The sample capture at preset preview, every stage on, at test sizes."""
    overrides = [f"{name}={json.dumps(value)}" for name, value in SMALL_RUN.items()]
    overrides += ["poses.max_features=2048", "mesh.poisson_depth=7"]
    sets = [arg for text in overrides for arg in ("--set", text)]
    run = [sys.executable, "-m", "flows.cli", "run", str(SAMPLE), "--preset", "preview", *sets]
    return [*run, "--workspace", str(workspace), "--json", str(summary)]


def _complete(capture_dir: Path) -> dict[tuple[str, str], int]:
    """Every artefact dir, (stage, key) -> its manifest's mtime; each must hold a whole manifest."""
    found = {}
    for stage in STAGES:
        for entry in sorted((capture_dir / stage).glob("*")):
            if entry.name.startswith("."):
                continue
            manifest = entry / MANIFEST
            assert manifest.is_file(), f"{entry} is an artefact dir without {MANIFEST}"
            data = json.loads(manifest.read_text())
            assert (data["stage"], data["key"]) == (stage, entry.name), manifest
            found[(stage, entry.name)] = manifest.stat().st_mtime_ns
    return found


def _temps(capture_dir: Path) -> set[tuple[str, str]]:
    """(stage, name) of every temp dir: a stage being computed, or one a killed run left behind."""
    return {(stage, tmp.name) for stage in STAGES for tmp in (capture_dir / stage).glob(".tmp-*")}


def _family(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        parent = psutil.Process(proc.pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _assert_gone(processes: list[psutil.Process], pgid: int) -> None:
    """Killed with its process group: the CLI and its ephemeral Prefect server alike."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        alive = [p for p in processes if _alive(p)]
        alive += [p for p in psutil.process_iter() if _pgid(p.pid) == pgid and _alive(p)]
        if not alive:
            return
        time.sleep(0.2)
    raise AssertionError(f"left running after the kill: {alive}")


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _run_and_kill(command: list[str], capture_dir: Path, aim: str, extra: float, log: Path) -> tuple[str, float, set]:
    """Start a run, SIGKILL its process group at the aimed moment; return where it was, when, and every
    stage whose temp dir showed meanwhile."""
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=cli_env(), start_new_session=True)
    start = time.monotonic()
    kill_at = start + extra if aim == "start-up" else None
    left_behind = _temps(capture_dir)  # by earlier kills: not this run's work
    seen: set[str] = set()
    try:
        while proc.poll() is None:
            now = time.monotonic()
            temps = {stage for stage, name in _temps(capture_dir) - left_behind}
            seen |= temps
            if kill_at is None and (aim in seen or ((capture_dir / aim).is_dir() and _done(capture_dir / aim))):
                kill_at = now + extra
            if kill_at is not None and now >= kill_at:
                family = _family(proc)
                where = ", ".join(sorted(temps, key=STAGES.index)) or ("start-up" if not seen else "between stages")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
                _assert_gone(family, proc.pid)
                return where, now - start, seen
            if now - start > 300:
                raise AssertionError(f"no {aim} stage within 300 s: see {log}")
            time.sleep(POLL_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    raise AssertionError(f"the run aimed at {aim} ended by itself (exit {proc.returncode}): {log.read_text()[-3000:]}")


def _done(stage_dir: Path) -> bool:
    return any((entry / MANIFEST).is_file() for entry in stage_dir.iterdir() if not entry.name.startswith("."))


def _run_to_end(command: list[str], log: Path) -> int:
    """Run to the end; then none of the processes it started (its Prefect server) may outlive it."""
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=cli_env(), start_new_session=True)
    family: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + 600
    try:
        while proc.poll() is None:
            assert time.monotonic() < deadline, f"no end after 600 s: see {log}"
            family |= {p.pid: p for p in _family(proc)}
            time.sleep(0.5)
        code = proc.returncode
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    _assert_gone(list(family.values()), pgid=proc.pid)
    return code


def test_sigkill_at_random_moments_leaves_nothing_half_written_and_reruns_reuse(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    workspace = tmp_path / "ws"
    capture_dir = workspace / SAMPLE.name
    summary = tmp_path / "summary.json"
    command = _command(workspace, summary)
    landed: list[str] = []
    began = time.monotonic()
    for trial, (aim, most) in enumerate(PLAN):
        before = _complete(capture_dir)
        extra = rng.uniform(2.0, most) if aim == "start-up" else rng.uniform(0.0, most)
        where, seconds, seen = _run_and_kill(command, capture_dir, aim, extra, tmp_path / f"trial-{trial}.log")
        print(f"trial {trial:2}: aimed at {aim:<9} killed in {where:<15} after {seconds:5.1f} s")
        landed.append(where)
        after = _complete(capture_dir)
        for (stage, key), mtime in before.items():
            assert after.get((stage, key)) == mtime, f"trial {trial}: {stage}/{key} was rewritten"
        recomputed = seen & {stage for stage, _ in before}
        assert not recomputed, f"trial {trial}: completed stages computed again: {recomputed}"
    real_stages = {where for where in landed if where in STAGES}
    assert len(real_stages) >= 5, f"kills landed in too few stages: {landed}"

    before = _complete(capture_dir)
    code = _run_to_end(command, tmp_path / "final.log")
    assert code == 0, (tmp_path / "final.log").read_text()[-3000:]
    rows = json.loads(summary.read_text())["stages"]
    assert [row["stage"] for row in rows] == STAGES
    done_before = {stage for stage, _ in before}
    assert [row["status"] for row in rows] == ["cached" if s in done_before else "ran" for s in STAGES]
    for (stage, key), mtime in before.items():
        assert _complete(capture_dir)[(stage, key)] == mtime

    code = _run_to_end(command, tmp_path / "again.log")
    assert code == 0, (tmp_path / "again.log").read_text()[-3000:]
    assert [row["status"] for row in json.loads(summary.read_text())["stages"]] == ["cached"] * len(STAGES)
    print(f"{len(PLAN)} kills, then a full and a cached run, in {time.monotonic() - began:.0f} s")

    leftovers = [p for p in workspace.rglob("*") if p.name.startswith(".tmp-") or p.suffix == ".lock"]
    leftovers += list((workspace / LOCKS).iterdir()) if (workspace / LOCKS).exists() else []
    assert not leftovers, leftovers
