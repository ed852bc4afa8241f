"""Benchmark the asset stages (mesh, uv, bake, export) on real captures.

    .venv/bin/python bench/asset.py [--captures fountain-P11 monstree] [--preset standard]

For each capture in ../shared/data: the whole reconstruction runs through the flow (upstream
stages are cached after the first run), then per stage: seconds, and for the asset: left-out
and used-view PSNR/SSIM, texture coverage, glTF-Validator result, face count; plus the peak
RSS of the run's process. The asset stages' time is also printed as a ratio to the dense
stages' time (depth+fusion) measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ASSET_STAGES = ("mesh", "uv", "bake", "export")

_CHILD = """
import json, os, resource, sys
from flows.reconstruct import reconstruct
summary = reconstruct(sys.argv[1], sys.argv[2], {}, sys.argv[3])
summary["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
print("SUMMARY " + json.dumps(summary))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captures", nargs="+", default=["fountain-P11", "monstree"])
    parser.add_argument("--preset", default="standard")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pf-asset-") as tmp:
        env = {**os.environ, "PREFECT_HOME": str(Path(tmp) / "prefect")}
        env.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        for name in args.captures:
            capture = SHARED / name
            if not capture.is_dir():
                print(f"{name}: skipped ({capture} not found)")
                continue
            run = subprocess.run(
                [sys.executable, "-c", _CHILD, str(capture), args.preset, str(Path(tmp) / "ws")],
                capture_output=True, text=True, env=env, check=False,
            )  # fmt: skip
            line = next((x for x in run.stdout.splitlines() if x.startswith("SUMMARY ")), None)
            if run.returncode != 0 or line is None:
                print(f"{name}: failed\n{run.stderr[-2000:]}")
                continue
            _report(name, json.loads(line.removeprefix("SUMMARY ")))
    return 0


def _report(name: str, summary: dict) -> None:
    rows = {row["stage"]: row for row in summary["stages"]}
    print(f"{name} ({summary['preset']}): peak RSS {summary['peak_rss_gb']:.2f} GB")
    for stage, row in rows.items():
        print(f"    {stage:<7} {row['status']:<7} {row['compute_seconds']:7.1f} s  {row['metric']}")
    asset_s = sum(rows[s]["compute_seconds"] for s in ASSET_STAGES)
    dense_s = rows["depth"]["compute_seconds"] + rows["fusion"]["compute_seconds"]
    bake, export, mesh = rows["bake"]["metrics"], rows["export"]["metrics"], rows["mesh"]["metrics"]
    validator = export["gltf_validator"]
    checked = f"{validator['errors']} errors, {validator['warnings']} warnings" if validator.get("available") else "n/a"
    print(
        f"    mesh+uv+bake+export {asset_s:.1f} s (ratio to depth+fusion {asset_s / dense_s:.2f}); "
        f"{mesh['faces']} faces, manifold {mesh['manifold']}, watertight {mesh['watertight']}"
    )
    print(
        f"    left-out PSNR {bake['psnr_left_out']} dB, SSIM {bake['ssim_left_out']}; used views PSNR "
        f"{bake['psnr_used']} dB, SSIM {bake['ssim_used']}; coverage {bake['coverage']:.1%}; glTF-Validator {checked}"
    )
    print(f"    outputs: {summary.get('outputs')}")


if __name__ == "__main__":
    sys.exit(main())
