"""Writers for the exported asset: glTF 2.0 binary, OBJ+MTL+PNG (trimesh) and USDZ (usd-core)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from PIL import Image


def textured_trimesh(
    vertices: np.ndarray, faces: np.ndarray, uvs_top_left: np.ndarray, texture: Path
) -> trimesh.Trimesh:
    """A trimesh with a PBR base-colour texture (trimesh's UVs have v up)."""
    uv = uvs_top_left.copy()
    uv[:, 1] = 1.0 - uv[:, 1]
    material = trimesh.visual.material.PBRMaterial(
        name="albedo",
        baseColorTexture=Image.open(texture).convert("RGB"),
        metallicFactor=0.0,
        roughnessFactor=1.0,
        doubleSided=False,
    )
    visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return trimesh.Trimesh(vertices=vertices, faces=faces, visual=visual, process=False)


def write_glb(mesh: trimesh.Trimesh, path: Path) -> None:
    path.write_bytes(mesh.export(file_type="glb"))


def write_obj(mesh: trimesh.Trimesh, path: Path) -> list[Path]:
    """OBJ beside its MTL and PNG texture; returns every file written."""
    text, files = trimesh.exchange.obj.export_obj(
        mesh, include_texture=True, return_texture=True, mtl_name=f"{path.stem}.mtl"
    )
    path.write_text(text)
    written = [path]
    for name, data in files.items():
        (path.parent / name).write_bytes(data)
        written.append(path.parent / name)
    return written


def write_usdz(vertices: np.ndarray, faces: np.ndarray, uvs_top_left: np.ndarray, texture: Path, path: Path) -> None:
    """A UsdPreviewSurface-textured mesh packaged as USDZ (AR Quick Look and other AR viewers)."""
    from pxr import Sdf, Usd, UsdGeom, UsdShade, UsdUtils, Vt

    layer_path = path.with_suffix(".usdc")
    stage = Usd.Stage.CreateNew(str(layer_path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, "/Asset")
    stage.SetDefaultPrim(root.GetPrim())
    mesh = UsdGeom.Mesh.Define(stage, "/Asset/Mesh")
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(vertices.astype(np.float32)))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(faces), 3, np.int32)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(faces.astype(np.int32).ravel()))
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    st = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
    uv = uvs_top_left.astype(np.float32).copy()
    uv[:, 1] = 1.0 - uv[:, 1]  # USD's st has v up
    st.Set(Vt.Vec2fArray.FromNumpy(uv))
    extent = np.stack([vertices.min(axis=0), vertices.max(axis=0)]).astype(np.float32)
    mesh.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(extent))

    material = UsdShade.Material.Define(stage, "/Asset/Material")
    surface = UsdShade.Shader.Define(stage, "/Asset/Material/Surface")
    surface.CreateIdAttr("UsdPreviewSurface")
    surface.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(1.0)
    surface.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
    reader = UsdShade.Shader.Define(stage, "/Asset/Material/StReader")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.Token).Set("st")
    image = UsdShade.Shader.Define(stage, "/Asset/Material/Albedo")
    image.CreateIdAttr("UsdUVTexture")
    image.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(texture.name)
    image.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
    image.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("clamp")
    image.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("clamp")
    image.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
    surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(image.ConnectableAPI(), "rgb")
    material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")
    UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(material)
    stage.GetRootLayer().Save()
    if not UsdUtils.CreateNewUsdzPackage(Sdf.AssetPath(str(layer_path)), str(path)):
        raise RuntimeError(f"usd-core could not package {path}")
    layer_path.unlink()
