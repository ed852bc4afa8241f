"""Stage uv: a texture atlas for the mesh (xatlas), charts packed for the preset's texture size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import open3d as o3d
import xatlas
from pydantic import Field

from photoforge.errors import StageError
from photoforge.stage import Progress, Stage, StageParams, StageResult, no_progress
from photoforge.stages.mesh import MESH_PLY
from photoforge.store import ArtefactStore

STAGE = Stage("uv", version="1", libraries=("xatlas", "open3d", "numpy"))
UV_NPZ = "mesh_uv.npz"


class UVParams(StageParams):
    texture_size: int = Field(2048, ge=64, le=16384, description="texture width and height in px")
    padding: int = Field(4, ge=0, le=64, description="texels between charts (dilated into by the bake)")
    max_chart_area: float = Field(0.0, ge=0.0, description="xatlas: largest chart area, 0 = no limit")
    max_iterations: int = Field(1, ge=1, le=8, description="xatlas chart-growing iterations (quality vs time)")


def key_inputs(mesh: StageResult) -> dict[str, Any]:
    return {"mesh": mesh.key}


def execute(store: ArtefactStore, mesh: StageResult, params: UVParams, progress: Progress = no_progress) -> StageResult:
    return STAGE.execute(store, params, key_inputs(mesh), lambda out: run(mesh.dir, out, params, progress))


def run(mesh_dir: Path, out: Path, params: UVParams, progress: Progress = no_progress) -> dict[str, Any]:
    mesh = o3d.io.read_triangle_mesh(str(mesh_dir / MESH_PLY))
    vertices = np.asarray(mesh.vertices, np.float32)
    faces = np.asarray(mesh.triangles, np.uint32)
    if len(faces) == 0:
        raise StageError("uv", "the mesh has no faces", mesh_dir / MESH_PLY)
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
        raise StageError("uv", f"xatlas could not build an atlas: {exc}", mesh_dir / MESH_PLY) from exc
    if atlas.atlas_count != 1:
        raise StageError(
            "uv", f"the charts need {atlas.atlas_count} textures of {params.texture_size} px: raise uv.texture_size"
        )
    np.savez_compressed(
        out / UV_NPZ,
        vertices=vertices[vmapping],
        faces=indices.astype(np.int32),
        uvs=uvs.astype(np.float32),  # xatlas: origin bottom-left; flipped to glTF's top-left at export/bake
        texture_size=np.int32(params.texture_size),
    )
    progress(1, 1, f"{atlas.chart_count} charts")
    return {
        "charts": int(atlas.chart_count),
        "vertices": len(vmapping),
        "faces": len(indices),
        "utilization": round(float(atlas.utilization), 4),
        "texture_size": params.texture_size,
        "summary": f"{atlas.chart_count} charts, {atlas.utilization:.0%} of {params.texture_size}px used",
    }


def load_uv_mesh(uv_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(vertices, faces, uvs with v down from the top, texture size)."""
    with np.load(uv_dir / UV_NPZ) as data:
        uvs = data["uvs"].copy()
        uvs[:, 1] = 1.0 - uvs[:, 1]
        return data["vertices"], data["faces"], uvs, int(data["texture_size"])
