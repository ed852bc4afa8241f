"""Start-up: `photoforge --help` and fully cached re-runs of the sample, with and without a local server.

    .venv/bin/python bench/startup.py [--workspace DIR] [--repeat 3] [--preset standard]

The sample is the README's demo: `photoforge run data/sample` (scripts/demo.sh), by default on ./workspace, so
a workspace the demo filled is reused; otherwise the first run fills the cache (minutes). Then, each the median
of --repeat runs of the `photoforge` command as a user types it (PREFECT_* variables removed):

  (a) `photoforge --help`: the floor (Python start-up and the CLI's own imports);
  (b) a fully cached re-run on Prefect's ephemeral API (`photoforge run` with no server up);
  (c) the same with `photoforge server start` up (the run reuses it); the server is stopped at the end.

Prints the seconds, the ratios (b)/(c) and (c)/(a), and the heavy libraries `photoforge --help` imports
(`python -X importtime`; there should be none).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows import local_server  # noqa: E402

PHOTOFORGE = Path(sys.executable).with_name("photoforge")
SAMPLE = ROOT / "data" / "sample"
HEAVY = ("torch", "open3d", "pycolmap", "gsplat", "pymeshlab", "xatlas", "trimesh", "prefect")
TIMEOUT_S = 3600


def _env() -> dict[str, str]:
    """The user's environment without their Prefect set-up: photoforge picks the API itself."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}


def _photoforge(*args: str, check: bool = True) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(
        [str(PHOTOFORGE), *args], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    seconds = time.perf_counter() - start
    if check and done.returncode != 0:
        raise SystemExit(f"photoforge {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, done


def _cached_run(workspace: Path, preset: str, summary: Path) -> float:
    """One re-run of the sample; fails unless no stage executed."""
    args = ("run", str(SAMPLE), "--workspace", str(workspace), "--preset", preset, "--json", str(summary))
    seconds, _ = _photoforge(*args)
    stages = json.loads(summary.read_text())["stages"]
    ran = [row["stage"] for row in stages if row["status"] not in ("cached", "skipped")]
    if ran:
        raise SystemExit(f"not a fully cached re-run: {', '.join(ran)} executed")
    return seconds


def _heavy_imports_of_help() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flows.cli", "--help"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return sorted({name.split(".")[0] for name in names} & set(HEAVY))


def _median(samples: list[float]) -> str:
    return f"{statistics.median(samples):.2f} s (runs: {', '.join(f'{s:.2f}' for s in samples)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=ROOT / "workspace", help="default: ./workspace (the demo's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--preset", default="standard", help="the demo's preset (default: standard)")
    args = parser.parse_args()
    workspace = args.workspace.resolve()
    running = local_server.live(workspace)
    if running is not None:
        raise SystemExit(
            f"a Prefect server is up for {workspace} ({running.owner}, {running.address}): stop it for (b), "
            "or pass another --workspace"
        )

    with tempfile.TemporaryDirectory(prefix="pf-startup-") as tmp:
        summary = Path(tmp) / "run.json"
        fill, _ = _photoforge("run", str(SAMPLE), "--workspace", str(workspace), "--preset", args.preset)
        print(f"fill the cache (the demo command; quick when {workspace} has it): {fill:.1f} s")

        heavy = _heavy_imports_of_help()
        print(f"heavy libraries imported by `photoforge --help`: {', '.join(heavy) or 'none'}")
        help_s = [_photoforge("--help")[0] for _ in range(args.repeat)]
        ephemeral = [_cached_run(workspace, args.preset, summary) for _ in range(args.repeat)]

        up, _ = _photoforge("server", "start", "--workspace", str(workspace))
        try:
            record = local_server.live(workspace)
            print(f"photoforge server start: {up:.1f} s (once; {record.address if record else '?'})")
            reused = [_cached_run(workspace, args.preset, summary) for _ in range(args.repeat)]
        finally:
            down, _ = _photoforge("server", "stop", "--workspace", str(workspace))
            print(f"photoforge server stop: {down:.1f} s")

    a, b, c = (statistics.median(s) for s in (help_s, ephemeral, reused))
    print(f"(a) photoforge --help:                         {_median(help_s)}")
    print(f"(b) cached re-run, Prefect's ephemeral API:    {_median(ephemeral)}")
    print(f"(c) cached re-run, `photoforge server` up:     {_median(reused)}")
    print(f"ratio (b)/(c), ephemeral / reused server: {b / c:.1f}x")
    print(f"ratio (c)/(a), reused-server run / --help: {c / a:.1f}x")
    print(f"target: (c) <= 3 s: {'met' if c <= 3.0 else 'NOT met'} ({c:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
