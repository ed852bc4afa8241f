"""Splat training on a GPU machine that has torch but not the rest of photoforge's stack, through a bundle.

    # CPU side (full photoforge): run or reuse ingest..fusion, write a bundle
    .venv/bin/python bench/splat_bundle.py pack --capture ../shared/data/monstree --out monstree.tar
    .venv/bin/python bench/splat_bundle.py pack --depth WS/depth/KEY --fusion WS/fusion/KEY --out b.tar
    # GPU side (torch, gsplat, numpy, plyfile, PIL/cv2 and photoforge.splatting only)
    python bench/splat_bundle.py train --bundle monstree.tar --steps 7000 --strategy mcmc --out run-mcmc

Why: the GPU machines have no open3d, pycolmap, pymeshlab or prefect (see ../shared/GPU.md) and take
at most 64 MiB per transfer, wheels included. `pack` writes what the splat stage reads, already
undistorted and downscaled: images (JPEG, ~1 MP), cameras.json (the same layout as the splat
stage's), points.ply (the fused cloud, subsampled) and manifest.json (split, scene scale, sizes).
`train` runs photoforge.splatting.train on it as the stage would, and prints steps/s, seconds,
held-out PSNR/SSIM, Gaussians and peak CUDA memory (allocated and reserved); it writes splats.ply,
result.json and a few held-out render|photo PNGs into --out.

The train side must import nothing beyond the modules named above: keep it that way (the test
runs it with open3d, pycolmap, pymeshlab, prefect, pydantic and skimage blocked).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BUNDLE_FORMAT = 1
TRANSFER_LIMIT_MIB = 64.0  # one transfer to the GPU machine, wheels and data together
DEFAULT_BUDGET_MIB = 48.0  # leaves room for gsplat (6.5 MB) and plyfile next to the bundle
MANIFEST, CAMERAS, POINTS, IMAGES = "manifest.json", "cameras.json", "points.ply", "images"
RESULT_JSON = "result.json"
JPEG_QUALITY = 95  # ~0.3 MB per 1 MP view: 100+ views fit the budget
CPU_MAX_STEPS, CPU_MAX_GAUSSIANS, CPU_MAX_SIZE = 2000, 20_000, 320  # SplatParams.cpu_max_* defaults


# --------------------------------------------------------------------------------------------- pack (CPU)


def upstream(capture: Path, workspace: Path, preset: str, overrides: dict[str, Any]) -> tuple[Path, Path]:
    """ingest -> poses -> depth -> fusion (cached in `workspace`): the depth and fusion artefact dirs."""
    from splat import dense  # bench/splat.py beside this script (the CPU side only: it needs all of photoforge)

    ran = dense(capture, workspace, capture.name, overrides, preset=preset)
    return ran["depth"].dir, ran["fusion"].dir


def longest_side(images_dir: Path, megapixels: float) -> int:
    """The longest side that gives about `megapixels` at the first image's aspect (never upscaled)."""
    from PIL import Image

    first = next(p for p in sorted(images_dir.iterdir()) if p.is_file())
    with Image.open(first) as im:
        w, h = im.size
    scale = min(1.0, math.sqrt(megapixels * 1e6 / (w * h)))
    return max(32, round(max(w, h) * scale))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _points_ply(xyz: np.ndarray, rgb: np.ndarray) -> bytes:
    from plyfile import PlyData, PlyElement

    vertex = np.empty(len(xyz), [(c, "f4") for c in "xyz"] + [(c, "u1") for c in ("red", "green", "blue")])
    for i, c in enumerate("xyz"):
        vertex[c] = xyz[:, i]
    for i, c in enumerate(("red", "green", "blue")):
        vertex[c] = rgb[:, i]
    buffer = io.BytesIO()
    PlyData([PlyElement.describe(vertex, "vertex")]).write(buffer)
    return buffer.getvalue()


def pack(args: argparse.Namespace) -> int:
    import cv2

    from photoforge.geometry.pointcloud import read_ply
    from photoforge.layout import FUSED_PLY, UNDISTORTED
    from photoforge.splatting.data import load_capture, scene_scale

    if args.depth is not None:
        if args.fusion is None:
            print("pack: --depth needs --fusion too", file=sys.stderr)
            return 2
        depth_dir, fusion_dir = args.depth, args.fusion
    elif args.capture is not None:
        overrides = dict(item.split("=", 1) for item in args.set)
        workspace = args.workspace or Path(tempfile.mkdtemp(prefix="pf-bundle-ws-"))
        depth_dir, fusion_dir = upstream(args.capture, workspace, args.preset, overrides)
    else:
        print("pack: give --capture, or --depth and --fusion", file=sys.stderr)
        return 2
    undistorted = depth_dir / UNDISTORTED
    max_size = args.max_size or longest_side(undistorted / "images", args.megapixels)
    capture = load_capture(undistorted / "images", undistorted / "sparse", max_size, args.hold_out_every, "bundle")
    xyz, rgb, _ = read_ply(fusion_dir / FUSED_PLY)
    if len(xyz) > args.max_points:  # the trainer starts from at most half its budget anyway
        keep = np.sort(np.random.default_rng(0).choice(len(xyz), args.max_points, replace=False))
        xyz, rgb = xyz[keep], rgb[keep]
    cameras: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(args.out, "w") as tar:
        for part, views, images in (
            ("train", capture.train, capture.train_images),
            ("test", capture.test, capture.test_images),
        ):
            for view, image in zip(views, images, strict=True):
                name = f"{IMAGES}/{part}-{len(cameras[part]):04d}.jpg"
                ok, encoded = cv2.imencode(
                    ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
                )
                assert ok, name
                _add(tar, name, encoded.tobytes())
                cameras[part].append({**view.to_json(), "name": name, "source": view.name})
        _add(tar, CAMERAS, json.dumps(cameras, indent=1).encode())
        _add(tar, POINTS, _points_ply(np.asarray(xyz, np.float32), np.asarray(rgb, np.uint8)))
        manifest = {
            "format": BUNDLE_FORMAT,
            "depth_dir": str(depth_dir),
            "fusion_dir": str(fusion_dir),
            "max_size": max_size,
            "resolution": [capture.train[0].width, capture.train[0].height],
            "hold_out_every": args.hold_out_every,
            "train_views": len(capture.train),
            "test_views": len(capture.test),
            "points": len(xyz),
            "scene_scale": scene_scale(capture.train + capture.test),
        }
        _add(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
    mib = args.out.stat().st_size / 2**20
    print(
        f"bundle {args.out}: {manifest['train_views']} train + {manifest['test_views']} held-out views at "
        f"{manifest['resolution'][0]}x{manifest['resolution'][1]}, {len(xyz)} points"
    )
    print(f"bundle size {mib:.2f} MiB (budget {args.budget_mib:.0f} MiB, transfer limit {TRANSFER_LIMIT_MIB:.0f} MiB)")
    if mib > args.budget_mib:
        print("pack: the bundle is over budget: lower --megapixels or --max-points", file=sys.stderr)
        return 1
    return 0


# -------------------------------------------------------------------------------------------- train (GPU)


def read_bundle(path: Path, max_size: int) -> dict[str, Any]:
    """Cameras, images (H x W x 3 uint8, shrunk to max_size if smaller than the bundle's), points, manifest."""
    from PIL import Image

    from photoforge.camera.model import Camera, Rigid3

    with tarfile.open(path) as tar:

        def member(name: str) -> bytes:
            handle = tar.extractfile(name)
            if handle is None:
                raise FileNotFoundError(f"{path}: no {name} in the bundle")
            return handle.read()

        manifest = json.loads(member(MANIFEST))
        if manifest.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"{path}: bundle format {manifest.get('format')}, expected {BUNDLE_FORMAT}")
        cameras = json.loads(member(CAMERAS))
        out: dict[str, Any] = {"manifest": manifest}
        for part in ("train", "test"):
            views, images = [], []
            for cam in cameras[part]:
                image = Image.open(io.BytesIO(member(cam["name"]))).convert("RGB")
                k = np.array(cam["k"], np.float64)
                w, h = image.size
                if max_size and max(w, h) > max_size:
                    scale = max_size / max(w, h)
                    image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
                    k = np.diag([image.size[0] / w, image.size[1] / h, 1.0]) @ k
                pose = Rigid3(np.array(cam["rotation"]), np.array(cam["translation"]))
                views.append(Camera(cam["source"], k, pose, *image.size))
                images.append(np.asarray(image, np.uint8))
            out[part], out[f"{part}_images"] = views, images
        out["xyz"], out["rgb"] = _read_points(member(POINTS))
    return out


def _read_points(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    from plyfile import PlyData

    vertex = PlyData.read(io.BytesIO(data))["vertex"]
    xyz = np.stack([vertex[c] for c in "xyz"], axis=1).astype(np.float64)
    rgb = np.stack([vertex[c] for c in ("red", "green", "blue")], axis=1).astype(np.uint8)
    return xyz, rgb


def train_bundle(args: argparse.Namespace) -> int:
    import torch

    from photoforge.splatting.evaluate import save_comparisons, score_views
    from photoforge.splatting.gaussians import init_splats
    from photoforge.splatting.ply import read_splat_ply, write_splat_ply
    from photoforge.splatting.rasterize import cuda_ready
    from photoforge.splatting.train import LearningRates, TrainSettings, TrainView, train

    problem = cuda_ready() if args.device != "cpu" else "--device cpu"
    if problem is not None and args.device == "cuda":
        print(f"train: no CUDA here ({problem}); --device cpu runs a tiny configuration", file=sys.stderr)
        return 2
    backend = "cuda" if problem is None else "cpu"
    device = torch.device(backend)
    if backend == "cpu" and (too_big := _beyond_cpu_limits(args)):
        print(f"train: without CUDA only a tiny run is sensible ({too_big}); see the splat stage's cpu_max_*")
        return 2
    bundle_mib = args.bundle.stat().st_size / 2**20
    data = read_bundle(args.bundle, args.max_size)
    manifest = data["manifest"]
    train_views, train_images = data["train"], data["train_images"]
    eval_views, eval_images = (data["test"], data["test_images"]) if data["test"] else (train_views, train_images)
    print(
        f"bundle {args.bundle.name}: {bundle_mib:.2f} MiB, {len(train_views)} train + {len(data['test'])} held-out "
        f"views at {train_views[0].width}x{train_views[0].height}, {len(data['xyz'])} points; {backend}, "
        f"{args.strategy}, {args.steps} steps"
    )
    init_opacity, init_scale = (0.5, 0.1) if args.strategy == "mcmc" and backend == "cuda" else (0.1, 1.0)
    initial = init_splats(
        data["xyz"], data["rgb"], args.sh_degree, max(1, args.max_gaussians // 2), args.seed, init_opacity, init_scale
    )
    views = []
    for view, image in zip(train_views, train_images, strict=True):
        views.append(TrainView(view, torch.from_numpy(image).to(device).float() / 255.0, device))
    background = tuple(args.background)

    def evaluate(step: int, params: torch.nn.ParameterDict, sh_degree: int) -> dict[str, Any]:
        scores, _ = score_views(params, eval_views, eval_images, sh_degree, backend, background)  # type: ignore[arg-type]
        print(f"  step {step:>6}: held-out PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}", flush=True)
        return scores

    lrs = LearningRates() if args.lr_scale == 1.0 else _scaled_lrs(LearningRates(), args.lr_scale)
    settings = TrainSettings(
        steps=args.steps,
        sh_degree=args.sh_degree,
        strategy=args.strategy,
        max_gaussians=args.max_gaussians,
        lrs=lrs,
        scene_scale=float(manifest["scene_scale"]),
        eval_every=args.eval_every,
        seed=args.seed,
        background=background,  # type: ignore[arg-type]
        fingerprint=f"bundle:{args.bundle.name}",
    )
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = train(initial, views, settings, backend, evaluate)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    reserved = int(torch.cuda.max_memory_reserved()) if backend == "cuda" else 0
    write_splat_ply(args.out / "splats.ply", result.splats)
    reread = read_splat_ply(args.out / "splats.ply")  # the PLY layout round-trips before anyone copies it away
    shown = min(args.comparisons, len(eval_views))
    _, renders = score_views(
        result.splats.to(device).as_dict(),
        eval_views[:shown],  # type: ignore[arg-type]
        eval_images[:shown],
        result.splats.sh_degree,
        backend,
        background,
    )
    pictures = save_comparisons(
        args.out / "comparisons", [v.name for v in eval_views[:shown]], renders, eval_images[:shown]
    )
    last = result.evaluations[-1]
    steps_per_s = result.steps_done / result.train_seconds if result.train_seconds > 0 else 0.0
    report = {
        "device": backend,
        "gpu": torch.cuda.get_device_name() if backend == "cuda" else None,
        "torch": torch.__version__,
        "strategy": result.strategy,
        "strategy_requested": args.strategy,
        "steps": result.steps_done,
        "train_seconds": round(result.train_seconds, 2),
        "wall_seconds": round(wall, 2),
        "steps_per_s": round(steps_per_s, 2),
        "psnr_initial": result.evaluations[0]["psnr"],
        "psnr": last["psnr"],
        "ssim": last["ssim"],
        "gaussians": len(result.splats),
        "gaussians_in_ply": len(reread),
        "peak_memory_allocated_gb": round(result.peak_gpu_bytes / 1024**3, 3),
        "peak_memory_reserved_gb": round(reserved / 1024**3, 3),
        "bundle_mib": round(bundle_mib, 2),
        "resolution": [train_views[0].width, train_views[0].height],
        "evaluations": result.evaluations,
        "notes": result.notes,
        "comparisons": [f"comparisons/{p}" for p in pictures],
    }
    (args.out / RESULT_JSON).write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"{report['strategy']}: {report['steps']} steps in {report['train_seconds']:.1f} s "
        f"({report['steps_per_s']:.1f} steps/s), held-out PSNR {report['psnr']:.2f} dB "
        f"({report['psnr'] - report['psnr_initial']:+.2f} over init), SSIM {report['ssim']:.3f}, "
        f"{report['gaussians']} Gaussians, peak memory allocated {report['peak_memory_allocated_gb']:.2f} GB "
        f"reserved {report['peak_memory_reserved_gb']:.2f} GB"
    )
    print(f"wrote {args.out / 'splats.ply'}, {args.out / RESULT_JSON}, {len(pictures)} comparison PNGs")
    return 0


def _beyond_cpu_limits(args: argparse.Namespace) -> str:
    """The splat stage's CPU limits (cpu_max_steps, cpu_max_gaussians, cpu_max_size defaults), checked up front."""
    too_big = []
    if args.steps > CPU_MAX_STEPS:
        too_big.append(f"--steps {args.steps} > {CPU_MAX_STEPS}")
    if args.max_gaussians > CPU_MAX_GAUSSIANS:
        too_big.append(f"--max-gaussians {args.max_gaussians} > {CPU_MAX_GAUSSIANS}")
    if not args.max_size or args.max_size > CPU_MAX_SIZE:
        too_big.append(f"--max-size {args.max_size or 'unset'} > {CPU_MAX_SIZE}")
    return "; ".join(too_big)


def _scaled_lrs(base: Any, factor: float) -> Any:
    """All learning rates times `factor` except quats and shN: short CPU runs need larger steps."""
    from dataclasses import replace

    return replace(
        base,
        means=base.means * factor,
        scales=base.scales * factor,
        opacities=base.opacities * factor,
        sh0=base.sh0 * factor,
    )


# ---------------------------------------------------------------------------------------------------- CLI


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="CPU side: write a bundle from a capture or from depth/fusion artefacts")
    p.add_argument("--capture", type=Path, help="a capture folder: run (or reuse) ingest..fusion on it")
    p.add_argument("--workspace", type=Path, help="where ingest..fusion cache their artefacts (default: a temp dir)")
    p.add_argument("--preset", default="standard", help="preset for ingest..fusion (default standard)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="preset override, repeatable")
    p.add_argument("--depth", type=Path, help="an existing depth artefact dir (instead of --capture)")
    p.add_argument("--fusion", type=Path, help="an existing fusion artefact dir (with --depth)")
    p.add_argument("--megapixels", type=float, default=1.0, help="image size in the bundle (default 1 MP)")
    p.add_argument("--max-size", type=int, default=0, help="longest image side in px (overrides --megapixels)")
    p.add_argument("--hold-out-every", type=int, default=8, help="every n-th view is held out (the stage's split)")
    p.add_argument("--max-points", type=int, default=500_000, help="subsample the fused cloud to this many")
    p.add_argument("--budget-mib", type=float, default=DEFAULT_BUDGET_MIB, help="fail if the bundle is larger")
    p.add_argument("--out", type=Path, required=True, help="the bundle (.tar)")
    t = sub.add_parser("train", help="GPU side: train splats on a bundle (torch + gsplat + photoforge.splatting)")
    t.add_argument("--bundle", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True, help="folder for splats.ply, result.json, comparisons/")
    t.add_argument("--steps", type=int, default=7000)
    t.add_argument("--strategy", choices=("default", "mcmc"), default="default")
    t.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    t.add_argument("--max-size", type=int, default=0, help="shrink the bundle's images to this longest side")
    t.add_argument("--max-gaussians", type=int, default=1_000_000, help="Gaussian budget (mcmc's cap)")
    t.add_argument("--sh-degree", type=int, default=3)
    t.add_argument("--eval-every", type=int, default=7000, help="score held-out views every n steps (0: ends)")
    t.add_argument("--lr-scale", type=float, default=1.0, help="scale the learning rates (short CPU runs)")
    t.add_argument("--background", type=float, nargs=3, default=(0.0, 0.0, 0.0), metavar=("R", "G", "B"))
    t.add_argument("--comparisons", type=int, default=4, help="held-out render|photo PNGs to write")
    t.add_argument("--seed", type=int, default=0)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return pack(args) if args.command == "pack" else train_bundle(args)


if __name__ == "__main__":
    sys.exit(main())
