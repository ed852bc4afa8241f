"""Benchmark the detail levels: uv + bake + export per level against the 150k-face path, same run.

    .venv/bin/python bench/asset.py [--captures monstree] [--objects duck vase bust]
                                    [--levels reduced preview medium] [--workspace DIR] [--repeat 3]

Per capture the stages up to the mesh run once through the library (cached in the workspace:
pass --workspace to keep them between runs); then per detail level uv, bake and export run, and
print faces, texture size, asset.glb and asset.web.glb sizes, uv/bake/export seconds, left-out
PSNR, the normal errors (own normals / normal-mapped) and the distance to the high-res surface,
each level's time and PSNR as a ratio / difference against the baseline: today's 150k-face path
(the mesh stage's surface as it is, `export.detail=raw` at today's 2048 px albedo, no occlusion
map, no web GLB, xatlas' charts unlimited as they were), measured in the same run; and against
the same 150k path with today's uv defaults (`uv.max_chart_share`, which makes every xatlas faster).
Every row runs `--repeat` rounds (each round runs every row once, so a slow spell of the machine
falls on all rows alike); times are medians over the rounds, and the ratio is also printed round
by round: xatlas' time on the 150k surface alone varies by a factor of two between runs.
Real captures come from ../shared/data; --objects are synthetic objects (photoforge.synthetic)
rendered here, which nothing in the levels was tuned on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from photoforge.stages.uv import UVParams

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
# today's 150k-face path: the mesh as it is, 2048 px albedo only, no web GLB, xatlas' charts unlimited
BASELINE = {
    "export.detail": "raw",
    "uv.texture_size": 2048,
    "uv.max_chart_share": 0.0,
    "bake.occlusion": False,
    "export.web": False,
}
BASE, RAW_NOW = "150k path", "150k, uv now"
Runs = list[dict[str, Any]]  # one row's rounds: each _level's seconds and metrics
OBJECT_CAPTURES = {"monstree"}  # real captures that are objects (asset.kind=object; auto calls it a scene)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captures", nargs="*", default=["monstree"])
    parser.add_argument("--objects", nargs="*", default=[], help="synthetic shapes, e.g. duck vase bust")
    parser.add_argument("--levels", nargs="+", default=["reduced", "preview"])
    parser.add_argument("--workspace", type=Path, default=None)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of every row; times are each row's median, ratios of medians"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pf-levels-") as tmp:
        workspace = args.workspace or Path(tmp)
        for name in args.captures:
            capture = SHARED / name
            if not capture.is_dir():
                print(f"{name}: skipped ({capture} not found)")
                continue
            kind = {"asset.kind": "object"} if name in OBJECT_CAPTURES else {}
            _bench(name, capture, workspace / name, kind, args.levels, repeat=args.repeat)
        for shape in args.objects:
            capture = _synthetic_object(shape, workspace / "captures" / shape)
            _bench(f"synthetic {shape}", capture, workspace / shape, {}, args.levels, repeat=args.repeat)
    return 0


def _synthetic_object(shape: str, root: Path) -> Path:
    from photoforge.synthetic import make_object_capture

    layout = "wall" if shape == "bust" else "table"
    if not (root / "capture").is_dir():
        make_object_capture(root, shape=shape, layout=layout)
    return root / "capture"


def _bench(
    name: str, capture: Path, workspace: Path, overrides: dict[str, Any], levels: list[str], *, repeat: int
) -> None:
    from photoforge.synthetic.object_runs import run_to_mesh

    start = time.perf_counter()
    upstream = run_to_mesh(capture, workspace, overrides)
    mesh = upstream["mesh"].metrics
    print(f"{name}: high-res {mesh['faces']} faces ({time.perf_counter() - start:.0f} s to the mesh)")
    _warm_up()
    charts_now = {"uv.max_chart_share": UVParams().max_chart_share}
    rows = {BASE: overrides | BASELINE, RAW_NOW: overrides | BASELINE | charts_now}
    rows |= {level: overrides | {"export.detail": level} for level in levels}
    runs: dict[str, Runs] = {label: [] for label in rows}
    for _ in range(repeat):  # rounds, each row once a round: a slow spell of the machine hits every row alike
        for label, settings in rows.items():
            runs[label].append(_level(upstream, capture, workspace, settings))
    for label in rows:
        _print(label, runs[label], runs[BASE], runs[RAW_NOW])


def _warm_up() -> None:
    """Load what the first export would otherwise load inside the first timed row (USD: about a second)."""
    import pxr.Usd  # noqa: F401
    import trimesh  # noqa: F401


def _level(upstream: dict, capture: Path, workspace: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """uv, bake and export of one level, each timed, in a store of its own (nothing reused)."""
    from photoforge.presets import load_preset
    from photoforge.stages import bake, export, uv
    from photoforge.store import ArtefactStore

    cfg = load_preset("standard", overrides)
    store = ArtefactStore(workspace / f"levels-{time.time_ns()}", "capture")  # its own root: nothing reused
    seconds = {}
    start = time.perf_counter()
    atlas = uv.STAGE.execute(store, uv.UVInputs(mesh=upstream["mesh"], level=cfg.detail_levels()[0]), cfg.uv)
    seconds["uv"] = time.perf_counter() - start
    inputs = bake.BakeInputs(
        capture=capture, ingest=upstream["ingest"], poses=upstream["poses"], depth=upstream["depth"],
        mesh=upstream["mesh"], uv=atlas,
    )  # fmt: skip
    start = time.perf_counter()
    texture = bake.STAGE.execute(store, inputs, cfg.bake)
    seconds["bake"] = time.perf_counter() - start
    start = time.perf_counter()
    exported = export.ExportInputs(mesh=upstream["mesh"], uv=atlas, bake=texture)
    delivered = export.STAGE.execute(store, exported, cfg.export)
    seconds["export"] = time.perf_counter() - start
    return {"seconds": seconds, "export": delivered.metrics, "bake": texture.metrics, "opens": _opens(delivered.dir)}


def _opens(export_dir: Path) -> str:
    """What three.js (headless chromium, meshopt decoder) and trimesh (a decoded copy) make of asset.web.glb."""
    import trimesh

    from photoforge.io.web_glb import decode_web_glb
    from photoforge.layout import ASSET_WEB_GLB
    from photoforge.qa.browser_load import load_gltf, parse_result

    web = export_dir / ASSET_WEB_GLB
    if not web.is_file():
        return "no web GLB"
    three = parse_result(load_gltf(web))
    three_said = f"three.js {three['faces']} faces" if three["status"] == "ok" else f"three.js {three['message']}"
    with tempfile.TemporaryDirectory() as tmp:
        decoded = decode_web_glb(web, Path(tmp) / "decoded.glb")
        faces = sum(len(g.faces) for g in trimesh.load(decoded).geometry.values())
    return f"{three_said}, trimesh (decoded) {faces} faces"


def _print(label: str, runs: Runs, base_runs: Runs, raw_now_runs: Runs) -> None:
    """One row: each stage's median seconds over the rounds; its median total against today's 150k path's and
    against the 150k path's with today's uv defaults, and the same ratio round by round (its spread)."""
    level, total = runs[0], _median_total(runs)
    base_total, raw_now_total = _median_total(base_runs), _median_total(raw_now_runs)
    seconds = {stage: float(np.median([run["seconds"][stage] for run in runs])) for stage in ("uv", "bake", "export")}
    per_round = " ".join(f"{_total(b) / _total(r):.2f}" for b, r in zip(base_runs, runs, strict=True))
    shipped = level["export"]["levels"][0]
    web = level["export"].get("web") or {}
    psnr, base_psnr = level["bake"]["psnr_left_out"], base_runs[0]["bake"]["psnr_left_out"]
    detail = level["bake"].get("detail")
    errors = (
        f"normals {detail['normal_error_own_deg']:.2f}° own / {detail['normal_error_mapped_deg']:.2f}° mapped "
        f"({detail['normal_error_own_deg'] / max(detail['normal_error_mapped_deg'], 1e-9):.1f}x), "
        f"to high-res max {detail['hausdorff']:.4g} mean {detail['mean_distance']:.4g}"
        if detail
        else "no normal map (not decimated)"
    )
    validator = shipped["gltf_validator"]
    checked = f"{validator.get('errors')}e/{validator.get('warnings')}w" if validator.get("available") else "n/a"
    web_size = f"{web['bytes'] / 1e6:.2f} MB ({_web_check(web)})" if web.get("written") else "-"
    print(
        f"    {label:<9} {shipped['faces']:>7} faces {shipped['texture_size']:>5}px  "
        f"glb {shipped['bytes'] / 1e6:6.2f} MB ({checked})  web {web_size}: {level['opens']}\n"
        f"              uv {seconds['uv']:5.1f} s  bake {seconds['bake']:5.1f} s  export {seconds['export']:4.1f} s  "
        f"= {total:5.1f} s (median of {len(runs)}), {base_total / total:.2f}x faster than the 150k path "
        f"(round by round: {per_round}; {raw_now_total / total:.2f}x than 150k with uv now); "
        f"left-out PSNR {psnr:.2f} dB ({psnr - base_psnr:+.2f}); {errors}"
    )


def _total(run: dict[str, Any]) -> float:
    return sum(run["seconds"].values())


def _median_total(runs: Runs) -> float:
    return float(np.median([_total(run) for run in runs]))


def _web_check(web: dict[str, Any]) -> str:
    validator = web.get("gltf_validator") or {}
    return f"{validator.get('errors')}e/{validator.get('warnings')}w" if validator.get("available") else "n/a"


if __name__ == "__main__":
    sys.exit(main())
