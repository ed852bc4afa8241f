"""nerfstudio's transforms.json for posed pinhole images, in the asset frame turned +Z up.

The schema is what `ns-process-data` writes (nerfstudio/process_data/colmap_utils.py::colmap_to_json)
and nerfstudio/data/dataparsers/nerfstudio_dataparser.py reads:

- top level: `camera_model` "OPENCV" with `k1 k2 p1 p2` all 0 (the images are COLMAP-undistorted
  pinhole ones); `fl_x fl_y cx cy w h` here when every frame shares them, else in each frame;
- per frame: `file_path` relative to the JSON ("images/NAME") and `transform_matrix`, the 4x4
  camera-to-world in the OpenGL/Blender camera convention (x right, y up, looking along -z): COLMAP's
  (OpenCV: y down, z forward) camera with its y and z columns negated, as colmap_to_json does. Both
  put pixel i's centre at i + 0.5, so COLMAP's cx, cy carry over unchanged;
- `ply_file_path`: the sparse points in the same frame (splatfacto starts its Gaussians from them).

The world: nerfstudio's is +Z up (docs/quickstart/data_conventions.md). The poses are in the asset
frame of asset.glb (metres when the run found a scale), its glTF +Y up turned +Z up the way Blender's
glTF importer turns it, (x, y, z) -> (x, -z, y): the cameras line up with asset.glb imported into
Blender. `applied_transform` is that rotation: nerfstudio defines it as the transformation "to saved
coordinates from original data coordinates" and undoes it when it maps results back to the original
frame (DataparserOutputs.transform_poses_to_original_space, `ns-export pointcloud --save-world-frame`),
which is then asset.glb's own glTF frame. It is not the SfM-to-asset similarity: with that, those
exports would land in the SfM frame, away from asset.glb; the similarity is recorded under
"photoforge" instead. `orientation_override: "none"` keeps nerfstudio from re-levelling a frame that
is upright already (its default `up` method tilts a scene captured from one side).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from plyfile import PlyData, PlyElement

from photoforge.camera.model import Camera

# glTF's +Y up to +Z up, as Blender imports glTF: (x, y, z) -> (x, -z, y). A rotation (det +1).
Z_UP_FROM_Y_UP = np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
# The camera axes: OpenCV/COLMAP (x right, y down, z forward) to OpenGL/Blender (x right, y up, z back).
OPENGL_FROM_OPENCV = np.diag([1.0, -1.0, -1.0])
POINTS_PLY = "sparse_pc.ply"  # ns-process-data's name
INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h")


def camera_to_world_opengl(camera: Camera) -> np.ndarray:
    """nerfstudio's `transform_matrix`: the camera's 4x4 camera-to-world, camera axes OpenGL's."""
    matrix = camera.world_from_cam.matrix()
    matrix[:3, :3] = matrix[:3, :3] @ OPENGL_FROM_OPENCV  # columns y and z negated
    return matrix


def intrinsics(camera: Camera) -> dict[str, float | int]:
    """fl_x, fl_y, cx, cy (COLMAP's pixel convention, which nerfstudio shares), w, h."""
    k = camera.k
    return {
        "fl_x": float(k[0, 0]),
        "fl_y": float(k[1, 1]),
        "cx": float(k[0, 2]),
        "cy": float(k[1, 2]),
        "w": int(camera.width),
        "h": int(camera.height),
    }


def transforms(
    cameras: Sequence[Camera],
    *,
    applied_transform: np.ndarray,
    ply_file: str | None = POINTS_PLY,
    photoforge: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """transforms.json's content for `cameras` posed in the saved frame, each named by its file path
    relative to the JSON ("images/NAME"); `applied_transform` (4x4 or 3x4) maps the original frame to it."""
    if not cameras:
        raise ValueError("transforms.json needs at least one camera")
    per_frame = [intrinsics(c) for c in cameras]
    shared = all(p == per_frame[0] for p in per_frame)
    out: dict[str, Any] = {"camera_model": "OPENCV"}
    if shared:
        out.update(per_frame[0])
    out.update({"k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0})
    frames = []
    for camera, values in sorted(zip(cameras, per_frame, strict=True), key=lambda item: item[0].name):
        frame: dict[str, Any] = {"file_path": camera.name, "transform_matrix": camera_to_world_opengl(camera).tolist()}
        if not shared:
            frame.update(values)
        frames.append(frame)
    out["frames"] = frames
    out["applied_transform"] = np.asarray(applied_transform, float)[:3, :4].tolist()
    out["orientation_override"] = "none"
    if ply_file is not None:
        out["ply_file_path"] = ply_file
    if photoforge is not None:
        out["photoforge"] = photoforge
    return out


def write_points_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """Binary PLY of float x y z and uchar red green blue: what ns-process-data's sparse_pc.ply holds
    (nerfstudio reads it with open3d)."""
    vertex = np.empty(
        len(xyz), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    )
    for i, axis in enumerate("xyz"):
        vertex[axis] = xyz[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertex[channel] = rgb[:, i]
    PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(str(path))
