"""Shared fixtures: small real and synthetic captures, and an isolated Prefect API."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from photoforge.geometry.detail_levels import DetailLevel
from photoforge.stage import StageResult

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
SAMPLE_GT = ROOT / "data" / "sample_gt"
SHARED_DATA = ROOT.parent / "shared" / "data"
# The whole DAG on a synthetic capture in about a minute: for tests of orchestration, not quality.
SMALL_RUN = {
    "ingest.max_size": 480,
    "depth.max_size": 240,
    "depth.backend": "cpu",
    "depth.planes": 32,
    "mesh.target_faces": 8000,
    "uv.texture_size": 512,
    "bake.max_eval_views": 2,
    "export.usdz": False,
    "turntable.frames": 12,
    "turntable.width": 320,
    "turntable.height": 180,
}


def textured_rgb(seed: int, width: int = 640, height: int = 480) -> np.ndarray:
    """A random multi-scale texture: plenty of detail for sharpness and features."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.float32)
    for cell in (4, 16, 64):
        small = rng.random((height // cell + 1, width // cell + 1, 3)).astype(np.float32)
        image += cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)[:height, :width]
    image = 255 * (image - image.min()) / (image.max() - image.min())
    return image.astype(np.uint8)


def write_jpeg(path: Path, rgb: np.ndarray, exif: Image.Exif | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format="JPEG", quality=95, exif=exif if exif is not None else Image.Exif())
    return path


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a `photoforge` subprocess: its own Prefect set-up (an ephemeral server under
    WORKSPACE/.prefect), not the test session's API."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}, **extra}


@pytest.fixture
def sample_subset(tmp_path: Path) -> Path:
    """Six overlapping photos of the sample capture with its K.txt: SfM in a few seconds."""
    capture = tmp_path / "fountain"
    (capture / "images").mkdir(parents=True)
    for name in sorted(p.name for p in (SAMPLE / "images").glob("*.jpg"))[2:8]:
        shutil.copy(SAMPLE / "images" / name, capture / "images" / name)
    shutil.copy(SAMPLE / "K.txt", capture / "K.txt")
    return capture


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One isolated Prefect API (temporary database) for every flow test of the session."""
    results = tmp_path_factory.mktemp("prefect-results")
    os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(results)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A textured blob rendered from 20 known cameras at 480x360 (ground-truth mesh and cameras)."""
    from photoforge.synthetic import make_capture

    return make_capture(tmp_path_factory.mktemp("synthetic"), views=20, width=480, height=360, focal=465.0)


@pytest.fixture(scope="session")
def dense_run(synthetic, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[no-untyped-def]
    """ingest -> poses -> depth (cpu) -> fusion on the synthetic capture: standard preset, small sizes."""
    from photoforge.presets import load_preset
    from photoforge.stages import depth, fusion, ingest, poses
    from photoforge.store import ArtefactStore

    overrides = {"ingest.max_size": 480, "depth.max_size": 480, "depth.backend": "cpu"}
    overrides |= {"mesh.target_faces": 30_000, "mesh.poisson_depth": 8, "uv.texture_size": 1024}
    overrides |= {"export.faces": 12_000}  # a low-poly of the 30k-face surface, with a normal map
    cfg = load_preset("standard", overrides)
    store = ArtefactStore(tmp_path_factory.mktemp("ws"), "synthetic")
    frames = ingest.STAGE.execute(store, ingest.IngestInputs(capture=synthetic.capture), cfg.ingest)
    sparse = poses.STAGE.execute(store, poses.PosesInputs(ingest=frames), cfg.poses)
    depth_maps = depth.STAGE.execute(store, depth.DepthInputs(ingest=frames, poses=sparse), cfg.depth)
    cloud = fusion.STAGE.execute(store, fusion.FusionInputs(depth=depth_maps), cfg.fusion)
    return {"store": store, "frames": frames, "sparse": sparse, "depth": depth_maps, "fusion": cloud, "cfg": cfg}


@pytest.fixture(scope="session")
def asset_run(synthetic, dense_run: dict) -> dict:  # type: ignore[no-untyped-def]
    """dense_run continued: scale -> asset -> mesh -> uv -> bake -> export."""
    from photoforge.stages import asset, bake, export, mesh, scale, uv

    store, cfg = dense_run["store"], dense_run["cfg"]
    metres = scale.STAGE.execute(
        store, scale.ScaleInputs(ingest=dense_run["frames"], poses=dense_run["sparse"]), cfg.scale
    )
    isolated = asset.STAGE.execute(
        store, asset.AssetInputs(poses=dense_run["sparse"], fusion=dense_run["fusion"], scale=metres), cfg.asset
    )
    surface = mesh.STAGE.execute(store, mesh.MeshInputs(asset=isolated, depth=dense_run["depth"]), cfg.mesh)
    atlas = uv.STAGE.execute(store, uv.UVInputs(mesh=surface, level=cfg.detail_levels()[0]), cfg.uv)
    upstream = {"ingest": dense_run["frames"], "poses": dense_run["sparse"], "depth": dense_run["depth"]}
    bake_inputs = bake.BakeInputs(capture=synthetic.capture, **upstream, mesh=surface, uv=atlas)
    texture = bake.STAGE.execute(store, bake_inputs, cfg.bake)
    delivered = export.STAGE.execute(store, export.ExportInputs(mesh=surface, uv=atlas, bake=texture), cfg.export)
    return {
        **dense_run, "synthetic": synthetic, "scale": metres, "asset": isolated, "mesh": surface, "uv": atlas,
        "bake": texture, "export": delivered,
    }  # fmt: skip


@pytest.fixture(scope="session")
def shown(asset_run: dict) -> dict:
    """asset_run continued: turntable (24 frames, 320 x 240) -> report (with its 3D viewer)."""
    from photoforge.stages import report, turntable

    store, cfg = asset_run["store"], asset_run["cfg"]
    params = cfg.turntable.model_copy(update={"frames": 24, "width": 320, "height": 240})
    video = turntable.STAGE.execute(
        store, turntable.TurntableInputs(uv=asset_run["uv"], bake=asset_run["bake"]), params
    )
    results = {name: asset_run[key] for name, key in (("ingest", "frames"), ("poses", "sparse"), ("depth", "depth"))}
    results |= {name: asset_run[name] for name in ("fusion", "mesh", "uv", "bake", "export")}
    results |= {name: asset_run[name] for name in ("scale", "asset") if name in asset_run}  # when the run has them
    results["turntable"] = video
    inputs = report.ReportInputs(
        capture="synthetic", results=results, preset="standard", overrides={"uv.texture_size": 1024}
    )
    page = report.STAGE.execute(store, inputs, cfg.report)
    return {"turntable": video, "report": page, "background": np.array(params.background), "results": results}


def level_artefacts(asset_run: dict, level: DetailLevel, **bake_overrides: object) -> tuple[StageResult, StageResult]:
    """uv and bake of one more detail level of asset_run's surface."""
    from photoforge.stages import bake, uv

    store, cfg = asset_run["store"], asset_run["cfg"]
    atlas = uv.STAGE.execute(store, uv.UVInputs(mesh=asset_run["mesh"], level=level), cfg.uv)
    inputs = bake.BakeInputs(
        capture=asset_run["synthetic"].capture, ingest=asset_run["frames"], poses=asset_run["sparse"],
        depth=asset_run["depth"], mesh=asset_run["mesh"], uv=atlas,
    )  # fmt: skip
    texture = bake.STAGE.execute(store, inputs, cfg.bake.model_copy(update=bake_overrides))
    return atlas, texture


@pytest.fixture(scope="session")
def raw_level(asset_run: dict) -> tuple[StageResult, StageResult]:
    """asset_run's surface as it is (no decimation), 1024 px maps."""
    return level_artefacts(asset_run, DetailLevel(name="raw", faces=None, texture_size=1024))


@pytest.fixture(scope="session")
def with_lod(asset_run: dict) -> StageResult:
    """asset_run's export with one LOD (3000 faces, 512 px maps) beside asset.glb."""
    from photoforge.stages import export

    lod_uv, lod_bake = level_artefacts(asset_run, DetailLevel(name="custom", faces=3000, texture_size=512))
    inputs = export.ExportInputs(
        mesh=asset_run["mesh"], uv=asset_run["uv"], bake=asset_run["bake"], lod_uvs=[lod_uv], lod_bakes=[lod_bake]
    )
    return export.STAGE.execute(asset_run["store"], inputs, asset_run["cfg"].export)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the session's Prefect API carry the `prefect_server` marker (`-m "not prefect_server"`
    leaves them out for a quick library-only run)."""
    for item in items:
        if "prefect_api" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.prefect_server)
