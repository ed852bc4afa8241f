"""Stage export: the textured asset as GLB (glTF 2.0, PBR), OBJ+MTL+PNG and USDZ, validated.

Y up, in the asset frame of the mesh stage. Units are the SfM model's (glTF assumes metres;
the manifest says which). The GLB is checked with the Khronos glTF-Validator when node is there;
when it is not checked, the metrics say why (the report shows the check as not done).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from pydantic import Field

from photoforge.errors import StageError
from photoforge.io.asset_writers import textured_trimesh, write_glb, write_obj, write_usdz
from photoforge.qa import gltf_validation
from photoforge.stage import Progress, Stage, StageParams, StageResult, no_progress
from photoforge.stages.bake import ALBEDO_PNG
from photoforge.stages.uv import load_uv_mesh
from photoforge.store import ArtefactStore, read_manifest

STAGE = Stage("export", version="2", libraries=("trimesh", "usd-core", "pillow"))
ASSET = "asset"

log = logging.getLogger("photoforge")


class ExportParams(StageParams):
    glb: bool = Field(True, description="glTF 2.0 binary with a PBR material")
    obj: bool = Field(True, description="OBJ + MTL + PNG")
    usdz: bool = Field(True, description="USDZ (usd-core) for AR viewers")
    validate_gltf: bool = Field(True, description="run the Khronos glTF-Validator on the GLB (needs node)")


def key_inputs(mesh: StageResult, uv: StageResult, bake: StageResult) -> dict[str, Any]:
    return {"mesh": mesh.key, "uv": uv.key, "bake": bake.key}


def execute(
    store: ArtefactStore,
    mesh: StageResult,
    uv: StageResult,
    bake: StageResult,
    params: ExportParams,
    progress: Progress = no_progress,
) -> StageResult:
    return STAGE.execute(
        store, params, key_inputs(mesh, uv, bake), lambda out: run(mesh.dir, uv.dir, bake.dir, out, params, progress)
    )


def run(
    mesh_dir: Path, uv_dir: Path, bake_dir: Path, out: Path, params: ExportParams, progress: Progress = no_progress
) -> dict[str, Any]:
    vertices, faces, uvs, _ = load_uv_mesh(uv_dir)
    texture = out / "albedo.png"  # the name the OBJ's MTL and the USDZ refer to
    shutil.copyfile(bake_dir / ALBEDO_PNG, texture)
    mesh = textured_trimesh(vertices, faces, uvs, texture)
    files: list[Path] = [texture]
    validation: dict[str, Any] = {"available": False, "reason": "GLB not exported"}
    steps = sum([params.glb, params.obj, params.usdz])
    try:
        if params.glb:
            write_glb(mesh, out / f"{ASSET}.glb")
            files.append(out / f"{ASSET}.glb")
            if params.validate_gltf:
                validation = gltf_validation.validate(out / f"{ASSET}.glb")
                if not validation["available"]:
                    log.warning("export: the GLB was not validated: %s", validation["reason"])
            else:
                validation = {"available": False, "reason": "export.validate_gltf is false"}
            progress(1, steps, "GLB")
        if params.obj:
            files += write_obj(mesh, out / f"{ASSET}.obj")
            progress(2, steps, "OBJ")
        if params.usdz:
            write_usdz(vertices, faces, uvs, texture, out / f"{ASSET}.usdz")
            files.append(out / f"{ASSET}.usdz")
            progress(steps, steps, "USDZ")
    except (OSError, RuntimeError, ValueError) as exc:
        raise StageError("export", f"writing the asset failed: {exc}", out) from exc
    if validation.get("available") and validation.get("errors", 0) != 0:
        raise StageError("export", f"glTF-Validator found errors: {validation.get('messages')}", out / f"{ASSET}.glb")
    mesh_metrics = read_manifest(mesh_dir).get("metrics", {})
    bake_metrics = read_manifest(bake_dir).get("metrics", {})
    sizes = {f.name: f.stat().st_size for f in files}
    kinds = [k.upper() for k, on in (("glb", params.glb), ("obj", params.obj), ("usdz", params.usdz)) if on]
    checked = f"{validation['errors']} glTF errors" if validation.get("available") else "glTF NOT validated"
    return {
        "files": sizes,
        "faces": len(faces),
        "vertices": len(vertices),
        "watertight": mesh_metrics.get("watertight"),
        "manifold": mesh_metrics.get("manifold"),
        "texture_coverage": bake_metrics.get("coverage"),
        "units": "sfm",
        "gltf_validator": validation,
        "summary": f"{', '.join(kinds)} ({checked}), {sum(sizes.values()) / 1e6:.1f} MB",
    }
