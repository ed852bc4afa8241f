"""Benchmark dense depth + fusion: accuracy on the synthetic capture, time and memory on fountain-P11.

    .venv/bin/python bench/dense.py [--skip-synthetic] [--skip-fountain]

(1) Synthetic capture (known mesh): for each depth backend available here (cpu; cuda with
    pycolmap-cuda12), accuracy (mean distance to the true surface), completeness (mean distance
    from the observed true surface to the cloud) and F-score at 0.5% of the object size.
(2) ../shared/data/fountain-P11 at the preview and standard presets: depth+fusion wall time per
    view and peak RSS, each preset in its own process (ratios against preview, same run).
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
cfg = load_preset(preset, {"depth.backend": "cpu"})
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
    for preset in ("preview", "standard"):
        run = subprocess.run(
            [sys.executable, "-c", _CHILD, str(FOUNTAIN), str(tmp / "fountain"), preset],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(run.stdout.strip().splitlines()[-1])
        results[preset] = r
        total = r["depth_s"] + r["fusion_s"]
        print(
            f"    {preset:<8} depth maps {r['size']} px: {r['depth_s'] / r['views']:.2f} s/view, fusion "
            f"{r['fusion_s']:.1f} s, depth+fusion {total:.1f} s, {r['points']} points, peak RSS {r['rss_gb']:.2f} GB"
        )
    p, s = results["preview"], results["standard"]
    print(
        f"    ratio standard/preview: time per view {s['depth_s'] / s['views'] / (p['depth_s'] / p['views']):.2f}, "
        f"peak RSS {s['rss_gb'] / p['rss_gb']:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-fountain", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pf-dense-") as tmp:
        if not args.skip_synthetic:
            synthetic_scores(Path(tmp))
        if not args.skip_fountain:
            fountain_runs(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
