"""The user's object masks in the undistorted views, where depth maps and the bake read the photos.

COLMAP undistorts the frames for stereo (a pinhole camera per view, its image maybe cropped or
resized), so a frame's mask is warped the same way, through the two cameras, each undistorted pixel
taking the mask pixel its ray falls in (nearest: the mask stays binary). They are written beside the
undistorted images of the depth artefact, where the bake and its scores find them too.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pycolmap

from photoforge.errors import StageError

UNDISTORTED_MASKS = "masks"  # in the undistorted workspace: <view name>.png, 255 = object


def undistort_masks(undistorted: pycolmap.Reconstruction, *, masks_dir: Path, sparse_dir: Path, workspace: Path) -> int:
    """Each frame's mask (masks_dir/<name>.png) as its undistorted view sees it; returns how many."""
    distorted = pycolmap.Reconstruction(str(sparse_dir))
    written = 0
    for image in undistorted.images.values():
        path = masks_dir / f"{image.name}.png"
        original = distorted.find_image_with_name(image.name)
        if original is None or original.camera is None or image.camera is None or not path.is_file():
            continue  # a frame without a mask: all of it is object
        mask = read_artefact_mask(path, stage="depth", artefact="ingest")
        target = workspace / UNDISTORTED_MASKS / f"{image.name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), warp_mask(mask, source=original.camera, target=image.camera))
        written += 1
    return written


def warp_mask(mask: np.ndarray, *, source: pycolmap.Camera, target: pycolmap.Camera) -> np.ndarray:
    """`mask` (taken by `source`, distortion and all) as `target` sees it: 0/255 at target's size.

    Pixel (i, j) covers [i, i+1) x [j, j+1) (COLMAP's convention): each target pixel centre goes through
    target's inverse and source's projection, and takes the source pixel it lands in; outside: 0.
    """
    u, v = np.meshgrid(np.arange(target.width) + 0.5, np.arange(target.height) + 0.5)
    normalised = np.asarray(target.cam_from_img(np.stack([u.ravel(), v.ravel()], axis=1)))
    rays = np.concatenate([normalised, np.ones((len(normalised), 1))], axis=1)
    found = np.asarray(source.img_from_cam(rays))
    scale = np.array([mask.shape[1] / source.width, mask.shape[0] / source.height])
    index = np.floor(np.nan_to_num(found * scale, nan=-1.0)).astype(np.int64)
    inside = (index[:, 0] >= 0) & (index[:, 0] < mask.shape[1]) & (index[:, 1] >= 0) & (index[:, 1] < mask.shape[0])
    out = np.zeros(len(index), np.uint8)
    out[inside] = np.where(mask[index[inside, 1], index[inside, 0]] > 0, 255, 0)
    return out.reshape(target.height, target.width)


def view_mask(workspace: Path, name: str, width: int, height: int) -> np.ndarray | None:
    """The undistorted view's mask at width x height (True: object), None when its frame has none."""
    path = workspace / UNDISTORTED_MASKS / f"{name}.png"
    if not path.is_file():
        return None
    mask = read_artefact_mask(path, stage="bake", artefact="depth")
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST) > 0


def read_artefact_mask(path: Path, *, stage: str, artefact: str) -> np.ndarray:
    """A mask an earlier stage wrote (grey uint8, 0 = background); unreadable means that artefact is damaged."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise StageError(stage, f"unreadable mask in the {artefact} artefact: delete that artefact to redo it", path)
    return mask
