"""Stage export: each detail level as a self-contained GLB, plus OBJ, USDZ and a web GLB, validated.

`asset.glb` is the `export.detail` level (albedo, normal and occlusion maps, glTF TANGENT);
`asset_lod1.glb`, ... the `export.lods`, each with its own maps embedded, so any one file can be
moved alone; `asset.web.glb` is asset.glb with meshopt-compressed geometry and smaller textures
(gltfpack). OBJ+MTL+PNG (normal map as map_Bump) and USDZ (UsdPreviewSurface normal and
occlusion) carry asset.glb's mesh and maps. Y up, in the asset frame of
the mesh stage, in metres when a scale is known (the manifest says which). Every GLB is checked
with the Khronos glTF-Validator when node is there (the web GLB also decoded, since the validator
cannot read meshopt-compressed data); when it is not, the metrics say why.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from photoforge.errors import StageError
from photoforge.geometry.detail_levels import MAX_LODS, LevelName, heavier_lods
from photoforge.layout import (
    ALBEDO_PNG,
    ASSET_GLB,
    ASSET_OBJ,
    ASSET_USDZ,
    ASSET_WEB_GLB,
    NORMAL_PNG,
    OCCLUSION_PNG,
    UVMesh,
    lod_glb,
)
from photoforge.metrics import BakeMetrics, ExportedLevel, ExportMetrics, GltfValidation, MeshMetrics, WebGlbExport
from photoforge.qa import gltf_validation
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult

log = logging.getLogger("photoforge")


class ExportParams(StageParams):
    detail: LevelName = Field(
        "medium",
        description="asset.glb's detail level: preview <25k, reduced <50k, medium <100k, full <250k faces, "
        "raw = the mesh stage's surface; textures 1k/2k/2k/4k/4k (uv.texture_size overrides)",
    )
    faces: int = Field(0, ge=0, description="a custom face budget for asset.glb (0: the detail level's)")
    lods: list[LevelName | Annotated[int, Field(ge=100)]] = Field(
        default_factory=list,
        max_length=MAX_LODS,
        description="lighter levels beside asset.glb: names or face budgets, e.g. [reduced, preview] or [20000, 5000]",
    )
    glb: bool = Field(True, description="glTF 2.0 binary with a PBR material")
    obj: bool = Field(True, description="OBJ + MTL + PNG")
    usdz: bool = Field(True, description="USDZ (usd-core) for AR viewers")
    web: bool = Field(True, description="asset.web.glb: meshopt geometry, smaller textures (needs node, gltfpack)")
    web_texture_size: int = Field(1024, ge=64, le=8192, description="largest texture side in asset.web.glb")
    validate_gltf: bool = Field(True, description="run the Khronos glTF-Validator on every GLB (needs node)")

    @model_validator(mode="after")
    def _lods_are_lighter(self) -> ExportParams:
        heavier = heavier_lods(detail=self.detail, faces=self.faces, lods=self.lods)
        if heavier:
            main = f"export.faces={self.faces}" if self.faces else f"export.detail={self.detail}"
            raise ValueError(f"export.lods {heavier} are not lighter than asset.glb's level ({main})")
        if self.lods and not self.glb:
            raise ValueError("export.lods are GLBs: they need export.glb=true")
        return self


class ExportInputs(StageInputs):
    mesh: StageResult
    uv: StageResult
    bake: StageResult
    lod_uvs: list[StageResult] = Field(default_factory=list)  # one per export.lods entry, in order
    lod_bakes: list[StageResult] = Field(default_factory=list)


def run(inputs: ExportInputs, *, out: Path, params: ExportParams, progress: Progress) -> ExportMetrics:
    from photoforge.io.asset_writers import write_obj, write_usdz  # trimesh, usd

    if len(inputs.lod_uvs) != len(inputs.lod_bakes):
        raise StageError("export", f"{len(inputs.lod_uvs)} LOD atlases but {len(inputs.lod_bakes)} LOD bakes")
    uv = UVMesh.read(inputs.uv.dir)
    texture = out / ALBEDO_PNG  # the names the OBJ's MTL and the USDZ refer to
    shutil.copyfile(inputs.bake.dir / ALBEDO_PNG, texture)
    files: list[Path] = [texture]
    maps = {}  # asset.glb's normal and occlusion maps, beside the OBJ and in the USDZ
    for name in _baked_maps(inputs.bake).values() if params.obj or params.usdz else ():
        maps[name] = shutil.copyfile(inputs.bake.dir / name, out / name)
        files.append(out / name)
    levels: list[ExportedLevel] = []
    web: WebGlbExport | None = None
    pairs = [(inputs.uv, inputs.bake, ASSET_GLB)]
    pairs += [(u, b, lod_glb(i)) for i, (u, b) in enumerate(zip(inputs.lod_uvs, inputs.lod_bakes, strict=True), 1)]
    steps = (len(pairs) + 1) * params.glb + params.obj + params.usdz
    done = 0
    try:
        if params.glb:
            for uv_result, bake_result, name in pairs:
                levels.append(_write_level(uv_result, bake_result, out / name, params))
                files.append(out / name)
                done += 1
                progress(done, steps, name)
            web = _write_web(out / ASSET_GLB, out, params) if params.web else _why_no_web()
            files += [out / ASSET_WEB_GLB] if web.written else []
            done += 1
            progress(done, steps, ASSET_WEB_GLB)
        if params.obj:
            files += write_obj(uv, texture, out / ASSET_OBJ, normal_map=maps.get(NORMAL_PNG))
            done += 1
            progress(done, steps, "OBJ")
        if params.usdz:
            write_usdz(
                uv, texture, out / ASSET_USDZ, normal_map=maps.get(NORMAL_PNG), occlusion=maps.get(OCCLUSION_PNG)
            )
            files.append(out / ASSET_USDZ)
            progress(steps, steps, "USDZ")
    except (OSError, RuntimeError, ValueError) as exc:
        raise StageError("export", f"writing the asset failed: {exc}", out) from exc
    for level in levels:
        _fail_on_errors(level.gltf_validator, out / level.file)
    validation = levels[0].gltf_validator if levels else GltfValidation(available=False, reason="GLB not exported")
    surface = inputs.mesh.metrics_as(MeshMetrics)
    sizes = {f.name: f.stat().st_size for f in files}
    kinds = [k.upper() for k, on in (("glb", params.glb), ("obj", params.obj), ("usdz", params.usdz)) if on]
    checked = f"{validation.errors} glTF errors" if validation.available else "glTF NOT validated"
    lods = f", {len(levels) - 1} LOD(s)" if len(levels) > 1 else ""
    web_note = f", web {web.bytes / 1e6:.1f} MB" if web is not None and web.written and web.bytes else ""
    return ExportMetrics(
        files=sizes,
        faces=len(uv.faces),
        vertices=len(uv.vertices),
        watertight=surface.watertight,
        manifold=surface.manifold,
        texture_coverage=inputs.bake.metrics_as(BakeMetrics).coverage,
        units=surface.units,
        gltf_validator=validation,
        levels=levels,
        web=web,
        summary=f"{uv.level} {len(uv.faces)} faces: {', '.join(kinds)} ({checked}){lods}{web_note}, "
        f"{sum(sizes.values()) / 1e6:.1f} MB",
    )


def _write_level(uv_result: StageResult, bake_result: StageResult, path: Path, params: ExportParams) -> ExportedLevel:
    """One level's GLB with its maps embedded, validated."""
    from photoforge.io.glb_writer import write_glb

    mesh = UVMesh.read(uv_result.dir)
    baked = bake_result.metrics_as(BakeMetrics)
    maps = {role: bake_result.dir / name for role, name in _baked_maps(bake_result).items()}
    write_glb(
        path,
        vertices=mesh.vertices,
        faces=mesh.faces,
        uvs=mesh.uvs,
        normals=mesh.normals,
        tangents=mesh.tangents if "normal" in maps else None,
        albedo=bake_result.dir / ALBEDO_PNG,
        normal_map=maps.get("normal"),
        occlusion=maps.get("occlusion"),
    )
    return ExportedLevel(
        file=path.name,
        level=mesh.level,
        faces=len(mesh.faces),
        texture_size=mesh.texture_size,
        maps=baked.maps,
        bytes=path.stat().st_size,
        gltf_validator=_validate(path, params),
        psnr_left_out=baked.psnr_left_out,
        ssim_left_out=baked.ssim_left_out,
        detail=baked.detail,
    )


def _write_web(source: Path, out: Path, params: ExportParams) -> WebGlbExport:
    """asset.web.glb from asset.glb, validated as it is and decoded (the validator cannot read meshopt data)."""
    import tempfile

    from photoforge.io import web_glb

    result = web_glb.write_web_glb(source, out / ASSET_WEB_GLB, max_texture=params.web_texture_size, workdir=out)
    validation = _validate(result.path, params)
    _fail_on_errors(validation, result.path)
    decoded = validation  # not run either (and nothing decoded for it) when the validator is not
    if params.validate_gltf:
        with tempfile.TemporaryDirectory(prefix="photoforge-web-") as tmp:
            decoded = _validate(web_glb.decode_web_glb(result.path, Path(tmp) / "decoded.glb"), params)
        _fail_on_errors(decoded, result.path)
    return WebGlbExport(
        written=True, bytes=result.bytes, tool=result.tool, gltf_validator=validation, decoded_validator=decoded
    )


def _baked_maps(bake: StageResult) -> dict[str, str]:
    """The bake's normal and occlusion maps (what its metrics say it wrote): role -> file name."""
    made = bake.metrics_as(BakeMetrics).maps
    return {role: name for role, name in (("normal", NORMAL_PNG), ("occlusion", OCCLUSION_PNG)) if role in made}


def _fail_on_errors(validation: GltfValidation, glb: Path) -> None:
    if validation.available and validation.errors != 0:
        raise StageError("export", f"glTF-Validator found errors: {validation.messages}", glb)


def _why_no_web() -> WebGlbExport:
    """asset.web.glb not asked for, or its tools missing here (a warning: the rest of the asset is fine)."""
    missing = web_glb_unavailable()
    if missing is not None:
        log.warning("export: %s not written: %s", ASSET_WEB_GLB, missing)
    return WebGlbExport(written=False, reason=missing or "export.web is false")


def web_glb_unavailable() -> str | None:
    """Why asset.web.glb cannot be written here (node or gltfpack missing), None: it can."""
    from photoforge.io import web_glb

    return web_glb.unavailable_reason()


def resolve(params: ExportParams) -> ExportParams:
    """What runs here enters the key: the web GLB and the validator only where their tools are installed,
    so running scripts/setup.sh afterwards re-runs export rather than reusing an artefact without them."""
    from photoforge.qa import gltf_validation

    web = params.web and params.glb and web_glb_unavailable() is None
    return params.model_copy(update={"web": web, "validate_gltf": params.validate_gltf and gltf_validation.available()})


def _validate(glb: Path, params: ExportParams) -> GltfValidation:
    """The validator's answer on a GLB; when it is not run, why."""
    if not params.validate_gltf:
        missing = gltf_validation.unavailable_reason()
        if missing is not None:
            log.warning("export: %s was not validated: %s", glb.name, missing)
        return GltfValidation(available=False, reason=missing or "export.validate_gltf is false")
    validation = GltfValidation.model_validate(gltf_validation.validate(glb))
    if not validation.available:
        log.warning("export: %s was not validated: %s", glb.name, validation.reason)
    return validation


STAGE = Stage("export", inputs=ExportInputs, params=ExportParams, metrics=ExportMetrics, run=run, resolve=resolve)
