"""Stage uv: a texture atlas for the mesh (xatlas), charts packed for the preset's texture size."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from photoforge.errors import StageError
from photoforge.layout import MESH_PLY, UV_NPZ
from photoforge.metrics import UVMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult


class UVParams(StageParams):
    texture_size: int = Field(2048, ge=64, le=16384, description="texture width and height in px")
    padding: int = Field(4, ge=0, le=64, description="texels between charts (dilated into by the bake)")
    max_chart_area: float = Field(0.0, ge=0.0, description="xatlas: largest chart area, 0 = no limit")
    max_iterations: int = Field(1, ge=1, le=8, description="xatlas chart-growing iterations (quality vs time)")


class UVInputs(StageInputs):
    mesh: StageResult


def run(inputs: UVInputs, *, out: Path, params: UVParams, progress: Progress) -> UVMetrics:
    import numpy as np  # the stage's libraries load when it runs, not when presets or keys are read
    import open3d as o3d
    import xatlas

    mesh_file = inputs.mesh.dir / MESH_PLY
    mesh = o3d.io.read_triangle_mesh(str(mesh_file))
    vertices = np.asarray(mesh.vertices, np.float32)
    faces = np.asarray(mesh.triangles, np.uint32)
    if len(faces) == 0:
        raise StageError("uv", "the mesh has no faces", mesh_file)
    progress(0, 1, f"charting {len(faces)} faces")
    atlas = xatlas.Atlas()
    atlas.add_mesh(vertices, faces)
    chart_options = xatlas.ChartOptions()
    chart_options.max_chart_area = params.max_chart_area
    chart_options.max_iterations = params.max_iterations
    pack_options = xatlas.PackOptions()
    pack_options.resolution = params.texture_size
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
            "uv", f"the charts need {atlas.atlas_count} textures of {params.texture_size} px: raise uv.texture_size"
        )
    np.savez_compressed(
        out / UV_NPZ,
        vertices=vertices[vmapping],
        faces=indices.astype(np.int32),
        uvs=uvs.astype(np.float32),  # xatlas: origin bottom-left; layout.UVMesh.read flips to glTF's top-left
        texture_size=np.int32(params.texture_size),
    )
    progress(1, 1, f"{atlas.chart_count} charts")
    return UVMetrics(
        charts=int(atlas.chart_count),
        vertices=len(vmapping),
        faces=len(indices),
        utilization=round(float(atlas.utilization), 4),
        texture_size=params.texture_size,
        summary=f"{atlas.chart_count} charts, {atlas.utilization:.0%} of {params.texture_size}px used",
    )


STAGE = Stage("uv", inputs=UVInputs, params=UVParams, metrics=UVMetrics, run=run)
