"""Writers for the exported asset beside the GLB (io.glb_writer): OBJ+MTL+PNG (trimesh) and USDZ (usd-core)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import trimesh
from PIL import Image

if TYPE_CHECKING:
    from pxr import Usd, UsdShade

    from photoforge.layout import UVMesh


def textured_trimesh(
    vertices: np.ndarray, faces: np.ndarray, uvs_top_left: np.ndarray, image: Image.Image
) -> trimesh.Trimesh:
    """A trimesh with a PBR base-colour texture (trimesh's UVs have v up)."""
    uv = uvs_top_left.copy()
    uv[:, 1] = 1.0 - uv[:, 1]
    material = trimesh.visual.material.PBRMaterial(
        name="albedo",
        baseColorTexture=image,
        metallicFactor=0.0,
        roughnessFactor=1.0,
        doubleSided=False,
    )
    visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return trimesh.Trimesh(vertices=vertices, faces=faces, visual=visual, process=False)


def write_obj(surface: UVMesh, texture: Path, path: Path, *, normal_map: Path | None = None) -> list[Path]:
    """OBJ beside its MTL and PNG texture (and `normal_map`, a file beside them, as the MTL's map_Bump:
    tangent space, for importers that build MikkTSpace tangents, as Blender's does); every file written.

    trimesh writes the OBJ and MTL; the texture file is the baked PNG itself, copied, not trimesh's
    re-encoding of it (a second PNG encode of a 2-4k texture, most of the writer's time)."""
    mesh = textured_trimesh(surface.vertices, surface.faces, surface.uvs, Image.new("RGB", (1, 1)))
    text, files = trimesh.exchange.obj.export_obj(
        mesh, include_texture=True, return_texture=True, mtl_name=f"{path.stem}.mtl"
    )
    path.write_text(text)
    written = [path]
    for name, data in files.items():
        is_texture = name.lower().endswith(".png")
        (path.parent / name).write_bytes(texture.read_bytes() if is_texture else data)
        written.append(path.parent / name)
    mtl = path.parent / f"{path.stem}.mtl"
    if normal_map is not None and mtl.is_file():
        mtl.write_text(mtl.read_text().rstrip("\n") + f"\nmap_Bump {normal_map.name}\n")
    return written


def write_usdz(
    surface: UVMesh, texture: Path, path: Path, *, normal_map: Path | None = None, occlusion: Path | None = None
) -> None:
    """`surface` (uvs top-left, as glTF) as a UsdPreviewSurface-textured mesh packaged as USDZ (AR Quick
    Look and other AR viewers): albedo, and the tangent-space normal map and occlusion when given (files
    beside `texture`, packaged with it)."""
    from pxr import Sdf, Usd, UsdGeom, UsdShade, UsdUtils, Vt

    layer_path = path.with_suffix(".usdc")
    stage = Usd.Stage.CreateNew(str(layer_path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, "/Asset")
    stage.SetDefaultPrim(root.GetPrim())
    mesh = UsdGeom.Mesh.Define(stage, "/Asset/Mesh")
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(surface.vertices.astype(np.float32)))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(surface.faces), 3, np.int32)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(surface.faces.astype(np.int32).ravel()))
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    st = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
    uv = surface.uvs.astype(np.float32).copy()
    uv[:, 1] = 1.0 - uv[:, 1]  # USD's st has v up
    st.Set(Vt.Vec2fArray.FromNumpy(uv))
    extent = np.stack([surface.vertices.min(axis=0), surface.vertices.max(axis=0)]).astype(np.float32)
    mesh.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(extent))

    material = UsdShade.Material.Define(stage, "/Asset/Material")
    surface = UsdShade.Shader.Define(stage, "/Asset/Material/Surface")
    surface.CreateIdAttr("UsdPreviewSurface")
    surface.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(1.0)
    surface.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
    reader = UsdShade.Shader.Define(stage, "/Asset/Material/StReader")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.Token).Set("st")
    image = _texture(stage, "/Asset/Material/Albedo", texture, reader, raw=False)
    image.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
    surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(image.ConnectableAPI(), "rgb")
    if normal_map is not None:  # stored as (n + 1) / 2: UsdUVTexture's scale and bias decode it
        normals = _texture(stage, "/Asset/Material/Normal", normal_map, reader, raw=True)
        normals.CreateInput("scale", Sdf.ValueTypeNames.Float4).Set((2.0, 2.0, 2.0, 1.0))
        normals.CreateInput("bias", Sdf.ValueTypeNames.Float4).Set((-1.0, -1.0, -1.0, 0.0))
        normals.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
        surface.CreateInput("normal", Sdf.ValueTypeNames.Normal3f).ConnectToSource(normals.ConnectableAPI(), "rgb")
    if occlusion is not None:
        occluded = _texture(stage, "/Asset/Material/Occlusion", occlusion, reader, raw=True)
        occluded.CreateOutput("r", Sdf.ValueTypeNames.Float)
        surface.CreateInput("occlusion", Sdf.ValueTypeNames.Float).ConnectToSource(occluded.ConnectableAPI(), "r")
    material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")
    UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(material)
    stage.GetRootLayer().Save()
    if not UsdUtils.CreateNewUsdzPackage(Sdf.AssetPath(str(layer_path)), str(path)):
        raise RuntimeError(f"usd-core could not package {path}")
    layer_path.unlink()


def _texture(stage: Usd.Stage, prim: str, file: Path, reader: UsdShade.Shader, *, raw: bool) -> UsdShade.Shader:
    """A UsdUVTexture of `file` read at the primvar reader's st; raw: data, not colour (no sRGB decoding)."""
    from pxr import Sdf, UsdShade

    image = UsdShade.Shader.Define(stage, prim)
    image.CreateIdAttr("UsdUVTexture")
    # "./name": a bare name beside a second texture makes usd-core's packager warn that it cannot resolve it
    image.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(f"./{file.name}")
    image.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
    image.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("clamp")
    image.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("clamp")
    if raw:
        image.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("raw")
    return image
