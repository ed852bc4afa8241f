"""Benchmark the turntable renderer: frames per second at 1280x720 on the monstree asset.

    .venv/bin/python bench/turntable.py [--capture ../shared/data/monstree] [--workspace DIR] [--frames 120]

Reconstructs the capture through the flow up to the export (cached after the first run; pass
--workspace to keep the cache between runs), then renders the orbit three ways in the same run:
(a) bare open3d ray casting of the same rays (the floor), (b) photoforge's frames (ray casting,
texture sampling, shading), (c) (b) plus H.264 encoding, i.e. the stage. Prints fps and ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import open3d as o3d

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", type=Path, default=ROOT.parent / "shared" / "data" / "monstree")
    parser.add_argument("--workspace", type=Path)
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pf-turntable-") as tmp:
        workspace = args.workspace or Path(tmp) / "ws"
        os.environ.setdefault("PREFECT_HOME", str(workspace / ".prefect"))
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        from flows.reconstruct import reconstruct
        from photoforge.io.images import read_rgb
        from photoforge.io.video_encode import write_mp4
        from photoforge.layout import ALBEDO_PNG, UVMesh
        from photoforge.presets import load_preset
        from photoforge.render.turntable import Orbit, orbit_cameras, render_frames

        summary = reconstruct(str(args.capture), "standard", {}, str(workspace), until="export")
        rows = {r["stage"]: r for r in summary["stages"]}
        mesh = UVMesh.read(Path(rows["uv"]["path"]))
        vertices, faces, uvs = mesh.vertices, mesh.faces, mesh.uvs
        texture = read_rgb(Path(rows["bake"]["path"]) / ALBEDO_PNG, "bench")
        p = load_preset("standard").turntable
        orbit = Orbit(args.frames, 1280, 720, p.elevation_deg, p.fov_deg, tuple(p.background), tuple(p.key_light),
                      p.ambient)  # fmt: skip
        print(f"{args.capture.name}: {len(faces)} faces, texture {texture.shape[1]} px, {args.frames} frames 1280x720")

        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
        t0 = time.perf_counter()
        for camera in orbit_cameras(vertices, orbit):
            rays = o3d.t.geometry.RaycastingScene.create_rays_pinhole(
                o3d.core.Tensor(camera.k), o3d.core.Tensor(camera.cam_from_world.matrix()), 1280, 720
            )
            scene.cast_rays(rays)
        bare = time.perf_counter() - t0

        t0 = time.perf_counter()
        for _ in render_frames(vertices, faces, uvs[faces], texture, orbit):
            pass
        frames_only = time.perf_counter() - t0

        t0 = time.perf_counter()
        write_mp4(Path(tmp) / "t.mp4", render_frames(vertices, faces, uvs[faces], texture, orbit), 30, 1280, 720)
        stage = time.perf_counter() - t0

        n = args.frames
        print(f"(a) bare ray casting      {n / bare:6.2f} fps  ({bare:.1f} s)")
        ratio = frames_only / bare
        print(f"(b) photoforge frames     {n / frames_only:6.2f} fps  ({frames_only:.1f} s)  ratio to (a) {ratio:.2f}")
        print(f"(c) frames + H.264 (stage){n / stage:6.2f} fps  ({stage:.1f} s)  ratio to (a) {stage / bare:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
