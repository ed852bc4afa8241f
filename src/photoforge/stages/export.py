"""Stage export: the textured asset as GLB (glTF 2.0, PBR), OBJ+MTL+PNG and USDZ, validated.

Y up, in the asset frame of the mesh stage. Units are the SfM model's (glTF assumes metres;
the manifest says which). The GLB is checked with the Khronos glTF-Validator when node is there;
when it is not checked, the metrics say why (the report shows the check as not done).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pydantic import Field

from photoforge.errors import StageError
from photoforge.layout import ALBEDO_PNG, ASSET_GLB, ASSET_OBJ, ASSET_USDZ, UVMesh
from photoforge.metrics import BakeMetrics, ExportMetrics, GltfValidation, MeshMetrics
from photoforge.qa import gltf_validation
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult

log = logging.getLogger("photoforge")


class ExportParams(StageParams):
    glb: bool = Field(True, description="glTF 2.0 binary with a PBR material")
    obj: bool = Field(True, description="OBJ + MTL + PNG")
    usdz: bool = Field(True, description="USDZ (usd-core) for AR viewers")
    validate_gltf: bool = Field(True, description="run the Khronos glTF-Validator on the GLB (needs node)")


class ExportInputs(StageInputs):
    mesh: StageResult
    uv: StageResult
    bake: StageResult


def run(inputs: ExportInputs, *, out: Path, params: ExportParams, progress: Progress) -> ExportMetrics:
    from photoforge.io.asset_writers import textured_trimesh, write_glb, write_obj, write_usdz  # trimesh, usd

    uv = UVMesh.read(inputs.uv.dir)
    texture = out / ALBEDO_PNG  # the name the OBJ's MTL and the USDZ refer to
    shutil.copyfile(inputs.bake.dir / ALBEDO_PNG, texture)
    mesh = textured_trimesh(uv.vertices, uv.faces, uv.uvs, texture)
    files: list[Path] = [texture]
    validation = GltfValidation(available=False, reason="GLB not exported")
    steps = sum([params.glb, params.obj, params.usdz])
    try:
        if params.glb:
            write_glb(mesh, out / ASSET_GLB)
            files.append(out / ASSET_GLB)
            validation = _validate(out / ASSET_GLB, params)
            progress(1, steps, "GLB")
        if params.obj:
            files += write_obj(mesh, out / ASSET_OBJ)
            progress(2, steps, "OBJ")
        if params.usdz:
            write_usdz(uv.vertices, uv.faces, uv.uvs, texture, out / ASSET_USDZ)
            files.append(out / ASSET_USDZ)
            progress(steps, steps, "USDZ")
    except (OSError, RuntimeError, ValueError) as exc:
        raise StageError("export", f"writing the asset failed: {exc}", out) from exc
    if validation.available and validation.errors != 0:
        raise StageError("export", f"glTF-Validator found errors: {validation.messages}", out / ASSET_GLB)
    surface = inputs.mesh.metrics_as(MeshMetrics)
    sizes = {f.name: f.stat().st_size for f in files}
    kinds = [k.upper() for k, on in (("glb", params.glb), ("obj", params.obj), ("usdz", params.usdz)) if on]
    checked = f"{validation.errors} glTF errors" if validation.available else "glTF NOT validated"
    return ExportMetrics(
        files=sizes,
        faces=len(uv.faces),
        vertices=len(uv.vertices),
        watertight=surface.watertight,
        manifold=surface.manifold,
        texture_coverage=inputs.bake.metrics_as(BakeMetrics).coverage,
        units=surface.units,
        gltf_validator=validation,
        summary=f"{', '.join(kinds)} ({checked}), {sum(sizes.values()) / 1e6:.1f} MB",
    )


def _validate(glb: Path, params: ExportParams) -> GltfValidation:
    """The validator's answer on the GLB; when it is not run, why."""
    if not params.validate_gltf:
        return GltfValidation(available=False, reason="export.validate_gltf is false")
    validation = GltfValidation.model_validate(gltf_validation.validate(glb))
    if not validation.available:
        log.warning("export: the GLB was not validated: %s", validation.reason)
    return validation


STAGE = Stage("export", inputs=ExportInputs, params=ExportParams, metrics=ExportMetrics, run=run)
