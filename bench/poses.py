"""Benchmark ingest+poses: accuracy against ground truth and time against bare pycolmap.

    .venv/bin/python bench/poses.py [--data ../shared/data/fountain-P11] [--preset standard] [--all]

Prints (a) registered/total, (b) pairwise relative-rotation error and camera-centre error
after a similarity alignment against gt_cameras, (c) the wall-time ratio of photoforge's
ingest+poses (through the Prefect flow, server already up) to a bare pycolmap script doing
the same extraction, matching and mapping on the same photos, in the same run.
--all also reports registration on sceaux-castle and monstree.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pycolmap

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def bare_pycolmap(capture: Path, work: Path, max_size: int, max_features: int) -> pycolmap.Reconstruction:
    """What a user would write by hand with pycolmap: K.txt fixed, exhaustive, incremental."""
    database = work / "database.db"
    images = capture / "images"
    reader = pycolmap.ImageReaderOptions()
    k_file = capture / "K.txt"
    fixed = k_file.is_file()
    if fixed:
        k = np.loadtxt(k_file)
        reader.camera_model = "PINHOLE"
        reader.camera_params = f"{k[0, 0]},{k[1, 1]},{k[0, 2]},{k[1, 2]}"
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = max_size
    extraction.sift.max_num_features = max_features
    pycolmap.extract_features(
        database,
        images,
        camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader,
        extraction_options=extraction,
        device=pycolmap.Device.cpu,
    )
    pycolmap.match_exhaustive(database, device=pycolmap.Device.cpu)
    options = pycolmap.IncrementalPipelineOptions()
    if fixed:
        options.ba_refine_focal_length = False
        options.ba_refine_principal_point = False
        options.ba_refine_extra_params = False
        options.mapper.abs_pose_refine_focal_length = False
        options.mapper.abs_pose_refine_extra_params = False
    (work / "sparse").mkdir()
    models = pycolmap.incremental_mapping(database, images, work / "sparse", options)
    return max(models.values(), key=lambda m: m.num_reg_images())


def photoforge_run(capture: Path, workspace: Path, preset: str) -> tuple[dict, pycolmap.Reconstruction]:
    from flows.reconstruct import reconstruct
    from photoforge.layout import SPARSE_DIR

    summary = reconstruct(str(capture), preset, {}, str(workspace), until="poses")
    poses = next(row for row in summary["stages"] if row["stage"] == "poses")
    return poses, pycolmap.Reconstruction(str(Path(poses["path"]) / SPARSE_DIR))


def _accuracy_line(label: str, model: pycolmap.Reconstruction, capture: Path) -> str:
    from photoforge.qa.pose_errors import pose_errors, read_strecha_dir

    gt_dir = capture / "gt_cameras"
    line = f"{label:<11} registered {model.num_reg_images()}"
    if gt_dir.is_dir():
        e = pose_errors(model, read_strecha_dir(gt_dir))
        line += (
            f"  rotation error median {e.rotation_median_deg:.3f} deg, max {e.rotation_max_deg:.3f} deg"
            f"  centre error median {e.centre_median * 1000:.1f} mm, max {e.centre_max * 1000:.1f} mm"
        )
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "fountain-P11")
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--all", action="store_true", help="also check registration on sceaux-castle and monstree")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"bench/poses: {args.data} not found (needs ../shared/data)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="pf-bench-") as tmp:
        tmp_path = Path(tmp)
        os.environ.setdefault("PREFECT_HOME", str(tmp_path / "prefect"))
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        from prefect import flow

        from photoforge.presets import load_preset

        cfg = load_preset(args.preset)
        pycolmap.logging.minloglevel = 2

        @flow
        def warm_up() -> None:
            """Start the ephemeral API before timing: its start-up is a one-off, not per run."""

        t0 = time.perf_counter()
        warm_up()
        server_start = time.perf_counter() - t0

        t0 = time.perf_counter()
        bare_dir = tmp_path / "bare"
        bare_dir.mkdir()
        bare = bare_pycolmap(args.data, bare_dir, cfg.ingest.max_size, cfg.poses.max_features)
        bare_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        poses, ours = photoforge_run(args.data, tmp_path / "ws", args.preset)
        ours_s = time.perf_counter() - t0

        total = len([p for p in (args.data / "images").iterdir() if p.is_file()])
        print(f"capture {args.data.name}, preset {args.preset} (max_size {cfg.ingest.max_size})")
        print(
            f"(a) registered/total: photoforge {poses['metrics']['registered']}/{poses['metrics']['total']}, "
            f"bare pycolmap {bare.num_reg_images()}/{total}"
        )
        print("(b) " + _accuracy_line("photoforge", ours, args.data))
        print("    " + _accuracy_line("bare", bare, args.data))
        print(
            f"(c) wall time: photoforge ingest+poses {ours_s:.1f} s, bare pycolmap {bare_s:.1f} s, "
            f"ratio {ours_s / bare_s:.3f}  (Prefect ephemeral API start-up, excluded: {server_start:.1f} s)"
        )

        if args.all:
            for name in ("sceaux-castle", "monstree"):
                capture = SHARED / name
                t0 = time.perf_counter()
                row, _ = photoforge_run(capture, tmp_path / "ws", args.preset)
                m = row["metrics"]
                print(
                    f"    {name}: registered {m['registered']}/{m['total']}, "
                    f"reprojection {m['mean_reprojection_error_px']:.2f} px, {time.perf_counter() - t0:.0f} s"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
