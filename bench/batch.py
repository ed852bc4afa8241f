"""Benchmark the work-pool setup against a plain sequential loop, on 3 synthetic captures.

    .venv/bin/python bench/batch.py [--views 14] [--size 320] [--preset preview]

Baseline: the library stages of each capture called one after another in this process (no
Prefect). Then the same captures through the real multi-process setup on loopback (prefect
server, a CPU and a GPU process worker, prefect.yaml deployed, process-inbox run once). Prints
the wall-time ratio workers/sequential, and Prefect's overhead per task: the time a task took
as seen by its flow minus the time spent in stage code, from each capture's run.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.deployments import PoolSetup  # noqa: E402
from flows.loopback import LoopbackCluster  # noqa: E402
from photoforge.presets import PipelineConfig, load_preset  # noqa: E402
from photoforge.stages import bake, depth, export, fusion, ingest, mesh, poses, report, turntable, uv  # noqa: E402
from photoforge.store import ArtefactStore  # noqa: E402
from photoforge.synthetic import make_capture  # noqa: E402

OVERRIDES = {"ingest.max_size": 480, "depth.max_size": 240, "depth.backend": "cpu", "export.usdz": False}


def sequential(capture: Path, cfg: PipelineConfig, workspace: Path) -> None:
    """The DAG of flows/reconstruct.py as plain calls: what photoforge costs without Prefect."""
    store = ArtefactStore(workspace, capture.name)
    frames = ingest.execute(store, capture, cfg.ingest)
    sparse = poses.execute(store, frames, cfg.poses)
    maps = depth.execute(store, frames, sparse, cfg.depth)
    cloud = fusion.execute(store, maps, cfg.fusion)
    surface = mesh.execute(store, cloud, maps, cfg.mesh)
    atlas = uv.execute(store, surface, cfg.uv)
    texture = bake.execute(store, capture, frames, sparse, maps, surface, atlas, cfg.bake)
    asset = export.STAGE.execute(store, export.ExportInputs(mesh=surface, uv=atlas, bake=texture), cfg.export)
    video = turntable.STAGE.execute(store, turntable.TurntableInputs(uv=atlas, bake=texture), cfg.turntable)
    results = {"ingest": frames, "poses": sparse, "depth": maps, "fusion": cloud, "mesh": surface}
    results |= {"uv": atlas, "bake": texture, "export": asset, "turntable": video}
    inputs = report.ReportInputs(capture=str(capture), results=results, preset="bench", overrides=OVERRIDES)
    report.STAGE.execute(store, inputs, cfg.report)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--size", type=int, default=480, help="width of the synthetic photos")
    parser.add_argument("--preset", default="preview")
    args = parser.parse_args()
    cfg = load_preset(args.preset, OVERRIDES)
    with tempfile.TemporaryDirectory(prefix="pf-batch-") as tmp_name:
        tmp = Path(tmp_name)
        inbox = tmp / "inbox"
        for seed, name in enumerate(("cap-a", "cap-b", "cap-c"), start=1):
            height = args.size * 3 // 4
            made = make_capture(
                tmp / name, views=args.views, width=args.size, height=height, focal=args.size * 0.97, seed=seed
            )
            shutil.copytree(made.capture, inbox / name)

        started = time.perf_counter()
        for capture in sorted(inbox.iterdir()):
            sequential(capture, cfg, tmp / "ws-sequential")
        plain = time.perf_counter() - started
        print(f"sequential (library, no Prefect): {plain:.1f} s for 3 captures")

        setup = PoolSetup(workspace=tmp / "ws-workers", inbox=inbox, preset=args.preset, cron="0 0 1 1 *")
        with LoopbackCluster(tmp / "prefect-home", setup) as cluster:
            started = time.perf_counter()
            cluster.start_server()
            cluster.deploy()
            cluster.start_worker("cpu-worker", setup.cpu_pool)
            cluster.start_worker("gpu-worker", str(setup.gpu_pool), limit=1)
            setup_seconds = time.perf_counter() - started
            started = time.perf_counter()
            run_id = cluster.run_deployment("process-inbox/process-inbox", {"overrides": OVERRIDES})
            state = cluster.wait(run_id, 3600)["state_type"]
            workers = time.perf_counter() - started
        print(f"server + deploy + workers start: {setup_seconds:.1f} s (once per cluster, not counted below)")
        print(f"work pools (process-inbox, {state}): {workers:.1f} s for 3 captures")
        print(f"ratio workers / sequential: {workers / plain:.2f}")

        rows = []
        for name in ("cap-a", "cap-b", "cap-c"):
            record = json.loads((setup.workspace / name / "outputs" / "run.json").read_text())
            rows += [r for r in record["stages"] if r.get("compute_seconds") is not None]
        overhead = [r["seconds"] - r["compute_seconds"] for r in rows]
        in_stages = sum(r["compute_seconds"] for r in rows)
        print(
            f"Prefect overhead per task: mean {sum(overhead) / len(overhead):.2f} s, max {max(overhead):.2f} s "
            f"over {len(rows)} stage tasks; stage code {in_stages:.1f} s of {workers:.1f} s wall "
            f"({in_stages / workers:.0%})"
        )
        for stage in ("depth",):
            gpu = [r for r in rows if r["stage"] == stage]
            print(f"{stage} on {gpu[0].get('ran_on') or 'inline'}: {[round(r['seconds'], 1) for r in gpu]} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
