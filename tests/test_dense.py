"""Dense depth and fusion on the synthetic capture: accuracy against the true surface, bad input."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import open3d as o3d
import pycolmap
import pytest
from plyfile import PlyData

from photoforge.camera.model import Camera
from photoforge.errors import StageError
from photoforge.geometry.mvs import depth_views
from photoforge.geometry.pointcloud import read_ply
from photoforge.layout import DEPTH_JSON, FUSED_PLY, DepthViews
from photoforge.metrics import DepthMetrics
from photoforge.qa.pose_errors import read_strecha_dir
from photoforge.qa.surface_scores import observed_surface_samples, similarity_to_truth, surface_scores
from photoforge.stage import StageResult, no_progress
from photoforge.stages import depth, fusion
from photoforge.stages.depth import DepthInputs, DepthParams
from photoforge.stages.fusion import FusionInputs
from photoforge.synthetic import SyntheticCapture


def _scores(synthetic: SyntheticCapture, depth_dir: Path, ply: Path, fraction: float):  # type: ignore[no-untyped-def]
    truth = read_strecha_dir(synthetic.cameras)
    estimated, true = [], []
    for record in DepthViews.read(depth_dir).usable:
        estimated.append(Camera.from_json(record.camera).centre)
        true.append(truth[Path(record.name).name.removesuffix(".jpg")].centre)
    transform = similarity_to_truth(np.array(estimated), np.array(true))
    xyz, _, _ = read_ply(ply)
    aligned = xyz @ transform[:3, :3].T + transform[:3, 3]
    mesh = o3d.io.read_triangle_mesh(str(synthetic.mesh))
    samples = observed_surface_samples(mesh, np.array(true), count=100_000)
    return surface_scores(aligned, mesh, samples, fraction * synthetic.object_size)


def _depth(dense_run: dict, out: Path, params: DepthParams, poses: StageResult | None = None) -> DepthMetrics:
    """Stage depth's run on the dense run's frames and poses (or `poses`), into `out`."""
    inputs = DepthInputs(ingest=dense_run["frames"], poses=poses or dense_run["sparse"])
    return depth.run(inputs, out=out, params=params, progress=no_progress)


def test_cpu_backend_fused_cloud_matches_the_true_surface(synthetic: SyntheticCapture, dense_run: dict) -> None:
    assert dense_run["depth"].metrics["backend"] == "cpu"
    assert dense_run["depth"].metrics["usable_views"] == 20
    scores = _scores(synthetic, dense_run["depth"].dir, dense_run["fusion"].dir / FUSED_PLY, 0.005)
    assert scores.precision > 0.95, scores
    assert scores.fscore >= 0.9, scores
    assert scores.accuracy_mean < 0.002 * synthetic.object_size, scores


def test_depth_artefacts_per_view(dense_run: dict) -> None:
    depth_dir = dense_run["depth"].dir
    records = json.loads((depth_dir / DEPTH_JSON).read_text())["views"]
    assert len(records) == 20
    record = records[0]
    with np.load(depth_dir / record["map"]) as maps:
        assert maps["depth"].dtype == np.float32 and maps["depth"].shape == (360, 480)
        assert maps["normal"].shape == (360, 480, 3) and maps["confidence"].shape == (360, 480)
        assert 0.2 < (maps["depth"] > 0).mean() < 0.6  # the blob covers about 40% of the frame
    assert (depth_dir / record["preview"]).stat().st_size > 1000
    assert (depth_dir / "undistorted" / "sparse" / "cameras.bin").is_file()
    assert len(record["neighbours"]) == dense_run["cfg"].depth.neighbours


def test_fused_ply_is_standard_binary_ply(dense_run: dict) -> None:
    ply = PlyData.read(str(dense_run["fusion"].dir / FUSED_PLY))
    assert not ply.text
    vertex = ply["vertex"]
    types = {p.name: p.val_dtype for p in vertex.properties}
    assert types == {
        "x": "f4", "y": "f4", "z": "f4", "nx": "f4", "ny": "f4", "nz": "f4", "red": "u1", "green": "u1", "blue": "u1"
    }  # fmt: skip
    assert vertex.count == dense_run["fusion"].metrics["points"] > 50_000
    cloud = o3d.io.read_point_cloud(str(dense_run["fusion"].dir / FUSED_PLY))
    assert len(cloud.points) == vertex.count and cloud.has_colors() and cloud.has_normals()
    normals = np.stack([vertex["nx"], vertex["ny"], vertex["nz"]], axis=1)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-3)


def test_stricter_consistency_keeps_fewer_points(dense_run: dict, tmp_path: Path) -> None:
    params = dense_run["cfg"].fusion.model_copy(update={"min_consistent_views": 4})
    metrics = fusion.run(FusionInputs(depth=dense_run["depth"]), out=tmp_path, params=params, progress=no_progress)
    assert metrics.points_before_cleanup < dense_run["fusion"].metrics["points_before_cleanup"]


def test_a_confident_match_needs_one_view_fewer_and_only_from_the_sweep(dense_run: dict, tmp_path: Path) -> None:
    """fusion.single_view_confidence admits points one agreeing view short; COLMAP's maps (confidence 1
    everywhere) never get that: the same maps labelled cuda fuse as with the rule off."""
    inputs = FusionInputs(depth=dense_run["depth"])
    default = dense_run["fusion"].metrics["points_before_cleanup"]
    never = dense_run["cfg"].fusion.model_copy(update={"single_view_confidence": 2.0})
    (tmp_path / "never").mkdir()
    (tmp_path / "cuda").mkdir()
    strict = fusion.run(inputs, out=tmp_path / "never", params=never, progress=no_progress).points_before_cleanup
    assert strict < default
    relabelled = tmp_path / "depth"
    shutil.copytree(dense_run["depth"].dir, relabelled)
    summary = json.loads((relabelled / DEPTH_JSON).read_text())
    (relabelled / DEPTH_JSON).write_text(json.dumps(summary | {"backend": "cuda"}))
    as_cuda = fusion.run(
        FusionInputs(depth=dense_run["depth"].model_copy(update={"path": str(relabelled)})),
        out=tmp_path / "cuda",
        params=dense_run["cfg"].fusion,
        progress=no_progress,
    )
    assert as_cuda.points_before_cleanup == strict


def test_the_sweep_method_keeps_its_shared_point_sources(dense_run: dict, tmp_path: Path) -> None:
    """depth.method picks the source ranking: sweep the shared-point score it always had, coarse_to_fine
    the nearest viewing angles (photoforge.camera.views)."""
    from photoforge.camera.views import load_views, nearest_by_angle, rank_neighbours

    undistorted = dense_run["depth"].dir / "undistorted"
    model = pycolmap.Reconstruction(str(undistorted / "sparse"))
    views, points = load_views(model)
    expected = {"sweep": rank_neighbours(views, points), "coarse_to_fine": nearest_by_angle(views, points)}
    assert expected["sweep"] != expected["coarse_to_fine"]
    for method, ranked in expected.items():
        settings = depth_views.ViewSettings(
            max_size=240, torch_device="cpu", method=method, planes=16, window=5, top_k=2, refine_planes=8,
            foreground_planes=0, min_confidence=0.5, min_valid_fraction=0.01,
        )  # fmt: skip
        jobs = depth_views.view_jobs(
            model, workspace=undistorted, out=tmp_path, backend="cpu", settings=settings, neighbours=4,
            depth_margin=0.2, sparse_dir=undistorted / "sparse",
        )  # fmt: skip
        assert [[n.index for n in job.neighbours] for job in jobs] == [ranked[v.index][:4] for v in views]


def test_sparse_model_too_thin_for_stereo(dense_run: dict, tmp_path: Path) -> None:
    model = pycolmap.Reconstruction(str(dense_run["sparse"].dir / "sparse"))
    for point_id in list(model.point3D_ids()):
        model.delete_point3D(point_id)
    thin = tmp_path / "poses"
    (thin / "sparse").mkdir(parents=True)
    model.write(thin / "sparse")
    thin_poses = dense_run["sparse"].model_copy(update={"path": str(thin)})
    out = tmp_path / "depth"
    out.mkdir()
    with pytest.raises(StageError, match="0 points: stereo needs") as info:
        _depth(dense_run, out, dense_run["cfg"].depth, poses=thin_poses)
    assert info.value.stage == "depth"


def test_no_usable_depth_names_the_views(dense_run: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    params = dense_run["cfg"].depth.model_copy(update={"min_confidence": 1.0, "planes": 8, "max_size": 120})
    with pytest.raises(StageError, match=r"no view got usable depth.*view_000\.png\.jpg"):
        _depth(dense_run, tmp_path, params)


def test_view_without_neighbours_is_skipped_with_a_warning(
    dense_run: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photoforge.camera import views as views_module

    real_rank = views_module.nearest_by_angle

    def isolate_first(*args: object, **kwargs: object) -> dict[int, list[int]]:
        ranked = real_rank(*args, **kwargs)  # type: ignore[arg-type]
        ranked[0] = []
        return ranked

    monkeypatch.setattr(depth_views, "nearest_by_angle", isolate_first)
    params = dense_run["cfg"].depth.model_copy(update={"planes": 16, "max_size": 160})
    with caplog.at_level(logging.WARNING, logger="photoforge"):
        metrics = _depth(dense_run, tmp_path, params)
    assert "has no neighbour view" in caplog.text
    assert metrics.usable_views == 19 and metrics.unusable == ["images/view_000.png.jpg"]


def test_cuda_backend_without_cuda_is_a_clear_error(dense_run: dict, tmp_path: Path) -> None:
    if pycolmap.has_cuda:
        pytest.skip("this pycolmap has CUDA")
    params = dense_run["cfg"].depth.model_copy(update={"backend": "cuda"})
    with pytest.raises(StageError, match="pycolmap-cuda12"):
        _depth(dense_run, tmp_path, params)
    assert not any(tmp_path.iterdir())
    shutil.rmtree(tmp_path)


@pytest.mark.parametrize("planes", [1, 2])
def test_a_foreground_band_of_one_or_two_depths_is_refused(planes: int) -> None:
    """A band needs a depth either side of its best for the parabola: 1 or 2 would silently be off."""
    from pydantic import ValidationError

    from photoforge.stages.depth import DepthParams

    assert DepthParams(foreground_planes=0).foreground_planes == 0
    assert DepthParams().foreground_planes == 8
    with pytest.raises(ValidationError, match="0 \\(off\\) or at least 3"):
        DepthParams(foreground_planes=planes)
