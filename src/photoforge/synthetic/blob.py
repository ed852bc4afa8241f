"""The blob capture: a textured closed object floating in grey, rendered from known cameras.

Tests and benchmarks measure real accuracy on it: the ground-truth mesh and cameras are
written next to the photos. Rendering is photoforge's ray casting (photoforge.render) with
Lambertian shading under a fixed world light, so the object looks the same from every view
(as photo-consistency assumes), and a procedural high-frequency albedo gives SIFT and stereo
something to match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d

from photoforge.camera.model import Camera, Rigid3, look_at
from photoforge.render.raycast import MeshScene
from photoforge.synthetic.cameras import write_strecha_camera
from photoforge.synthetic.noise import ValueNoise3D

__all__ = [
    "SyntheticCapture",
    "ValueNoise3D",
    "blob_mesh",
    "look_at",
    "make_capture",
    "render",
    "ring_cameras",
    "write_strecha_camera",
]


@dataclass(frozen=True)
class SyntheticCapture:
    capture: Path  # photos + K.txt: what a user would hand photoforge
    mesh: Path  # ground-truth surface (PLY)
    cameras: Path  # ground-truth cameras (Strecha .camera files)
    object_size: float  # bounding-box diagonal of the object


def blob_mesh(resolution: int = 160) -> o3d.geometry.TriangleMesh:
    """A unit sphere with smooth bumps: every part visible from a ring of views above and below."""
    mesh = o3d.geometry.TriangleMesh.create_sphere(radius=1.0, resolution=resolution)
    v = np.asarray(mesh.vertices)
    theta = np.arctan2(v[:, 1], v[:, 0])
    phi = np.arccos(np.clip(v[:, 2], -1, 1))
    radius = 1.0 + 0.15 * np.sin(3 * theta) * np.sin(2 * phi) + 0.08 * np.cos(5 * phi)
    mesh.vertices = o3d.utility.Vector3dVector(v * radius[:, None])
    mesh.compute_vertex_normals()
    return mesh


def ring_cameras(count: int, distance: float, k: np.ndarray, width: int, height: int) -> list[Camera]:
    """Cameras `view_000.png`... on three interleaved rings, above, level and below, looking at the origin."""
    cameras = []
    up = np.array([0.0, 0.0, 1.0])
    for i in range(count):
        elevation = math.radians((40, 5, -30)[i % 3])
        azimuth = 2 * math.pi * i / count
        centre = distance * np.array(
            [math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation), math.sin(elevation)]
        )
        world_from_cam = Rigid3(look_at(centre, np.zeros(3), up).T, centre)
        cameras.append(Camera(f"view_{i:03d}.png", k, world_from_cam.inverse(), width, height))
    return cameras


def render(scene: MeshScene, albedo: ValueNoise3D, camera: Camera, supersample: int = 2) -> np.ndarray:
    """An RGB photo of the object: Lambertian under a fixed light plus ambient, grey background."""
    hits = scene.cast(camera, supersample)
    image = np.full((*hits.mask.shape, 3), 0.16, np.float32)
    light = np.array([0.4, -0.5, 0.75]) / np.linalg.norm([0.4, -0.5, 0.75])
    shade = 0.45 + 0.55 * np.clip(np.abs(hits.normal[hits.mask] @ light), 0, 1)
    image[hits.mask] = albedo(hits.points()) * shade[:, None]
    image = cv2.resize(image, (camera.width, camera.height), interpolation=cv2.INTER_AREA)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_capture(
    root: Path, views: int = 20, width: int = 640, height: int = 480, focal: float = 620.0, seed: int = 0
) -> SyntheticCapture:
    """Render the blob from `views` known cameras into root/capture (PNG + K.txt) and root/truth."""
    capture = root / "capture"
    truth = root / "truth"
    (capture / "images").mkdir(parents=True, exist_ok=True)
    (truth / "gt_cameras").mkdir(parents=True, exist_ok=True)
    mesh = blob_mesh()
    o3d.io.write_triangle_mesh(truth / "mesh.ply", mesh)
    scene = MeshScene(np.asarray(mesh.vertices), np.asarray(mesh.triangles))
    albedo = ValueNoise3D(seed)
    k = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    np.savetxt(capture / "K.txt", k, fmt="%.6f")
    for camera in ring_cameras(views, 3.6, k, width, height):
        rgb = render(scene, albedo, camera)
        cv2.imwrite(str(capture / "images" / camera.name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        write_strecha_camera(truth / "gt_cameras" / f"{camera.name}.camera", camera)
    bbox = mesh.get_axis_aligned_bounding_box()
    size = float(np.linalg.norm(bbox.get_max_bound() - bbox.get_min_bound()))
    return SyntheticCapture(capture, truth / "mesh.ply", truth / "gt_cameras", size)
