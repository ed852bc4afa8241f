"""Fuse depth maps into one point cloud with multi-view geometric consistency.

A pixel's 3D point is kept when at least N other views see the same surface there: its depth
projected into view j agrees with view j's depth map within a relative tolerance, and view j's
point projects back within a few pixels (COLMAP's fusion test); or one fewer does and the pixel's
own match is confident (surfaces that few views see well, such as an object's underside).
Kept points are averaged with the agreeing views' points, which also averages their noise away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from photoforge.camera.model import Camera


@dataclass(frozen=True)
class ConsistencySettings:
    min_views: int = 2  # other views that must agree
    single_view_confidence: float = 2.0  # one agreeing view suffices from this confidence up (2: never)
    depth_tolerance: float = 0.01  # relative depth difference
    reprojection_px: float = 2.0  # forward-backward reprojection error (px)
    min_confidence: float = -1.0  # drop pixels below this confidence first


@dataclass
class DepthView:
    camera: Camera
    depth: torch.Tensor  # H x W (0 = unknown)
    confidence: torch.Tensor
    normal: np.ndarray  # H x W x 3, camera frame
    color: np.ndarray  # H x W x 3 uint8


@dataclass
class FusedPoints:
    xyz: np.ndarray
    rgb: np.ndarray
    normals: np.ndarray
    per_view: list[int]


def _backproject(view: Camera, depth: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """World points (N x 3) of pixels (rows, cols) at their depths."""
    k = view.k
    z = depth[rows, cols].double()
    x = ((cols.double() + 0.5) - k[0, 2]) / k[0, 0] * z
    y = ((rows.double() + 0.5) - k[1, 2]) / k[1, 1] * z
    cam = torch.stack([x, y, z], dim=1)
    rotation = torch.as_tensor(view.cam_from_world.rotation)
    translation = torch.as_tensor(view.cam_from_world.translation)
    return (cam - translation) @ rotation  # R^T (X_cam - t)


def _project(view: Camera, world: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pose = view.cam_from_world
    cam = world @ torch.as_tensor(pose.rotation).T + torch.as_tensor(pose.translation)
    z = cam[:, 2]
    z_safe = torch.where(z > 1e-12, z, torch.full_like(z, 1e-12))
    u = view.k[0, 0] * cam[:, 0] / z_safe + view.k[0, 2]
    v = view.k[1, 1] * cam[:, 1] / z_safe + view.k[1, 2]
    return u, v, z


def fuse(
    views: list[DepthView],
    partners: dict[int, list[int]],
    settings: ConsistencySettings,
    progress: Callable[[int, int, str], None] = lambda done, total, message="": None,
) -> FusedPoints:
    """Consistent, averaged points of every view, with colours and world-frame normals."""
    xyz_parts, rgb_parts, normal_parts, counts = [], [], [], []
    for i, ref in enumerate(views):
        valid = (ref.depth > 0) & (ref.confidence >= settings.min_confidence)
        rows, cols = torch.nonzero(valid, as_tuple=True)
        if len(rows) == 0:
            counts.append(0)
            continue
        world = _backproject(ref.camera, ref.depth, rows, cols)
        agree = torch.zeros(len(rows), dtype=torch.int32)
        position_sum = world.clone()
        for j in partners.get(i, []):
            other = views[j]
            u, v, z = _project(other.camera, world)
            h, w = other.depth.shape
            col_j = torch.floor(u).long()
            row_j = torch.floor(v).long()
            inside = (z > 0) & (col_j >= 0) & (col_j < w) & (row_j >= 0) & (row_j < h)
            idx = torch.nonzero(inside, as_tuple=True)[0]
            d_j = other.depth[row_j[idx], col_j[idx]].double()
            close = (d_j > 0) & ((z[idx] - d_j).abs() <= settings.depth_tolerance * d_j)
            idx, d_j = idx[close], d_j[close]
            # Forward-backward: view j's own point must project back onto the reference pixel.
            back = _backproject(other.camera, other.depth, row_j[idx], col_j[idx])
            u_i, v_i, _ = _project(ref.camera, back)
            error = torch.hypot(u_i - (cols[idx].double() + 0.5), v_i - (rows[idx].double() + 0.5))
            ok = error <= settings.reprojection_px
            idx = idx[ok]
            agree[idx] += 1
            position_sum[idx] += back[ok]
        confident = ref.confidence[rows, cols] >= settings.single_view_confidence
        keep = (agree >= settings.min_views) | ((agree >= max(1, settings.min_views - 1)) & confident)
        kept = keep.sum().item()
        counts.append(int(kept))
        if kept:
            mean = position_sum[keep] / (1 + agree[keep]).double()[:, None]
            r_np, c_np = rows[keep].numpy(), cols[keep].numpy()
            xyz_parts.append(mean.numpy())
            rgb_parts.append(ref.color[r_np, c_np])
            normals = ref.normal[r_np, c_np].astype(np.float64) @ ref.camera.cam_from_world.rotation  # to world
            missing = np.linalg.norm(normals, axis=1) < 0.5  # at depth edges: face the camera instead
            if missing.any():
                towards = ref.camera.centre - mean.numpy()[missing]
                normals[missing] = towards / np.linalg.norm(towards, axis=1, keepdims=True)
            normal_parts.append(normals)
        progress(i + 1, len(views), f"{ref.camera.name}: {kept} consistent points")
    if not xyz_parts:
        return FusedPoints(np.zeros((0, 3)), np.zeros((0, 3), np.uint8), np.zeros((0, 3)), counts)
    return FusedPoints(np.concatenate(xyz_parts), np.concatenate(rgb_parts), np.concatenate(normal_parts), counts)
