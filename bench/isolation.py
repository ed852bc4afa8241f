"""Benchmark the object alone: every synthetic shape on a table (and the bust on a wall) through the mesh stage.

    .venv/bin/python bench/isolation.py [--views 24] [--width 640] [--height 480] [--quick] [--shapes vase,duck]

Per shape: the share of the asset's surface off the true object (farther than 3% of its height),
the up error, where the true support lands (share of the height from y = 0, or z = 0 for a wall),
the size error with 5 cm markers, and the asset stage's decision. Isolation was tuned on the vase and
the box; the other shapes are reported apart, as unseen. The wall bust runs with asset.kind=object
(auto calls a front-half capture a scene, by design).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TUNED = ("vase", "box")


def main() -> None:
    from photoforge.synthetic import SHAPES, WALL_SHAPES, make_object_capture
    from photoforge.synthetic.object_runs import QUICK, run_and_score

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=24)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--quick", action="store_true", help="the tests' quick depth and mesh settings")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-isolation-") as tmp:
        for shape in args.shapes.split(","):
            layout = "wall" if shape in WALL_SHAPES else "table"
            root = Path(tmp) / shape
            make_object_capture(
                root, shape=shape, layout=layout, views=args.views, width=args.width, height=args.height
            )
            overrides = (QUICK if args.quick else {}) | {"scale.marker_size": 0.05}
            if layout == "wall":
                overrides |= {"asset.kind": "object"}
            start = time.perf_counter()
            run = run_and_score(root, root / "ws", overrides)
            asset = run.results["asset"].metrics
            rows.append((shape, layout, run.scores, asset, time.perf_counter() - start))
            print(f"{shape}: {run.scores} ({asset['summary']})", flush=True)
    print(f"\n{args.views} views at {args.width}x{args.height}{' (quick settings)' if args.quick else ''}\n")
    print(
        "| shape | layout | tuned on | off object | up error | support offset | size error | kind (auto evidence) | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for shape, layout, s, asset, seconds in sorted(rows, key=lambda r: (r[0] not in TUNED, r[0])):
        evidence = asset["kind_evidence"]
        print(
            f"| {shape} | {layout} | {'yes' if shape in TUNED else 'no'} | {s.off_object_share:.2%} | "
            f"{s.up_error_deg:.2f}° | {s.base_offset_share:.2%} | {s.size_error_percent:.2f}% | "
            f"{asset['kind']} ({asset['kind_requested']}; surround {evidence['surround_deg']:.0f}°) | {seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
