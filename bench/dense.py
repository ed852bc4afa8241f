"""Benchmark dense depth + fusion: accuracy on the synthetic capture, time and memory on fountain-P11.

    .venv/bin/python bench/dense.py [--skip-synthetic] [--skip-fountain]
    .venv/bin/python bench/dense.py --shapes [NAME ...] [--layouts table handheld] [--views 24] [--pics DIR]
                                    [--previous]

--shapes: the object test bed instead (photoforge.synthetic.make_object_capture): each shape x layout
    (bust: wall only) rendered, run ingest -> mesh in its own process (standard preset, depth backend
    cpu, VIEWS views at WIDTHxHEIGHT, depth maps 640 px), then scored per stage against the true object
    (photoforge.qa.stage_scores): depth, fusion, asset, mesh. Precision, recall and F at 0.5% and 1% of
    the object's size (its bounding-box diagonal), seconds per view of depth and peak RSS of the run.
    HELD_OUT shapes are for checking, never for tuning: printed as their own group.
    --shapes alone: every table shape x the layouts, and bust x wall.
    --previous: each case also with the previous depth method (PREVIOUS: one full-size sweep, sources
    by shared points), in the same run: rows marked `prev`.

(1) Synthetic capture (known mesh): for each depth backend available here (cpu; cuda with
    pycolmap-cuda12), accuracy (mean distance to the true surface), completeness (mean distance
    from the observed true surface to the cloud) and F-score at 0.5% of the object size.
(2) ../shared/data/fountain-P11 at the preview and standard presets, and standard with the previous
    depth method (PREVIOUS): depth+fusion wall time per view and peak RSS, each in its own process
    (ratios against preview and against the previous method, same run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FOUNTAIN = ROOT.parent / "shared" / "data" / "fountain-P11"


def synthetic_scores(tmp: Path) -> None:
    import open3d as o3d

    from photoforge.camera.model import Camera
    from photoforge.geometry.mvs import colmap_stereo
    from photoforge.geometry.pointcloud import read_ply
    from photoforge.layout import FUSED_PLY, DepthViews
    from photoforge.presets import load_preset
    from photoforge.qa.pose_errors import read_strecha_dir
    from photoforge.qa.surface_scores import observed_surface_samples, similarity_to_truth, surface_scores
    from photoforge.stages import depth, fusion, ingest, poses
    from photoforge.store import ArtefactStore
    from photoforge.synthetic import make_capture

    synthetic = make_capture(tmp / "synthetic", views=24, width=640, height=480, focal=620.0)
    mesh = o3d.io.read_triangle_mesh(str(synthetic.mesh))
    truth = read_strecha_dir(synthetic.cameras)
    backends = ["cpu"] + (["cuda"] if colmap_stereo.available() else [])
    print(f"(1) synthetic capture: 24 views 640x480, object size {synthetic.object_size:.3f}, threshold 0.5%")
    for backend in backends:
        cfg = load_preset("standard", {"ingest.max_size": 640, "depth.max_size": 640, "depth.backend": backend})
        store = ArtefactStore(tmp / "ws", "synthetic")
        frames = ingest.STAGE.execute(store, ingest.IngestInputs(capture=synthetic.capture), cfg.ingest)
        sparse = poses.STAGE.execute(store, poses.PosesInputs(ingest=frames), cfg.poses)
        t0 = time.perf_counter()
        maps = depth.STAGE.execute(store, depth.DepthInputs(ingest=frames, poses=sparse), cfg.depth)
        cloud = fusion.STAGE.execute(store, fusion.FusionInputs(depth=maps), cfg.fusion)
        seconds = time.perf_counter() - t0
        estimated, true = [], []
        for record in DepthViews.read(maps.dir).usable:
            assert record.camera is not None
            estimated.append(Camera.from_json(record.camera).centre)
            true.append(truth[Path(record.name).name.removesuffix(".jpg")].centre)
        transform = similarity_to_truth(np.array(estimated), np.array(true))
        xyz, _, _ = read_ply(cloud.dir / FUSED_PLY)
        aligned = xyz @ transform[:3, :3].T + transform[:3, 3]
        samples = observed_surface_samples(mesh, np.array(true))
        s = surface_scores(aligned, mesh, samples, 0.005 * synthetic.object_size)
        print(
            f"    {backend:<5} points {s.points:>8}  accuracy {s.accuracy_mean / synthetic.object_size:.3%}  "
            f"completeness {s.completeness_mean / synthetic.object_size:.3%}  precision {s.precision:.3f}  "
            f"recall {s.recall:.3f}  F-score {s.fscore:.3f}  (depth+fusion {seconds:.1f} s)"
        )


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from photoforge.presets import load_preset
from photoforge.stages import depth, fusion, ingest, poses
from photoforge.store import ArtefactStore
capture, workspace, preset = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
cfg = load_preset(preset, {"depth.backend": "cpu"} | json.loads(sys.argv[4]))
store = ArtefactStore(workspace, preset)
frames = ingest.STAGE.execute(store, ingest.IngestInputs(capture=capture), cfg.ingest)
sparse = poses.STAGE.execute(store, poses.PosesInputs(ingest=frames), cfg.poses)
t0 = time.perf_counter()
maps = depth.STAGE.execute(store, depth.DepthInputs(ingest=frames, poses=sparse), cfg.depth)
t1 = time.perf_counter()
cloud = fusion.STAGE.execute(store, fusion.FusionInputs(depth=maps), cfg.fusion)
t2 = time.perf_counter()
print(json.dumps({"depth_s": t1 - t0, "fusion_s": t2 - t1, "views": maps.metrics["views"],
                  "points": cloud.metrics["points"], "size": cfg.depth.max_size,
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def fountain_runs(tmp: Path) -> None:
    if not FOUNTAIN.is_dir():
        print(f"(2) skipped: {FOUNTAIN} not found")
        return
    print("(2) fountain-P11, cpu backend, depth+fusion (ingest+poses run first, not timed)")
    results = {}
    for name, preset, overrides in (("preview", "preview", {}), ("previous", "standard", PREVIOUS),
                                    ("standard", "standard", {})):  # fmt: skip
        run = subprocess.run(
            [sys.executable, "-c", _CHILD, str(FOUNTAIN), str(tmp / "fountain"), preset, json.dumps(overrides)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(run.stdout.strip().splitlines()[-1])
        results[name] = r
        total = r["depth_s"] + r["fusion_s"]
        print(
            f"    {name:<8} depth maps {r['size']} px: {r['depth_s'] / r['views']:.2f} s/view, fusion "
            f"{r['fusion_s']:.1f} s, depth+fusion {total:.1f} s, {r['points']} points, peak RSS {r['rss_gb']:.2f} GB"
        )
    s = results["standard"]
    for name in ("preview", "previous"):
        b = results[name]
        print(
            f"    ratio standard/{name}: time per view {s['depth_s'] / s['views'] / (b['depth_s'] / b['views']):.2f}, "
            f"peak RSS {s['rss_gb'] / b['rss_gb']:.2f}"
        )


# the depth method and fusion thresholds before the coarse-to-fine sweep (issue 15)
PREVIOUS = {"depth.method": "sweep", "depth.neighbours": 4, "depth.top_k": 2, "fusion.min_consistent_views": 2,
            "fusion.reprojection_px": 1.0, "fusion.single_view_confidence": 2.0, "fusion.free_space": False,
            "mesh.free_space_views": 0}  # fmt: skip
HELD_OUT = ("ring", "mushroom", "arch")  # shapes nobody tunes depth or fusion on: their numbers check the others
VIEWS, WIDTH, HEIGHT = 24, 640, 480
STAGES = ("depth", "fusion", "asset", "mesh")

_OBJECT_CHILD = """
import json, resource, sys, time
from pathlib import Path
import numpy as np
from photoforge.qa.stage_scores import score_object_run
from photoforge.synthetic.object_runs import run_to_mesh
root, overrides = Path(sys.argv[1]), json.loads(sys.argv[2])
t0 = time.perf_counter()
results = run_to_mesh(root / "capture", root / "ws", overrides)
seconds = time.perf_counter() - t0
rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # the run's peak, before scoring
scores = score_object_run(root / "truth", results)
np.savez_compressed(root / "scores.npz", samples=scores.samples, size=scores.size,
                    **{s.stage: s.sample_distance for s in scores.stages if s.sample_distance is not None})
per_view = results["depth"].metrics["seconds_per_view"]
registered = results["poses"].metrics.get("registered")
print(json.dumps({"seconds": seconds, "rss_gb": rss_gb, "depth_s_per_view": per_view, "registered": registered,
                  "stages": [s.row() for s in scores.stages]}))
"""


def object_runs(
    tmp: Path, shapes: list[str], layouts: list[str], views: int, pics: Path | None, *, previous: bool = False
) -> None:
    from photoforge.synthetic import TABLE_SHAPES, WALL_SHAPES, make_object_capture

    cases = [(shape, layout) for shape in shapes if shape in TABLE_SHAPES for layout in layouts]
    cases += [(shape, "wall") for shape in shapes if shape in WALL_SHAPES]
    methods = [("prev", PREVIOUS), ("now", {})] if previous else [("now", {})]
    print(
        f"(3) object test bed: {views} views {WIDTH}x{HEIGHT}, standard preset, depth cpu at 640 px; tolerances "
        "0.5% and 1% of the object's bounding-box diagonal; held out: "
        + ", ".join(HELD_OUT)
        + (f"; prev = the previous depth method and fusion {PREVIOUS}" if previous else "")
    )
    header = (
        f"    {'shape':<9}{'layout':<9}{'method':<7}{'stage':<7}{'P@0.5%':>7}{'R@0.5%':>7}{'F@0.5%':>7}"
        f"{'P@1%':>7}{'R@1%':>7}{'F@1%':>7}{'s/view':>8}{'RSS GB':>8}{'run s':>7}"
    )
    print(header, flush=True)
    rows: list[tuple[str, str, str, dict]] = []
    for shape, layout in cases:
        root = tmp / f"{shape}-{layout}"
        make_object_capture(root, shape=shape, layout=layout, views=views, width=WIDTH, height=HEIGHT)  # type: ignore[arg-type]
        for method, changes in methods:
            overrides = {"ingest.max_size": 640, "depth.max_size": 640, "depth.backend": "cpu",
                         "scale.marker_size": 0.05} | changes  # fmt: skip
            if layout == "wall":
                overrides["asset.kind"] = "object"
            run = subprocess.run(
                [sys.executable, "-c", _OBJECT_CHILD, str(root), json.dumps(overrides)], capture_output=True, text=True
            )
            if run.returncode != 0:
                print(f"    {shape:<9}{layout:<9}{method:<7}failed: {run.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            rows.append((shape, layout, method, r))
            for stage in r["stages"]:
                print(_row(f"{shape:<9}{layout:<9}{method:<7}", stage, r), flush=True)
            if pics is not None:
                _pictures(root, pics / f"{shape}-{layout}" if method == "now" else pics / f"{shape}-{layout}-{method}")
    for group in ("tuned-on", "held-out"):
        for method, _ in methods:
            members = [x for x in rows if (x[0] in HELD_OUT) == (group == "held-out") and x[2] == method]
            names = ", ".join(f"{s}/{lay}" for s, lay, _, _ in members)
            print(f"    mean over {group}, {method} ({len(members)} runs: {names})")
            for stage in STAGES:
                found = [next(x for x in r["stages"] if x["stage"] == stage) for _, _, _, r in members]
                if found:
                    mean = {
                        k: float(np.mean([f[k] for f in found]))
                        for k in found[0]
                        if k.startswith(("precision", "recall", "f@"))
                    }
                    print(_row(f"{'mean':<9}{group:<9}{method:<7}", mean | {"stage": stage}, None))


def _row(label: str, stage: dict, run: dict | None) -> str:
    numbers = "".join(f"{stage[f'{m}@{t}']:>7.3f}" for t in ("0.5%", "1.0%") for m in ("precision", "recall", "f"))
    extra = f"{run['depth_s_per_view']:>8.2f}{run['rss_gb']:>8.2f}{run['seconds']:>7.0f}" if run else ""
    return f"    {label}{stage['stage']:<7}{numbers}{extra}"


def _pictures(root: Path, stem: Path) -> None:
    """Top and side views of the observed true samples: grey reached by the fused cloud / the mesh
    within 1% of the size, red missed (stem-fusion.png, stem-mesh.png)."""
    import cv2

    data = np.load(root / "scores.npz")
    samples, size = data["samples"], float(data["size"])
    stem.parent.mkdir(parents=True, exist_ok=True)
    for stage in ("fusion", "mesh"):
        missed = data[stage] >= 0.01 * size
        panels = []
        for axes, flip in (((0, 1), False), ((0, 2), True), ((1, 2), True)):  # top (x, y), front (x, z), side (y, z)
            panels.append(_scatter(samples[:, axes], missed, flip))
        cv2.imwrite(f"{stem}-{stage}.png", np.concatenate(panels, axis=1))


def _scatter(xy: np.ndarray, missed: np.ndarray, flip: bool, pixels: int = 400) -> np.ndarray:
    image = np.full((pixels, pixels, 3), 255, np.uint8)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    scale = 0.9 * pixels / float((hi - lo).max())
    uv = ((xy - (lo + hi) / 2) * scale + pixels / 2).astype(int)
    if flip:
        uv[:, 1] = pixels - 1 - uv[:, 1]
    uv = np.clip(uv, 0, pixels - 1)
    order = np.argsort(missed, kind="stable")  # missed drawn last, on top
    colours = np.where(missed[order, None], np.array([40, 40, 220], np.uint8), np.array([190, 190, 190], np.uint8))
    image[uv[order, 1], uv[order, 0]] = colours
    return image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-fountain", action="store_true")
    parser.add_argument("--shapes", nargs="*", help="the object test bed (no names: every shape) instead of (1), (2)")
    parser.add_argument("--layouts", nargs="+", default=["table", "handheld"], choices=["table", "handheld"])
    parser.add_argument("--views", type=int, default=VIEWS)
    parser.add_argument("--pics", type=Path, help="with --shapes: where to save pictures of the missed surface")
    parser.add_argument("--previous", action="store_true", help="with --shapes: the previous depth method too")
    parser.add_argument("--keep", type=Path, help="with --shapes: work here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    if args.shapes is not None:
        from photoforge.synthetic import SHAPES

        unknown = sorted(set(args.shapes) - set(SHAPES))
        if unknown:
            parser.error(f"unknown shapes {unknown}: from {', '.join(SHAPES)}")
        shapes = args.shapes or list(SHAPES)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            object_runs(args.keep, shapes, args.layouts, args.views, args.pics, previous=args.previous)
            return 0
        with tempfile.TemporaryDirectory(prefix="pf-dense-") as tmp:
            object_runs(Path(tmp), shapes, args.layouts, args.views, args.pics, previous=args.previous)
        return 0
    with tempfile.TemporaryDirectory(prefix="pf-dense-") as tmp:
        if not args.skip_synthetic:
            synthetic_scores(Path(tmp))
        if not args.skip_fountain:
            fountain_runs(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
