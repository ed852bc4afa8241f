"""Stage uv: one detail level's low-poly (decimated from the high-res mesh), its atlas and shading frame.

The level (a plain input: name, face budget, texture size) comes from `export.detail` and
`export.lods`, so each level is its own cached artefact: adding a LOD re-uses the others. The
low-poly is pymeshlab's quadric collapse of the cleaned mesh, charted by xatlas; its vertex normals
and tangents (written as glTF NORMAL and TANGENT) are the frame the normal map is baked in.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field

from photoforge.errors import StageError
from photoforge.geometry.detail_levels import DetailLevel
from photoforge.layout import MESH_PLY, UV_NPZ
from photoforge.metrics import UVMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult

log = logging.getLogger("photoforge")


class UVParams(StageParams):
    texture_size: int | None = Field(
        None, ge=64, le=16384, description="texture px of asset.glb; default: its detail level's (export.detail)"
    )
    padding: int = Field(4, ge=0, le=64, description="texels between charts (dilated into by the bake)")
    max_chart_share: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="xatlas: largest chart as a share of the surface's area (0: no limit); the few huge charts "
        "of a smooth surface are most of xatlas' time (150k faces: 39 s unlimited, 12 s at 0.01)",
    )
    max_iterations: int = Field(1, ge=1, le=8, description="xatlas chart-growing iterations (quality vs time)")


class UVInputs(StageInputs):
    mesh: StageResult
    level: DetailLevel  # PipelineConfig.detail_levels(): from export.detail, export.lods, uv.texture_size


def run(inputs: UVInputs, *, out: Path, params: UVParams, progress: Progress) -> UVMetrics:
    import numpy as np  # the stage's libraries load when it runs, not when presets or keys are read
    import open3d as o3d
    import xatlas

    from photoforge.geometry.decimation import decimate, surface_area
    from photoforge.texturing.tangents import vertex_normals, vertex_tangents

    level = inputs.level
    mesh_file = inputs.mesh.dir / MESH_PLY
    mesh = o3d.io.read_triangle_mesh(str(mesh_file))
    vertices = np.asarray(mesh.vertices, np.float64)
    faces = np.asarray(mesh.triangles, np.int64)
    if len(faces) == 0:
        raise StageError("uv", "the mesh has no faces", mesh_file)
    source_faces = len(faces)
    decimated = level.faces is not None and source_faces > level.faces
    if level.name == "custom" and not decimated:
        log.warning(
            "uv: a budget of %s faces is at or above the mesh's %d: this level keeps the surface as it is, with no "
            "normal map (lower export.faces or the LOD's budget, or raise mesh.target_faces)",
            level.faces,
            source_faces,
        )
    if decimated:
        progress(0, 3, f"{level.name}: decimating {source_faces} faces to {level.faces}")
        try:
            vertices, faces = decimate(vertices, faces, target_faces=int(level.faces))  # type: ignore[arg-type]
        except Exception as exc:  # pymeshlab raises its own exception types
            cause = f"pymeshlab could not decimate to {level.faces} faces ({exc}): try another export.detail"
            raise StageError("uv", cause, mesh_file) from exc
    progress(1, 3, f"{level.name}: charting {len(faces)} faces")
    atlas = xatlas.Atlas()
    atlas.add_mesh(vertices.astype(np.float32), faces.astype(np.uint32))
    chart_options = xatlas.ChartOptions()
    chart_options.max_chart_area = params.max_chart_share * surface_area(vertices, faces)
    chart_options.max_iterations = params.max_iterations
    pack_options = xatlas.PackOptions()
    pack_options.resolution = level.texture_size
    pack_options.padding = params.padding
    pack_options.bilinear = True
    pack_options.create_image = False
    try:
        atlas.generate(chart_options, pack_options)
        vmapping, indices, uvs = atlas[0]
    except Exception as exc:  # xatlas raises bare RuntimeErrors
        raise StageError("uv", f"xatlas could not build an atlas: {exc}", mesh_file) from exc
    if atlas.atlas_count != 1:
        raise StageError(
            "uv",
            f"the {level.name} level's charts need {atlas.atlas_count} textures of {level.texture_size} px: "
            "raise uv.texture_size, or pick a lighter level",
        )
    progress(2, 3, "normals and tangents")
    split_vertices = vertices[vmapping].astype(np.float32)
    split_faces = indices.astype(np.int32)
    uvs_top_left = np.column_stack([uvs[:, 0], 1.0 - uvs[:, 1]]).astype(np.float32)
    # normals from the welded mesh, so chart seams do not show as creases
    normals = vertex_normals(vertices, faces)[vmapping]
    tangents = vertex_tangents(split_vertices, split_faces, uvs_top_left, normals)
    np.savez_compressed(
        out / UV_NPZ,
        vertices=split_vertices,
        faces=split_faces,
        uvs=uvs.astype(np.float32),  # xatlas: origin bottom-left; layout.UVMesh.read flips to glTF's top-left
        normals=normals.astype(np.float32),
        tangents=tangents.astype(np.float32),
        texture_size=np.int32(level.texture_size),
        level=np.str_(level.name),
        decimated=np.bool_(decimated),
    )
    progress(3, 3, f"{atlas.chart_count} charts")
    kept = f"decimated from {source_faces}" if decimated else "the mesh as it is"
    return UVMetrics(
        charts=int(atlas.chart_count),
        vertices=len(vmapping),
        faces=len(indices),
        utilization=round(float(atlas.utilization), 4),
        texture_size=level.texture_size,
        level=level.name,
        source_faces=source_faces,
        decimated=decimated,
        summary=f"{level.name}: {len(indices)} faces ({kept}), {atlas.chart_count} charts, "
        f"{atlas.utilization:.0%} of {level.texture_size}px used",
    )


def resolve(params: UVParams) -> UVParams:
    """uv.texture_size reaches the stage through its level (PipelineConfig.detail_levels), so the key
    holds it once: changing it re-runs only the levels whose texture it changes."""
    return params.model_copy(update={"texture_size": None})


STAGE = Stage("uv", inputs=UVInputs, params=UVParams, metrics=UVMetrics, run=run, resolve=resolve)
