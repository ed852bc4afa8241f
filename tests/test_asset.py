"""Textured asset on the synthetic capture: mesh, atlas, bake scored on left-out views, valid exports."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
import trimesh

from photoforge.errors import StageError
from photoforge.geometry.pointcloud import write_ply
from photoforge.layout import (
    ALBEDO_PNG,
    BAKE_JSON,
    COVERAGE_PNG,
    ISOLATION_JSON,
    MESH_PLY,
    OBJECT_PLY,
    UV_NPZ,
    DepthViews,
    UVMesh,
    world_to_asset,
)
from photoforge.presets import PipelineConfig
from photoforge.qa import gltf_validation
from photoforge.stage import StageResult, no_progress
from photoforge.stages import bake, mesh, uv
from photoforge.synthetic import SyntheticCapture


def _artefact(stage: str, path: Path) -> StageResult:
    """An upstream artefact at `path` (run reads only its directory)."""
    return StageResult(
        stage=stage, key=f"{stage}-key", path=str(path), metrics={}, reused=False, seconds=0.0, compute_seconds=0.0
    )


def _bake_inputs(run: dict, capture: Path, uv_dir: Path | None = None) -> bake.BakeInputs:
    """The asset run's bake inputs, from `capture`, with the uv artefact at `uv_dir` if given."""
    atlas = run["uv"] if uv_dir is None else _artefact("uv", uv_dir)
    return bake.BakeInputs(
        capture=capture, ingest=run["frames"], poses=run["sparse"], depth=run["depth"], mesh=run["mesh"], uv=atlas
    )


def test_mesh_is_manifold_within_budget_and_y_up(asset_run: dict) -> None:
    metrics = asset_run["mesh"].metrics
    assert metrics["manifold"] is True
    assert 1000 < metrics["faces"] <= asset_run["cfg"].mesh.target_faces
    loaded = o3d.io.read_triangle_mesh(str(asset_run["mesh"].dir / MESH_PLY))
    vertices = np.asarray(loaded.vertices)
    # an object (the blob's cameras surround it) with no support: footprint centred, standing on y = 0
    assert asset_run["asset"].metrics["kind"] == "object" and asset_run["asset"].metrics["support"] is None
    assert np.allclose((vertices.max(0) + vertices.min(0))[[0, 2]] / 2, 0, atol=1e-6)
    assert abs(vertices[:, 1].min()) < 1e-6
    assert metrics["components"] == 1
    # Asset +Y must be the true up (+Z of the synthetic world): map it through the similarity that
    # aligns the SfM cameras to the true ones.
    from photoforge.camera.model import Camera
    from photoforge.qa.pose_errors import read_strecha_dir
    from photoforge.qa.surface_scores import similarity_to_truth

    truth = read_strecha_dir(asset_run["synthetic"].cameras)
    records = DepthViews.read(asset_run["depth"].dir).usable
    estimated = np.array([Camera.from_json(r.camera or {}).centre for r in records])
    true = np.array([truth[Path(r.name).name.removesuffix(".jpg")].centre for r in records])
    to_truth = similarity_to_truth(estimated, true)[:3, :3]
    up = to_truth @ world_to_asset(asset_run["mesh"].dir)[1, :3]
    angle = np.degrees(np.arccos(np.clip(up @ [0, 0, 1] / np.linalg.norm(up), -1, 1)))
    assert angle < 5.0, angle


def test_atlas_charts_do_not_overlap(asset_run: dict) -> None:
    """No texel centre lies inside triangles of two different charts (xatlas vertices are per chart)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    atlas = UVMesh.read(asset_run["uv"].dir)
    faces, uvs, size = atlas.faces, atlas.uvs, atlas.texture_size
    assert uvs.min() >= 0 and uvs.max() <= 1
    rows = np.repeat(np.arange(len(faces)), 3)
    incidence = coo_matrix((np.ones(rows.size), (rows, faces.ravel())), shape=(len(faces), len(uvs))).tocsr()
    _, chart = connected_components(incidence @ incidence.T, directed=False)
    owner = np.full((size, size), -1, np.int64)
    clashes = 0
    for face, tri in enumerate(uvs[faces] * size):
        x0, y0 = np.floor(tri.min(axis=0)).astype(int)
        x1, y1 = np.ceil(tri.max(axis=0)).astype(int)
        xs, ys = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
        (ax, ay), (bx, by), (cx, cy) = tri
        det = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        if abs(det) < 1e-12:
            continue
        w0 = ((by - cy) * (xs - cx) + (cx - bx) * (ys - cy)) / det
        w1 = ((cy - ay) * (xs - cx) + (ax - cx) * (ys - cy)) / det
        inside = (w0 > 1e-6) & (w1 > 1e-6) & (1 - w0 - w1 > 1e-6)
        window = owner[y0:y1, x0:x1]
        taken = window[inside]
        clashes += int(np.count_nonzero((taken >= 0) & (chart[np.maximum(taken, 0)] != chart[face])))
        window[inside] = face
    assert clashes == 0
    assert (owner >= 0).mean() > 0.3  # the charts fill the atlas


def test_bake_matches_left_out_photos(asset_run: dict) -> None:
    metrics = asset_run["bake"].metrics
    assert metrics["views_left_out"] == 2
    assert metrics["coverage"] > 0.9
    assert metrics["psnr_left_out"] > 24.0, metrics
    assert metrics["ssim_left_out"] > 0.7, metrics
    report = json.loads((asset_run["bake"].dir / BAKE_JSON).read_text())
    held = [e for e in report["evaluation"] if e["left_out"]]
    assert {e["name"] for e in held} == set(report["left_out"])
    assert all((asset_run["bake"].dir / e["side_by_side"]).is_file() for e in report["evaluation"])
    assert (asset_run["bake"].dir / ALBEDO_PNG).is_file() and (asset_run["bake"].dir / COVERAGE_PNG).is_file()


def test_exports_reload_and_glb_validates(asset_run: dict) -> None:
    out = asset_run["export"].dir
    faces = asset_run["uv"].metrics["faces"]
    assert faces <= 12_000 < asset_run["mesh"].metrics["faces"]  # export.faces: a low-poly of the surface
    scene = trimesh.load(out / "asset.glb")
    glb_mesh = next(iter(scene.geometry.values()))
    assert len(glb_mesh.faces) == faces
    assert isinstance(glb_mesh.visual, trimesh.visual.TextureVisuals)
    material = glb_mesh.visual.material
    assert material.baseColorTexture.size == material.normalTexture.size == (1024, 1024)
    assert material.occlusionTexture is not None
    obj = trimesh.load(out / "asset.obj")
    assert len(obj.faces) == faces and obj.visual.uv is not None
    assert obj.visual.material.image.size == (1024, 1024)  # the baked albedo itself, beside the MTL
    assert (out / "asset.usdz").stat().st_size > 10_000
    with zipfile.ZipFile(out / "asset.usdz") as usdz:  # the maps travel inside the package
        packed = {Path(name).name for name in usdz.namelist()}
        assert {"albedo.png", "normal.png", "occlusion.png"} <= packed, usdz.namelist()
    assert "map_Bump normal.png" in (out / "asset.mtl").read_text()
    validation = asset_run["export"].metrics["gltf_validator"]
    if not gltf_validation.available():
        pytest.skip("node or the glTF-Validator is not installed (scripts/setup.sh installs them)")
    assert validation["errors"] == 0, validation


def test_empty_fused_cloud_is_a_clear_error(tmp_path: Path, asset_run: dict) -> None:
    isolated = tmp_path / "asset"
    isolated.mkdir()
    write_ply(isolated / OBJECT_PLY, np.zeros((10, 3)), np.zeros((10, 3), np.uint8), np.zeros((10, 3)))
    (isolated / ISOLATION_JSON).write_text('{"kind": "scene"}')
    inputs = mesh.MeshInputs(asset=_artefact("asset", isolated), depth=asset_run["depth"])
    with pytest.raises(StageError, match="empty or degenerate") as info:
        mesh.run(inputs, out=tmp_path, params=asset_run["cfg"].mesh, progress=no_progress)
    assert info.value.stage == "mesh"


def test_cleanup_can_remove_everything() -> None:
    """Two small triangles far apart: each is a tiny fraction of the whole, so both go."""
    from photoforge.geometry.meshing import CleanupSettings, cleanup

    vertices = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [10, 10, 10], [10.1, 10, 10], [10, 10.1, 10]], float)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    _, kept_f = cleanup(vertices, faces, CleanupSettings(min_component_fraction=0.5))
    assert len(kept_f) == 0


def test_mesh_with_no_faces_left_after_cleanup(
    tmp_path: Path, asset_run: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photoforge.geometry import meshing

    monkeypatch.setattr(meshing, "cleanup", lambda v, f, s: (np.zeros((0, 3)), np.zeros((0, 3), np.int32)))
    inputs = mesh.MeshInputs(asset=asset_run["asset"], depth=asset_run["depth"])
    with pytest.raises(StageError, match="no faces left after clean-up") as info:
        mesh.run(inputs, out=tmp_path, params=asset_run["cfg"].mesh, progress=no_progress)
    assert info.value.stage == "mesh"


def test_missing_original_photo_names_it(tmp_path: Path, synthetic: SyntheticCapture, asset_run: dict) -> None:
    capture = tmp_path / "capture"
    shutil.copytree(synthetic.capture, capture)
    missing = capture / "images" / "view_001.png"
    missing.unlink()
    params = asset_run["cfg"].bake.model_copy(update={"full_resolution": True})
    with pytest.raises(StageError, match="original photo is missing") as info:
        bake.run(_bake_inputs(asset_run, capture), out=tmp_path, params=params, progress=no_progress)
    assert info.value.path == str(missing)


def test_uv_on_a_mesh_without_faces(tmp_path: Path) -> None:
    empty = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.zeros((3, 3))), o3d.utility.Vector3iVector())
    (tmp_path / "mesh").mkdir()
    o3d.io.write_triangle_mesh(str(tmp_path / "mesh" / MESH_PLY), empty)
    with pytest.raises(StageError, match="no faces"):
        uv.run(
            uv.UVInputs(mesh=_artefact("mesh", tmp_path / "mesh"), level=PipelineConfig().detail_levels()[0]),
            out=tmp_path,
            params=uv.UVParams(),
            progress=no_progress,
        )


def test_poisson_is_deterministic() -> None:
    """The same cloud twice gives the same surface: open3d's threaded Poisson did not (2 components once)."""
    from photoforge.geometry.meshing import poisson_surface

    rng = np.random.default_rng(0)
    normals = rng.normal(size=(20_000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    radius = 1 + 0.2 * np.sin(3 * normals[:, 0]) * np.cos(2 * normals[:, 1])
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(normals * radius[:, None]))
    cloud.normals = o3d.utility.Vector3dVector(normals)
    first, second = (poisson_surface(cloud, depth=6, trim_quantile=0.03) for _ in range(2))
    assert len(first.vertices) > 1000
    assert np.array_equal(np.asarray(first.vertices), np.asarray(second.vertices))
    assert np.array_equal(np.asarray(first.triangles), np.asarray(second.triangles))


def test_max_gap_drops_the_membrane_poisson_spans_over_what_no_camera_saw() -> None:
    """A sphere seen from the front only: Poisson closes its back with a membrane far from any point;
    mesh.max_gap trims it and keeps the seen front (a wall-mounted bust's unseen pocket, bench/dense.py)."""
    from photoforge.geometry.meshing import poisson_surface

    rng = np.random.default_rng(1)
    normals = rng.normal(size=(30_000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    normals = normals[normals[:, 2] > -0.2]  # the front, a little past the equator
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(normals))
    cloud.normals = o3d.utility.Vector3dVector(normals)
    spacing = float(np.median(np.asarray(cloud.compute_nearest_neighbor_distance())))

    def gaps(mesh: o3d.geometry.TriangleMesh) -> np.ndarray:
        return np.asarray(o3d.geometry.PointCloud(mesh.vertices).compute_point_cloud_distance(cloud)) / spacing

    whole = poisson_surface(cloud, depth=6, trim_quantile=0.0)
    trimmed = poisson_surface(cloud, depth=6, trim_quantile=0.0, max_gap_spacings=4.0)
    assert (gaps(whole) > 4.0).sum() > 200  # the membrane over the back (cropped to the cloud's box)
    assert gaps(trimmed).max() <= 4.0
    front = np.asarray(trimmed.vertices)[:, 2] > 0.2
    assert front.sum() > 0.9 * (np.asarray(whole.vertices)[:, 2] > 0.2).sum()  # the seen front stays


def test_the_octree_depth_follows_the_face_budget_not_the_stray_points() -> None:
    """A wall of 400k points: with stray points 3x its size away the octree is coarse at depth 10 and
    Poisson's output small; without them depth 10 would give millions of faces for a 20k budget, so the
    depth drops until the occupied cells fit FACES_PER_CELL_BUDGET x the budget."""
    from photoforge.geometry.meshing import FACES_PER_CELL_BUDGET, octree_depth_for

    rng = np.random.default_rng(2)
    wall = np.column_stack([rng.uniform(0, 1, (400_000, 2)), rng.normal(0, 0.002, 400_000)])
    strays = rng.uniform(-1, 3, (40, 3))
    tight = octree_depth_for(wall, 10, 20_000)
    assert tight < 10 and octree_depth_for(np.vstack([wall, strays]), 10, 20_000) > tight
    assert octree_depth_for(wall, 10, 10_000_000) == 10  # a budget nothing exceeds: the depth asked for

    def occupied(depth: int) -> int:
        cells = np.floor((wall - wall.min(0)) / (np.ptp(wall, 0).max() / 2**depth)).astype(np.int64)
        return len(np.unique(cells, axis=0))

    assert occupied(tight) <= FACES_PER_CELL_BUDGET * 20_000 < occupied(tight + 1)


def test_watertight_that_cannot_close_says_so(
    tmp_path: Path, asset_run: dict, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """pymeshlab refuses to close holes (as on a mesh it finds non-manifold): the stage says so, never passes it."""
    import pymeshlab

    def refuse(*args: object, **kwargs: object) -> None:
        raise pymeshlab.PyMeshLabException("Close Holes: the mesh is not two-manifold")

    monkeypatch.setattr(pymeshlab.MeshSet, "meshing_close_holes", refuse)
    params = asset_run["cfg"].mesh.model_copy(update={"watertight": True})
    inputs = mesh.MeshInputs(asset=asset_run["asset"], depth=asset_run["depth"])
    with caplog.at_level("WARNING", logger="photoforge"):
        metrics = mesh.run(inputs, out=tmp_path, params=params, progress=no_progress)
    assert metrics.watertight_requested is True and metrics.watertight is False
    assert metrics.boundary_edges > 0
    assert "NOT watertight as asked" in metrics.summary
    assert any("mesh.watertight is true" in r.getMessage() for r in caplog.records)


def test_left_out_view_the_mesh_misses_fails(tmp_path: Path, asset_run: dict) -> None:
    """A mesh nowhere near the cameras: every scored view is uncovered, scored over the whole image, never dropped."""
    moved = tmp_path / "uv"
    moved.mkdir()
    with np.load(asset_run["uv"].dir / UV_NPZ) as data:
        arrays = {k: data[k] for k in data.files}
    extent = np.ptp(arrays["vertices"], axis=0).max()
    arrays["vertices"] = arrays["vertices"] + np.array([100 * extent, 0, 0], np.float32)
    arrays["texture_size"] = np.int32(256)
    np.savez_compressed(moved / UV_NPZ, **arrays)
    out = tmp_path / "bake"
    out.mkdir()
    params = asset_run["cfg"].bake.model_copy(update={"max_eval_views": 1})
    inputs = _bake_inputs(asset_run, asset_run["synthetic"].capture, uv_dir=moved)
    metrics = bake.run(inputs, out=out, params=params, progress=no_progress)
    evaluation = json.loads((out / BAKE_JSON).read_text())["evaluation"]
    held = [e for e in evaluation if e["left_out"]]
    assert len(held) == metrics.views_left_out == 2
    assert all(e["coverage"] == 0 and e["silhouette_fraction"] == 0 for e in evaluation)
    assert all(e["psnr"] is not None and e["psnr"] < 20 for e in held)
    assert metrics.psnr_left_out == pytest.approx(np.mean([e["psnr"] for e in held]), abs=1e-3)
    assert metrics.left_out_min_coverage == 0
    assert sorted(metrics.left_out_uncovered) == sorted(e["name"] for e in held)
