"""`photoforge handoff`: the latest run's posed photos for other tools, in the frame of asset.glb.

What is handed off is the depth stage's COLMAP-undistorted workspace (pinhole images and model): the
images every later stage (fusion, bake, splat) worked from, with the cameras that made asset.glb.

- `nerfstudio`: OUT/images/ and OUT/transforms.json (photoforge.io.nerfstudio: the asset frame
  turned +Z up, nerfstudio's world), OUT/sparse_pc.ply (the sparse points, splatfacto's start).
- `colmap`: OUT/images/ and OUT/sparse/0/ (cameras.bin, images.bin, points3D.bin, and the rigs.bin
  and frames.bin of COLMAP 3.12+, which older readers ignore), the layout COLMAP's GUI opens with
  File > Import model and that nerfstudio's colmap dataparser and gsplat's examples read. The model is
  moved into the asset frame of asset.glb (glTF axes: +Y up; metres when the run found a scale): a
  similarity changes no image and no reprojection, and tools that show it beside asset.glb line it up.

  The undistorted pinhole model, not the poses stage's original one: both have the same poses, but the
  original keeps the lens distortion (SIMPLE_RADIAL, OPENCV, ... at the working frames' size) that
  several consumers refuse or handle only in part (the original 3D Gaussian Splatting code and many
  NeRF tools take PINHOLE only, Meshroom's research importer takes no OPENCV), and its images are
  the ingest frames, not the ones asset.glb's texture and the depth maps came from. A user who wants
  COLMAP's own undistortion or dense steps loses nothing: they run as well on a pinhole model.

Images are hard-linked from the artefact when OUT is on the same file system (free, and the artefact
is never written again: tools that edit an image in place would edit the cached one too), else copied.
OUT must be new, empty, or an earlier hand-off (HANDOFF_JSON marks one: it is written first, so a
hand-off stopped half-way is still recognised and replaced). No Prefect here: flows/cli.py calls it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from photoforge.errors import StageError, user_facing_os_error
from photoforge.geometry.similarity import similarity_parts, transform_points
from photoforge.io.nerfstudio import POINTS_PLY, Z_UP_FROM_Y_UP, transforms, write_points_ply
from photoforge.layout import (
    HANDOFF_TARGETS,
    OUTPUTS_DIR,
    RUN_JSON,
    TRANSFORM_JSON,
    UNDISTORTED,
    named_capture,
    read_json,
    world_to_asset,
)
from photoforge.store import is_complete, write_json

Target = Literal["nerfstudio", "colmap"]
TARGETS: tuple[Target, ...] = HANDOFF_TARGETS
HANDOFF_JSON = "photoforge-handoff.json"
IMAGES_DIR = "images"
TRANSFORMS_JSON = "transforms.json"
COLMAP_DIR = "sparse"
COLMAP_MODEL = f"{COLMAP_DIR}/0"
# What a hand-off of either kind writes beside HANDOFF_JSON: what replacing an earlier one removes (nothing else).
WRITTEN = (IMAGES_DIR, COLMAP_DIR, TRANSFORMS_JSON, POINTS_PLY)
STAGE = "handoff"


@dataclass(frozen=True)
class RunArtefacts:
    """The artefacts of a capture's latest published run that a hand-off reads."""

    capture: str
    depth: Path  # the undistorted workspace (images, pinhole model) and depth.json
    mesh: Path  # asset_transform.json: the SfM world to the asset frame


@dataclass(frozen=True)
class Handoff:
    out: Path
    target: Target
    images: int
    linked: bool  # the images are hard links into the artefact (else copies)
    units: str  # "m", or "sfm" where the run found no scale


def latest_run(workspace: Path, capture: str) -> RunArtefacts:
    """The depth and mesh artefacts of the capture's latest run (WORKSPACE/CAPTURE/outputs/run.json)."""
    name = named_capture(capture)
    if not (workspace / name).is_dir():
        cause = f"no capture {name!r} in this workspace: run `photoforge run {capture}` first (or pass --workspace)"
        raise StageError(STAGE, cause, workspace)
    record_path = workspace / name / OUTPUTS_DIR / RUN_JSON
    if not record_path.is_file():
        raise StageError(STAGE, f"no finished run of {name!r} yet: run `photoforge run {capture}` first", record_path)
    record = read_json(record_path)
    depth, mesh = (_artefact(workspace, record, name=name, stage=stage, capture=capture) for stage in ("depth", "mesh"))
    return RunArtefacts(name, depth, mesh)


def _artefact(workspace: Path, record: dict[str, Any], *, name: str, stage: str, capture: str) -> Path:
    """The stage's artefact: where run.json says, else under its key in this workspace (a moved one)."""
    key = record.get("keys", {}).get(stage)
    if key is None:
        cause = (
            f"the latest run of {name!r} stopped before the {stage} stage: run `photoforge run {capture}` to the end"
        )
        raise StageError(STAGE, cause)
    candidates = [Path(p) for p in [record.get("paths", {}).get(stage)] if p]
    candidates += [workspace / name / stage / key, *sorted(workspace.glob(f"*/{stage}/{key}"))]
    for path in candidates:
        if is_complete(path):
            return path
    cause = f"the {stage} artefact of the latest run is gone (workspace cleaned?): run `photoforge run {capture}` again"
    raise StageError(STAGE, cause, candidates[0])


def handoff(workspace: Path, capture: str, *, target: Target, out: Path) -> Handoff:
    """Write the capture's latest run into `out` for `target` (see the module's docstring).

    Whatever a user can cause (a missing or unreadable file, a folder that cannot be written, a broken
    run record or model) is a StageError with one line saying what to do.
    """
    try:
        return _handoff(workspace, capture, target=target, out=out)
    except StageError:
        raise
    except OSError as exc:
        error = user_facing_os_error(STAGE, exc, out)
        if error is exc:
            where = Path(exc.filename) if exc.filename else out
            raise StageError(STAGE, f"{exc.strerror or exc}: check the path and try again", where) from exc
        raise error from exc
    except ValueError as exc:  # a broken run.json, transform or model: its run is not usable
        cause = f"the run's records cannot be read ({exc}): run `photoforge run {capture}` again"
        raise StageError(STAGE, cause, workspace) from exc


def _handoff(workspace: Path, capture: str, *, target: Target, out: Path) -> Handoff:
    if target not in TARGETS:
        raise StageError(STAGE, f"unknown target {target!r}: pass one of {', '.join(TARGETS)}")
    run = latest_run(workspace, capture)
    import pycolmap  # after the checks: a mistyped capture fails at once

    undistorted = run.depth / UNDISTORTED
    if not (undistorted / "sparse").is_dir() or not (undistorted / IMAGES_DIR).is_dir():
        cause = f"no undistorted images and model in the depth artefact: run `photoforge run {capture}` again"
        raise StageError(STAGE, cause, undistorted)
    asset_from_world = world_to_asset(run.mesh)
    similarity_parts(asset_from_world)  # ValueError now, before anything is written
    units = str(read_json(run.mesh / TRANSFORM_JSON).get("units", "sfm"))
    model = pycolmap.Reconstruction(str(undistorted / "sparse"))
    names = short_names([model.image(i).name for i in model.reg_image_ids()])
    _check_out(out)
    about = {
        "capture": run.capture,
        "to": target,
        "depth_artefact": str(run.depth),
        "mesh_artefact": str(run.mesh),
        "units": units,
        "complete": False,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / HANDOFF_JSON, about)  # first: a hand-off stopped half-way is still recognised as one
    _clear(out)
    linked = place_images(undistorted / IMAGES_DIR, out / IMAGES_DIR, names)
    if target == "nerfstudio":
        _write_nerfstudio(model, names, asset_from_world, units, out, about)
    else:
        _write_colmap(model, names, asset_from_world, out)
    write_json(out / HANDOFF_JSON, {**about, "complete": True, "images": len(names)})
    return Handoff(out, target, len(names), linked, units)


def short_names(names: list[str]) -> dict[str, str]:
    """Each image name without the folders all of them share ("images/0001.jpg" -> "0001.jpg"): still unique."""
    parts = [PurePosixPath(n).parts for n in names]
    common = 0
    while parts and all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    return {name: "/".join(p[common:]) for name, p in zip(names, parts, strict=True)}


def place_images(source: Path, target: Path, names: dict[str, str]) -> bool:
    """source/OLD as target/NEW for each OLD -> NEW: hard links where the file system allows, else copies.
    True when every image is a link."""
    linked = True
    for old, new in names.items():
        src, dst = source / old, target / new
        if not src.is_file():
            raise StageError(STAGE, "an undistorted image of the run is missing: run photoforge run again", src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:  # another file system, or one without hard links
            shutil.copyfile(src, dst)
            linked = False
    return linked


def _write_nerfstudio(
    model: Any, names: dict[str, str], asset_from_world: np.ndarray, units: str, out: Path, about: dict[str, Any]
) -> None:
    from photoforge.camera.model import Camera, camera_in_frame
    from photoforge.camera.views import load_views

    saved_from_world = Z_UP_FROM_Y_UP @ asset_from_world
    views, _ = load_views(model)
    cameras = []
    for view in views:
        posed = camera_in_frame(view.camera, saved_from_world)
        name = f"{IMAGES_DIR}/{names[view.name]}"
        cameras.append(Camera(name, posed.k, posed.cam_from_world, posed.width, posed.height))
    points = list(model.points3D.values())
    xyz = np.array([p.xyz for p in points], float).reshape(-1, 3)
    rgb = np.array([p.color for p in points], np.uint8).reshape(-1, 3)
    write_points_ply(out / POINTS_PLY, transform_points(saved_from_world, xyz), rgb)
    photoforge = {
        "frame": "asset.glb's asset frame turned +Z up as Blender imports glTF: (x, y, z)_glTF -> (x, -z, y)",
        "units": "metres" if units == "m" else "SfM units (the run found no scale)",
        "applied_transform": "asset.glb's glTF frame to this one (nerfstudio's original -> saved coordinates)",
        "asset_from_sfm": np.asarray(asset_from_world, float).tolist(),
        "images": "COLMAP-undistorted pinhole images of the depth stage",
        "capture": about["capture"],
        "depth_artefact": about["depth_artefact"],
    }
    data = transforms(cameras, applied_transform=Z_UP_FROM_Y_UP, ply_file=POINTS_PLY, photoforge=photoforge)
    write_json(out / TRANSFORMS_JSON, data)


def _write_colmap(model: Any, names: dict[str, str], asset_from_world: np.ndarray, out: Path) -> None:
    import pycolmap

    scale, rotation, translation = similarity_parts(asset_from_world)
    model.transform(pycolmap.Sim3d(scale, pycolmap.Rotation3d(rotation), translation))
    for image_id in model.reg_image_ids():
        image = model.image(image_id)
        image.name = names[image.name]
    target = out / COLMAP_MODEL
    target.mkdir(parents=True)
    model.write(str(target))


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise StageError(STAGE, "OUT is a file: pass a folder (new, empty, or an earlier hand-off)", out)
    if out.is_dir() and any(out.iterdir()) and not (out / HANDOFF_JSON).is_file():
        raise StageError(STAGE, "not empty and not an earlier hand-off: pass a new or empty folder", out)


def _clear(out: Path) -> None:
    """An earlier hand-off's files removed (links only: the artefact's images stay); nothing else."""
    for name in WRITTEN:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
