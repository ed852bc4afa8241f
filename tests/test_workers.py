"""The multi-machine setup on loopback: a Prefect server, a CPU and a GPU process worker, prefect.yaml.

process-inbox (CPU pool) reconstructs three synthetic captures; their depth stage goes to the
gpu-stage deployment (GPU pool; CPU code here). A worker killed with SIGKILL mid-run loses no
completed stage: after a restart, a re-run reuses every artefact that was complete; the killed
run stops heartbeating and the automation `photoforge deploy` made marks it Crashed.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path

import psutil
import pytest
from conftest import SMALL_RUN

from flows.deployments import PoolSetup
from flows.loopback import TERMINAL, LoopbackCluster
from photoforge.store import MANIFEST
from photoforge.synthetic import make_capture

CAPTURES = ("cap-a", "cap-b", "cap-c")
RUN_TIMEOUT = 900.0
HEARTBEAT_S = 30  # Prefect's minimum
CRASH_AFTER_S = 75  # below the default 600 s, to show the setting is used; two missed heartbeats and a half


def settled(cluster: LoopbackCluster, flow_names: tuple[str, ...], timeout: float) -> list[dict]:
    """Every started run of these flows once all have ended (an orphan waits for the automation).

    Runs the scheduler made from process-inbox's cron (next 1 January) are left out.
    """
    deadline = time.monotonic() + timeout
    while True:
        runs = [run for name in flow_names for run in cluster.flow_runs(name) if not run["auto_scheduled"]]
        if all(run["state_type"] in TERMINAL for run in runs):
            return runs
        assert time.monotonic() < deadline, [(r["name"], r["state_type"]) for r in runs]
        time.sleep(1)


def complete_artefacts(workspace: Path) -> dict[Path, float]:
    """Every complete stage artefact (its manifest) with the manifest's modification time."""
    return {
        m.parent: m.stat().st_mtime for m in workspace.glob(f"*/*/*/{MANIFEST}") if m.parent.parent.name != "outputs"
    }


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inbox = tmp_path_factory.mktemp("inbox")
    for seed, name in enumerate(CAPTURES, start=1):
        made = make_capture(tmp_path_factory.mktemp(name), views=20, width=480, height=360, focal=465.0, seed=seed)
        shutil.copytree(made.capture, inbox / name)
    return inbox


def test_inbox_on_work_pools_survives_a_killed_worker(tmp_path: Path, inbox: Path) -> None:
    workspace = tmp_path / "workspace"
    setup = PoolSetup(
        workspace=workspace,
        inbox=inbox,
        preset="preview",
        cron="0 0 1 1 *",
        heartbeat_s=HEARTBEAT_S,
        crash_after_s=CRASH_AFTER_S,
    )
    params = {"overrides": SMALL_RUN}
    with LoopbackCluster(tmp_path / "prefect-home", setup) as cluster:
        cluster.start_server()
        cluster.deploy()
        cluster.start_worker("cpu-worker", setup.cpu_pool)
        cluster.start_worker("gpu-worker", str(setup.gpu_pool), limit=1)

        # 1. run, and kill the CPU worker (with its flow-run processes) once the second capture is under way
        first = cluster.run_deployment("process-inbox/process-inbox", params)
        deadline = time.monotonic() + RUN_TIMEOUT
        while not list(workspace.glob(f"cap-b/poses/*/{MANIFEST}")):
            assert cluster.flow_run(first)["state_type"] not in TERMINAL, cluster.flow_run(first)
            assert time.monotonic() < deadline, "cap-b never reached its poses"
            time.sleep(0.5)
        killed = cluster.kill("cpu-worker")
        assert len(killed) >= 2  # the worker and the flow run it was executing
        assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in killed)
        assert cluster.flow_run(first)["state_type"] == "RUNNING"  # orphaned: nothing finished it

        # 2. restart the worker, run again: completed stages are reused, the rest is computed
        settled(cluster, ("gpu-stage",), RUN_TIMEOUT)  # a GPU-pool depth run of the killed flow finishes writing
        before = complete_artefacts(workspace)
        done_before = (workspace / "cap-a" / "outputs" / "run.json").stat().st_mtime
        cluster.start_worker("cpu-worker", setup.cpu_pool)
        second = cluster.run_deployment("process-inbox/process-inbox", params)
        run = cluster.wait(second, RUN_TIMEOUT)
        assert run["state_type"] == "COMPLETED", run

        # every capture done, with its asset; the one finished before the kill was not even started
        for name in CAPTURES:
            record = json.loads((workspace / name / "outputs" / "run.json").read_text())
            assert record["status"] == "completed", record
            assert (workspace / name / "outputs" / "asset.glb").stat().st_size > 10_000
        assert (workspace / "cap-a" / "outputs" / "run.json").stat().st_mtime == done_before  # skipped
        after = complete_artefacts(workspace)
        assert all(after.get(path) == mtime for path, mtime in before.items()), "a completed stage was recomputed"
        rerun = json.loads((workspace / "cap-b" / "outputs" / "run.json").read_text())
        reused = {row["stage"] for row in rerun["stages"] if row["status"] == "cached"}
        completed_before = {path.parent.name for path in before if path.parent.parent.name == "cap-b"}
        assert completed_before <= reused and {"ingest", "poses"} <= reused, (completed_before, rerun["stages"])
        assert len(after) > len(before)

        # depth ran on the GPU pool, through the gpu-stage deployment
        gpu_runs = cluster.flow_runs("gpu-stage")
        assert {r["state_type"] for r in gpu_runs} == {"COMPLETED"} and len(gpu_runs) >= 3
        untouched = json.loads((workspace / "cap-c" / "outputs" / "run.json").read_text())  # all in the re-run
        assert [row["ran_on"] for row in untouched["stages"] if row["stage"] == "depth"] == ["gpu-stage/gpu"]
        assert {row["ran_on"] for row in untouched["stages"] if row["stage"] != "depth"} == {None}

        # 3. the killed run ends Crashed by the heartbeat automation, and its cap-b subflow Crashed (by the
        # automation or by the re-run, whichever sees it first); nothing else is Crashed
        runs = settled(cluster, ("process-inbox", "reconstruct", "gpu-stage"), RUN_TIMEOUT)
        crashed = {run["id"]: run for run in runs if run["state_type"] == "CRASHED"}
        orphans = {first} | {r["id"] for r in cluster.flow_runs("reconstruct") if r["name"] == "cap-b-preview"}
        assert set(crashed) <= orphans and first in crashed and len(crashed) == 2, [
            (r["name"], r["state_type"]) for r in runs
        ]
        assert f"no heartbeat for {CRASH_AFTER_S} s" in crashed[first]["state"]["message"], crashed[first]["state"]
        assert {r["state_type"] for r in runs if r["id"] not in crashed} == {"COMPLETED"}
        # live runs heartbeat every HEARTBEAT_S: never silent for CRASH_AFTER_S (Prefect's default 180 s would be)
        beats = cluster.heartbeats(second)
        assert beats and all(b - a < CRASH_AFTER_S for a, b in itertools.pairwise(beats)), beats
        assert "CRASHED" not in {state["type"] for state in cluster.states(second)}
        started = {p.pid for p in cluster.processes.values()}
    assert not any(psutil.pid_exists(pid) for pid in started)
