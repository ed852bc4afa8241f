"""`photoforge handoff`: a run's undistorted photos and cameras for nerfstudio and COLMAP, in asset.glb's frame.

One small real run (six sample photos, no K.txt, so SfM finds lens distortion and the undistorted model
differs from the original; an object in metres, so the world-to-asset transform has a scale) is handed
off, and the files are checked against the run's own COLMAP model: nerfstudio's schema, rigid
OpenGL poses, camera centres, and the model's 2D observations reprojected with the OpenGL convention.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pycolmap
import pytest
from conftest import SAMPLE
from plyfile import PlyData

from flows import cli
from photoforge.geometry.similarity import similarity_parts
from photoforge.io.handoff import HANDOFF_JSON, short_names
from photoforge.io.nerfstudio import Z_UP_FROM_Y_UP
from photoforge.io.outputs import publish
from photoforge.layout import OUTPUTS_DIR, RUN_JSON, SPARSE_DIR, UNDISTORTED, world_to_asset
from photoforge.summary import RunSummary, StageRow

SMALL = {
    "ingest.max_size": 480,
    "depth.max_size": 160,
    "depth.backend": "cpu",
    "depth.planes": 16,
    "mesh.poisson_depth": 6,
    "mesh.target_faces": 2000,
    "asset.kind": "object",
    "scale.object_height": 2.0,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """ingest -> poses -> depth -> fusion -> scale -> asset -> mesh, published as the capture's latest run."""
    from photoforge.presets import load_preset
    from photoforge.stages import asset, depth, fusion, ingest, mesh, poses, scale
    from photoforge.store import ArtefactStore

    root = tmp_path_factory.mktemp("handoff")
    capture = root / "fountain"
    (capture / "images").mkdir(parents=True)
    for name in sorted(p.name for p in (SAMPLE / "images").glob("*.jpg"))[2:8]:
        shutil.copy(SAMPLE / "images" / name, capture / "images" / name)
    cfg = load_preset("standard", SMALL)
    workspace = root / "ws"
    store = ArtefactStore(workspace, "fountain")
    frames = ingest.STAGE.execute(store, ingest.IngestInputs(capture=capture), cfg.ingest)
    sparse = poses.STAGE.execute(store, poses.PosesInputs(ingest=frames), cfg.poses)
    maps = depth.STAGE.execute(store, depth.DepthInputs(ingest=frames, poses=sparse), cfg.depth)
    cloud = fusion.STAGE.execute(store, fusion.FusionInputs(depth=maps), cfg.fusion)
    metres = scale.STAGE.execute(store, scale.ScaleInputs(ingest=frames, poses=sparse), cfg.scale)
    isolated = asset.STAGE.execute(store, asset.AssetInputs(poses=sparse, fusion=cloud, scale=metres), cfg.asset)
    surface = mesh.STAGE.execute(store, mesh.MeshInputs(asset=isolated, depth=maps), cfg.mesh)
    results = [frames, sparse, metres, maps, cloud, isolated, surface]
    rows = [StageRow.from_result(r, cached=False, seconds=r.seconds) for r in results]
    publish(
        store.outputs_dir(), RunSummary(capture="fountain", preset="standard", workspace=str(workspace), stages=rows)
    )
    model = pycolmap.Reconstruction(str(maps.dir / UNDISTORTED / "sparse"))
    return {"capture": capture, "workspace": workspace, "poses": sparse, "depth": maps, "mesh": surface, "model": model}


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def _handoff(run: dict, to: str, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code, output = _main(
        ["handoff", str(run["capture"]), "--to", to, str(out), "--workspace", str(run["workspace"])], capsys
    )
    assert code == 0, output
    return output


def _asset_from_world(run: dict) -> np.ndarray:
    return world_to_asset(run["mesh"].dir)


def test_the_run_is_a_fair_test(run: dict) -> None:
    """Distortion undone (the undistorted model is PINHOLE, the original is not), and a scale in the transform."""
    original = pycolmap.Reconstruction(str(run["poses"].dir / SPARSE_DIR))
    assert "PINHOLE" not in {c.model_name for c in original.cameras.values()}
    assert {c.model_name for c in run["model"].cameras.values()} == {"PINHOLE"}
    scale, _, _ = similarity_parts(_asset_from_world(run))
    assert abs(scale - 1.0) > 0.05


def test_nerfstudio_hand_off_is_the_model_in_the_asset_frame(
    run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ns"
    output = _handoff(run, "nerfstudio", out, capsys)
    model = run["model"]
    assert f"{model.num_reg_images()} images (hard-linked)" in output
    data = json.loads((out / "transforms.json").read_text())

    # the schema ns-process-data writes: shared intrinsics, OPENCV without distortion, frames by file name
    assert data["camera_model"] == "OPENCV"
    assert all(data[k] == 0.0 for k in ("k1", "k2", "p1", "p2"))
    (camera,) = model.cameras.values()
    assert [data[k] for k in ("fl_x", "fl_y", "cx", "cy")] == pytest.approx(list(camera.params))
    assert (data["w"], data["h"]) == (camera.width, camera.height)
    assert data["applied_transform"] == Z_UP_FROM_Y_UP[:3].tolist()
    assert data["orientation_override"] == "none"
    assert data["photoforge"]["units"] == "metres"
    frames = data["frames"]
    assert len(frames) == model.num_reg_images()
    assert [f["file_path"] for f in frames] == sorted(f["file_path"] for f in frames)

    saved_from_world = Z_UP_FROM_Y_UP @ _asset_from_world(run)
    names = short_names([model.image(i).name for i in model.reg_image_ids()])
    by_new_name = {new: model.find_image_with_name(old) for old, new in names.items()}
    undistorted = run["depth"].dir / UNDISTORTED / "images"
    for frame in frames:
        path = out / frame["file_path"]
        assert frame["file_path"].startswith("images/") and path.is_file()
        image = by_new_name[frame["file_path"].removeprefix("images/")]
        assert os.path.samefile(path, undistorted / image.name)  # a hard link into the artefact
        assert cv2.imread(str(path)).shape[:2] == (data["h"], data["w"])

        c2w = np.array(frame["transform_matrix"])
        rotation = c2w[:3, :3]
        assert c2w.shape == (4, 4) and c2w[3].tolist() == [0, 0, 0, 1]
        assert np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-9)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        centre = saved_from_world[:3, :3] @ image.projection_center() + saved_from_world[:3, 3]
        assert np.allclose(c2w[:3, 3], centre, atol=1e-9)

        # the model's observations, reprojected in the OpenGL convention: in front is -z, image v runs down
        observed = [(p.xy, model.point3D(p.point3D_id).xyz) for p in image.points2D if p.has_point3D()]
        xy = np.array([o[0] for o in observed])
        world = np.array([o[1] for o in observed])
        saved = world @ saved_from_world[:3, :3].T + saved_from_world[:3, 3]
        cam = (saved - c2w[:3, 3]) @ rotation  # camera frame, OpenGL axes
        assert np.all(cam[:, 2] < 0), "the camera looks along -z"
        u = data["fl_x"] * cam[:, 0] / -cam[:, 2] + data["cx"]
        v = data["fl_y"] * -cam[:, 1] / -cam[:, 2] + data["cy"]
        assert np.median(np.hypot(u - xy[:, 0], v - xy[:, 1])) < 1.0

    # the sparse points splatfacto starts from, in the same frame
    vertex = PlyData.read(str(out / data["ply_file_path"]))["vertex"]
    assert vertex.count == model.num_points3D()
    xyz = np.stack([vertex[a] for a in "xyz"], axis=1)
    expected = np.array([p.xyz for p in model.points3D.values()]) @ saved_from_world[:3, :3].T + saved_from_world[:3, 3]
    assert np.allclose(xyz, expected, atol=1e-4 * np.ptp(expected))


def test_the_asset_frame_is_upright_for_nerfstudio(
    run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """asset.glb's +Y up is nerfstudio's +Z up: the photos' up direction (OpenGL camera +y) points up."""
    out = tmp_path / "ns"
    _handoff(run, "nerfstudio", out, capsys)
    frames = json.loads((out / "transforms.json").read_text())["frames"]
    ups = np.array([np.array(f["transform_matrix"])[:3, 1] for f in frames])
    assert np.mean(ups[:, 2]) > 0.8


def test_nerfstudio_s_own_parser_reads_it(run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Where nerfstudio is installed: its dataparser loads the frames, and maps them back to asset.glb's frame."""
    pytest.importorskip("nerfstudio.data.dataparsers.nerfstudio_dataparser")
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    out = tmp_path / "ns"
    _handoff(run, "nerfstudio", out, capsys)
    config = NerfstudioDataParserConfig(data=out, load_3D_points=True, eval_mode="all", downscale_factor=1)
    outputs = config.setup()._generate_dataparser_outputs("train")
    model = run["model"]
    assert len(outputs.image_filenames) == model.num_reg_images()
    assert outputs.metadata["points3D_xyz"].shape[0] == model.num_points3D()
    poses = outputs.transform_poses_to_original_space(outputs.cameras.camera_to_worlds, camera_convention="opencv")
    asset_from_world = _asset_from_world(run)
    names = {new: old for old, new in short_names([model.image(i).name for i in model.reg_image_ids()]).items()}
    for filename, pose in zip(outputs.image_filenames, poses.numpy(), strict=True):
        centre = model.find_image_with_name(names[Path(filename).name]).projection_center()
        assert np.allclose(pose[:3, 3], asset_from_world[:3, :3] @ centre + asset_from_world[:3, 3], atol=1e-4)


def test_colmap_hand_off_is_the_undistorted_model_in_the_asset_frame(
    run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "colmap"
    _handoff(run, "colmap", out, capsys)
    source = run["model"]
    for name in ("cameras.bin", "images.bin", "points3D.bin"):
        assert (out / "sparse" / "0" / name).is_file()
    model = pycolmap.Reconstruction(str(out / "sparse" / "0"))
    assert {c.model_name for c in model.cameras.values()} == {"PINHOLE"}
    assert model.num_reg_images() == source.num_reg_images() and model.num_points3D() == source.num_points3D()
    assert model.compute_mean_reprojection_error() == pytest.approx(source.compute_mean_reprojection_error(), abs=1e-6)
    asset_from_world = _asset_from_world(run)
    names = short_names([source.image(i).name for i in source.reg_image_ids()])
    for old, new in names.items():
        assert (out / "images" / new).is_file()  # COLMAP's image path is OUT/images
        expected = asset_from_world[:3, :3] @ source.find_image_with_name(old).projection_center()
        assert np.allclose(model.find_image_with_name(new).projection_center(), expected + asset_from_world[:3, 3])


def test_nerfstudio_s_colmap_parser_reads_the_colmap_hand_off(
    run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where nerfstudio is installed: its own .bin readers (older than COLMAP's rigs and frames) load the model."""
    pytest.importorskip("nerfstudio.data.dataparsers.colmap_dataparser")
    from nerfstudio.data.dataparsers.colmap_dataparser import ColmapDataParserConfig

    out = tmp_path / "colmap"
    _handoff(run, "colmap", out, capsys)
    config = ColmapDataParserConfig(data=out, colmap_path=Path("sparse/0"), eval_mode="all", downscale_factor=1)
    outputs = config.setup()._generate_dataparser_outputs("train")
    assert len(outputs.image_filenames) == run["model"].num_reg_images()
    assert all(Path(f).is_file() for f in outputs.image_filenames)
    assert outputs.metadata["points3D_xyz"].shape[0] == run["model"].num_points3D()


def test_an_earlier_hand_off_is_replaced_and_anything_else_refused(
    run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    _handoff(run, "nerfstudio", out, capsys)
    (out / "notes.txt").write_text("mine")
    _handoff(run, "colmap", out, capsys)
    assert not (out / "transforms.json").exists() and (out / "sparse" / "0" / "images.bin").is_file()
    assert (out / "notes.txt").read_text() == "mine"  # only the hand-off's own files are replaced
    assert json.loads((out / HANDOFF_JSON).read_text())["complete"] is True

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "photo.jpg").write_text("not ours")
    args = ["handoff", "fountain", "--to", "colmap", str(busy), "--workspace", str(run["workspace"])]
    code, output = _main(args, capsys)
    assert code == 2 and f"error: [handoff] {busy}: not empty and not an earlier hand-off" in output
    assert sorted(p.name for p in busy.iterdir()) == ["photo.jpg"]


def test_errors_say_what_to_do(run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = tmp_path / "ws"
    out = str(tmp_path / "out")
    code, output = _main(["handoff", "nowhere", "--to", "nerfstudio", out, "--workspace", str(workspace)], capsys)
    assert code == 2 and "no capture 'nowhere' in this workspace: run `photoforge run nowhere` first" in output

    (workspace / "fresh" / "ingest").mkdir(parents=True)
    code, output = _main(["handoff", "fresh", "--to", "nerfstudio", out, "--workspace", str(workspace)], capsys)
    assert code == 2 and "no finished run of 'fresh' yet: run `photoforge run fresh` first" in output

    record = json.loads((run["workspace"] / "fountain" / OUTPUTS_DIR / RUN_JSON).read_text())
    early = workspace / "early" / OUTPUTS_DIR / RUN_JSON
    early.parent.mkdir(parents=True)
    early.write_text(json.dumps({**record, "keys": {"ingest": record["keys"]["ingest"]}}))
    code, output = _main(["handoff", "early", "--to", "colmap", out, "--workspace", str(workspace)], capsys)
    assert code == 2 and "stopped before the depth stage: run `photoforge run early` to the end" in output

    gone = workspace / "gone" / OUTPUTS_DIR / RUN_JSON
    gone.parent.mkdir(parents=True)
    gone.write_text(json.dumps({**record, "paths": {"depth": str(tmp_path / "nothing")}}))
    code, output = _main(["handoff", "gone", "--to", "colmap", out, "--workspace", str(workspace)], capsys)
    assert code == 2 and "the depth artefact of the latest run is gone" in output
    assert not Path(out).exists()

    broken = workspace / "broken" / OUTPUTS_DIR / RUN_JSON
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    code, output = _main(["handoff", "broken", "--to", "colmap", out, "--workspace", str(workspace)], capsys)
    assert code == 2 and "the run's records cannot be read" in output and "Traceback" not in output

    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    args = ["handoff", "fountain", "--to", "colmap", str(a_file / "out"), "--workspace", str(run["workspace"])]
    code, output = _main(args, capsys)
    assert code == 2 and output.startswith("error: [handoff]") and "Traceback" not in output, output
