"""Benchmark the splat stage: training speed, GPU memory and held-out quality; the mesh from splats.

    .venv/bin/python bench/splat.py [--capture ../shared/data/monstree] [--steps 30000] [--skip-capture]
    .venv/bin/python bench/splat.py --cpu-tiny     # no GPU: a tiny configuration, to check the script

(1) A real capture (default ../shared/data/monstree) through ingest -> poses -> depth -> fusion
    (the standard preset, library stages called directly), then 3DGS with each densification
    strategy: seconds per 1k steps, steps/s, peak GPU memory, Gaussians, held-out PSNR/SSIM at
    7k and 30k steps (checkpoints every 7k); mcmc printed as ratios to default (the baseline).
(2) The synthetic capture (known mesh): the TSDF mesh from the splats next to the classical
    mesh (Poisson on the fused cloud), each made by the mesh stage's own surface step and then
    the same clean-up (meshing.cleanup, the preset's face budget): accuracy, completeness and
    F-score at 1% of the object size, faces, and seconds per step (surface, clean-up), as ratios
    to the classical mesh's.

Without CUDA it refuses, unless --cpu-tiny: then (1) runs on the synthetic capture at 160 px for
200 steps (scores at 100 and 200) and mcmc falls back to default, as the stage does on CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MONSTREE = ROOT.parent / "shared" / "data" / "monstree"
TINY: dict[str, Any] = {
    "device": "cpu",
    "steps": 200,
    "max_size": 160,
    "max_gaussians": 10_000,
    "sh_degree": 1,
    "background": (0.16, 0.16, 0.16),
    "lr": {"means": 8e-4, "scales": 0.02, "opacities": 0.1, "sh0": 0.01},
    "eval_every": 100,
    "checkpoint_every": 100,
}


def dense(
    capture: Path, workspace: Path, name: str, overrides: dict[str, Any], preset: str = "standard"
) -> dict[str, Any]:
    """ingest -> poses -> depth -> fusion (cached in `workspace`): the splat stage's inputs."""
    from photoforge.presets import load_preset
    from photoforge.stages import depth, fusion, ingest, poses
    from photoforge.store import ArtefactStore

    cfg = load_preset(preset, overrides)
    store = ArtefactStore(workspace, name)
    t0 = time.perf_counter()
    frames = ingest.STAGE.execute(store, ingest.IngestInputs(capture=capture), cfg.ingest)
    sparse = poses.STAGE.execute(store, poses.PosesInputs(ingest=frames), cfg.poses)
    maps = depth.STAGE.execute(store, depth.DepthInputs(ingest=frames, poses=sparse), cfg.depth)
    cloud = fusion.STAGE.execute(store, fusion.FusionInputs(depth=maps), cfg.fusion)
    print(f"    upstream (ingest..fusion) {time.perf_counter() - t0:.0f} s: {cloud.metrics['summary']}")
    return {"store": store, "cfg": cfg, "depth": maps, "fusion": cloud}


def splat_params(tiny: bool, **update: Any):  # type: ignore[no-untyped-def]
    from photoforge.stages.splat import SplatParams

    base = TINY if tiny else {"device": "cuda", "eval_every": 7000, "checkpoint_every": 7000, "time_limit_s": 0}
    return SplatParams(**{**base, **update})


def capture_runs(capture: Path, workspace: Path, tiny: bool, steps: int) -> None:
    from photoforge.stages import splat

    print(f"(1) {capture.name}: 3DGS, {'CPU tiny configuration' if tiny else f'{steps} steps on CUDA'}")
    overrides = {"ingest.max_size": 480, "depth.max_size": 480, "depth.backend": "cpu"} if tiny else {}
    up = dense(capture, workspace, capture.name, overrides)
    results = {}
    for strategy in ("default", "mcmc"):
        params = splat_params(tiny, strategy=strategy) if tiny else splat_params(tiny, strategy=strategy, steps=steps)
        result = splat.STAGE.execute(up["store"], splat.SplatInputs(depth=up["depth"], fusion=up["fusion"]), params)
        m = results[strategy] = result.metrics
        scores = {e["step"]: e for e in m["evaluations"]}
        marks = [100, 200] if tiny else [7000, steps]
        quality = "  ".join(
            f"@{s}: PSNR {scores[s]['psnr']:.2f} SSIM {scores[s]['ssim']:.3f}" for s in marks if s in scores
        )
        print(
            f"    {strategy:<7} ran {m['strategy']:<7} {m['seconds_per_1k_steps']:7.1f} s/1k steps  "
            f"{m['steps_per_s']:6.1f} steps/s  peak GPU {m['peak_gpu_memory_gb']:.2f} GB  {m['gaussians']} Gaussians"
        )
        print(f"            held-out: init PSNR {m['psnr_initial']:.2f}  {quality}  {'; '.join(m['notes'])}")
    d, c = results["default"], results["mcmc"]
    memory = c["peak_gpu_memory_gb"] / d["peak_gpu_memory_gb"] if d["peak_gpu_memory_gb"] else float("nan")
    print(
        f"    ratio mcmc/default: time per step {c['seconds_per_1k_steps'] / d['seconds_per_1k_steps']:.2f}, "
        f"peak GPU memory {memory:.2f}, Gaussians {c['gaussians'] / d['gaussians']:.2f}, "
        f"final PSNR {c['psnr'] - d['psnr']:+.2f} dB"
    )


def surfaces_like_for_like(
    fusion_dir: Path, splat_dir: Path, mesh_params: Any, device: str
) -> dict[str, tuple[np.ndarray, np.ndarray, float, float, int]]:
    """Both surfaces in the world frame through the mesh stage's own steps: surface, then the same clean-up.

    classical: Poisson on the fused cloud (the mesh stage's default, meshing.poisson_surface);
    splats: TSDF of the splats' rendered depth (splat_surface, as mesh.surface=splats). Each goes
    through meshing.cleanup with the preset's CleanupSettings (same face budget), so the scores
    compare surfaces, not clean-up or decimation. Returns name -> (vertices, faces, surface s,
    clean-up s, faces before clean-up).
    """
    from photoforge.geometry import meshing
    from photoforge.geometry.pointcloud import read_ply, to_open3d
    from photoforge.layout import FUSED_PLY
    from photoforge.splatting import splat_surface

    settings = meshing.CleanupSettings(
        mesh_params.min_component_fraction,
        mesh_params.max_hole_edges,
        mesh_params.watertight,
        mesh_params.target_faces,
    )
    builders = {
        "classical": lambda: meshing.poisson_surface(
            to_open3d(*read_ply(fusion_dir / FUSED_PLY)), mesh_params.poisson_depth, mesh_params.density_trim
        ),
        "splats": lambda: splat_surface(splat_dir, voxel_px=mesh_params.tsdf_voxel_px, device=device),
    }
    rows = {}
    for name, build in builders.items():
        t0 = time.perf_counter()
        raw = build()
        t1 = time.perf_counter()
        vertices, faces = meshing.cleanup(np.asarray(raw.vertices), np.asarray(raw.triangles), settings)
        rows[name] = (vertices, faces, t1 - t0, time.perf_counter() - t1, len(raw.triangles))
    return rows


def mesh_accuracy(workspace: Path, tiny: bool, steps: int) -> None:
    import open3d as o3d

    from photoforge.qa.pose_errors import read_strecha_dir
    from photoforge.qa.surface_scores import observed_surface_samples, similarity_to_truth, surface_scores
    from photoforge.splatting.data import CAMERAS_JSON, read_cameras
    from photoforge.stages import splat
    from photoforge.synthetic import make_capture

    synthetic = make_capture(workspace / "synthetic-capture", views=20, width=480, height=360, focal=465.0)
    print("(2) synthetic capture (20 views 480x360): mesh from splats vs the classical mesh, threshold 1%")
    up = dense(
        synthetic.capture,
        workspace / "ws",
        "synthetic",
        {"ingest.max_size": 480, "depth.max_size": 480, "depth.backend": "cpu"},
    )
    params = splat_params(tiny) if tiny else splat_params(tiny, steps=min(steps, 7000), max_size=480)
    splats = splat.STAGE.execute(up["store"], splat.SplatInputs(depth=up["depth"], fusion=up["fusion"]), params)
    mesh_params = up["cfg"].mesh
    rows = surfaces_like_for_like(up["fusion"].dir, splats.dir, mesh_params, params.device)

    cameras = read_cameras(splats.dir / CAMERAS_JSON)
    views = cameras["train"] + cameras["test"]
    truth = read_strecha_dir(synthetic.cameras)
    true_centres = np.array([truth[Path(v.name).name.removesuffix(".jpg")].centre for v in views])
    to_truth = similarity_to_truth(np.array([v.centre for v in views]), true_centres)
    true_mesh = o3d.io.read_triangle_mesh(str(synthetic.mesh))
    samples = observed_surface_samples(true_mesh, true_centres, count=100_000)
    threshold = 0.01 * synthetic.object_size
    size = synthetic.object_size
    print(
        f"    both: the mesh stage's surface step, then meshing.cleanup with the preset's settings "
        f"(face budget {mesh_params.target_faces}), scored in the world frame"
    )
    scores = {}
    for name, (vertices, faces, surface_s, cleanup_s, raw_faces) in rows.items():
        aligned = vertices @ to_truth[:3, :3].T + to_truth[:3, 3]
        s = scores[name] = surface_scores(aligned, true_mesh, samples, threshold)
        print(
            f"    {name:<9} {raw_faces:>7} -> {len(faces):>7} faces  accuracy {s.accuracy_mean / size:.3%}  "
            f"completeness {s.completeness_mean / size:.3%}  F-score {s.fscore:.3f}  "
            f"(surface {surface_s:.1f} s + clean-up {cleanup_s:.1f} s)"
        )
    base, ours = scores["classical"], scores["splats"]
    b, o = rows["classical"], rows["splats"]
    print(
        f"    ratio splats/classical: accuracy {ours.accuracy_mean / base.accuracy_mean:.2f}, completeness "
        f"{ours.completeness_mean / base.completeness_mean:.2f}, F-score {ours.fscore / base.fscore:.2f}, "
        f"faces {len(o[1]) / max(1, len(b[1])):.2f}; time: surface {o[2] / b[2]:.2f}, clean-up {o[3] / b[3]:.2f}, "
        f"both {(o[2] + o[3]) / (b[2] + b[3]):.2f} (splats trained {splats.metrics['steps']} steps at "
        f"{splats.metrics['resolution'][0]} px, {splats.metrics['train_seconds']:.0f} s, not counted)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", type=Path, default=MONSTREE, help="a capture folder (photos)")
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--cpu-tiny", action="store_true", help="no GPU: run a tiny CPU configuration")
    parser.add_argument("--skip-capture", action="store_true")
    parser.add_argument("--skip-mesh", action="store_true")
    args = parser.parse_args()

    from photoforge.splatting.rasterize import cuda_ready

    problem = cuda_ready()
    if problem is not None and not args.cpu_tiny:
        print(f"bench/splat.py needs a CUDA GPU ({problem}); --cpu-tiny runs a tiny CPU configuration instead")
        return 2
    tiny = problem is not None or args.cpu_tiny
    with tempfile.TemporaryDirectory(prefix="pf-splat-") as tmp:
        work = Path(tmp)
        if not args.skip_capture:
            if tiny:
                from photoforge.synthetic import make_capture

                capture = make_capture(work / "tiny-capture", views=20, width=480, height=360, focal=465.0).capture
                capture_runs(capture, work / "ws", tiny, args.steps)
            elif not args.capture.is_dir():
                print(f"(1) skipped: {args.capture} not found")
            else:
                capture_runs(args.capture, work / "ws", tiny, args.steps)
        if not args.skip_mesh:
            mesh_accuracy(work, tiny, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
