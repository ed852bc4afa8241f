"""Detail levels end to end on the synthetic capture: low-poly + maps, LODs that stand alone, the web GLB.

The session's asset_run ships a 12k-face custom level of a 30k-face surface (export.faces); here a
raw level (the surface as it is) and a LOD are baked beside it from the same upstream artefacts.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import trimesh

from photoforge.errors import ConfigError
from photoforge.geometry.detail_levels import LEVELS, DetailLevel, detail_levels
from photoforge.io import web_glb
from photoforge.io.outputs import publish
from photoforge.layout import ASSET_GLB, ASSET_WEB_GLB, NORMAL_PNG, OCCLUSION_PNG, RUN_JSON, lod_glb
from photoforge.presets import load_preset
from photoforge.qa import browser_load, gltf_validation
from photoforge.stage import StageResult
from photoforge.stages import export
from photoforge.summary import RunSummary, StageRow


def test_levels_follow_apple_budgets_and_overrides() -> None:
    assert [LEVELS[n] for n in ("preview", "reduced", "medium", "full", "raw")] == [
        (25_000, 1024), (50_000, 2048), (100_000, 2048), (250_000, 4096), (None, 4096),
    ]  # fmt: skip
    standard = load_preset("standard").detail_levels()
    assert standard == [DetailLevel(name="medium", faces=100_000, texture_size=2048)]
    assert load_preset("preview").detail_levels()[0].name == "preview"
    assert load_preset("hero").detail_levels()[0] == DetailLevel(name="full", faces=250_000, texture_size=4096)
    levels = detail_levels(detail="reduced", faces=30_000, lods=["preview", 8000], texture_size=1024)
    assert levels == [
        DetailLevel(name="custom", faces=30_000, texture_size=1024),
        DetailLevel(name="preview", faces=25_000, texture_size=1024),  # never above asset.glb's texture
        DetailLevel(name="custom", faces=8000, texture_size=1024),
    ]


def test_low_poly_keeps_shape_and_its_normal_map_beats_its_own_normals(asset_run: dict) -> None:
    atlas, baked = asset_run["uv"].metrics, asset_run["bake"].metrics
    assert atlas["decimated"] and atlas["faces"] <= 12_000 and atlas["source_faces"] > 25_000
    assert baked["maps"] == ["albedo", "normal", "occlusion"]
    detail = baked["detail"]
    print(detail)
    assert detail["normal_error_mapped_deg"] * 2 <= detail["normal_error_own_deg"], detail
    extent = max(asset_run["mesh"].metrics["extent"])
    assert detail["hausdorff"] < 0.02 * extent and detail["mean_distance"] < 0.002 * extent, detail
    assert (asset_run["bake"].dir / NORMAL_PNG).is_file() and (asset_run["bake"].dir / OCCLUSION_PNG).is_file()


def test_low_poly_scores_like_the_surface_it_came_from(asset_run: dict, raw_level: tuple) -> None:
    """Left-out PSNR of the 12k-face level within 0.5 dB of the 30k-face surface's, baked alike."""
    raw_uv, raw_bake = raw_level
    assert not raw_uv.metrics["decimated"] and raw_uv.metrics["faces"] == asset_run["mesh"].metrics["faces"]
    assert raw_bake.metrics["maps"] == ["albedo", "occlusion"] and raw_bake.metrics["detail"] is None
    low, high = asset_run["bake"].metrics["psnr_left_out"], raw_bake.metrics["psnr_left_out"]
    print(f"left-out PSNR: 12k level {low} dB, surface {high} dB")
    assert low >= high - 0.5


def test_every_lod_is_a_self_contained_valid_glb(with_lod: StageResult, tmp_path: Path) -> None:
    levels = with_lod.metrics["levels"]
    assert [level["file"] for level in levels] == [ASSET_GLB, lod_glb(1)]
    assert levels[1]["faces"] <= 3000 < levels[0]["faces"] and levels[1]["texture_size"] == 512
    alone = tmp_path / "moved.glb"
    shutil.copyfile(with_lod.dir / lod_glb(1), alone)  # moved alone: nothing external to lose
    document, _ = web_glb.read_glb(alone.read_bytes())
    assert all("uri" not in image for image in document["images"]) and len(document["images"]) == 3
    loaded = next(iter(trimesh.load(alone).geometry.values()))
    assert len(loaded.faces) == levels[1]["faces"]
    assert loaded.visual.material.baseColorTexture.size == (512, 512)
    if not gltf_validation.available():
        pytest.skip("node or the glTF-Validator is not installed (scripts/setup.sh installs them)")
    for level in levels:
        assert (level["gltf_validator"]["errors"], level["gltf_validator"]["warnings"]) == (0, 0), level


def test_web_glb_is_small_valid_and_opens_in_trimesh_and_three(asset_run: dict, tmp_path: Path) -> None:
    reason = web_glb.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    metrics = asset_run["export"].metrics
    web, main = metrics["web"], metrics["levels"][0]
    assert web["written"] and web["bytes"] < main["bytes"] / 2, (web, main["bytes"])
    assert metrics["files"][ASSET_WEB_GLB] == web["bytes"]
    assert (web["gltf_validator"]["errors"], web["gltf_validator"]["warnings"]) == (0, 0), web
    path = asset_run["export"].dir / ASSET_WEB_GLB
    decoded = web_glb.decode_web_glb(path, tmp_path / "decoded.glb")
    assert len(next(iter(trimesh.load(decoded).geometry.values())).faces) == main["faces"]
    if browser_load.unavailable_reason() is not None:
        pytest.skip(browser_load.unavailable_reason())
    result = browser_load.parse_result(browser_load.load_gltf(path))
    assert result.get("status") == "ok" and int(result["faces"]) == main["faces"], result
    assert result["tangents"] == "yes" and int(result["textures"]) == 3, result


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"export.detail": "preview", "export.lods": ["reduced"]}, "not lighter than asset.glb's level"),
        ({"export.faces": 20_000, "export.lods": [30_000, 5000]}, "['30000']"),
        ({"export.lods": ["raw"]}, "['raw']"),
        ({"export.glb": False, "export.lods": ["preview"]}, "need export.glb=true"),
    ],
)
def test_lods_that_cannot_be_delivered_are_refused(overrides: dict, said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_preset("standard", overrides)


def test_export_key_says_whether_the_web_tool_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run without gltfpack must not leave an artefact that a run with it would reuse."""
    params = export.ExportParams()
    monkeypatch.setattr(web_glb, "unavailable_reason", lambda: None)
    assert export.resolve(params).web is True
    monkeypatch.setattr(web_glb, "unavailable_reason", lambda: "node not found on PATH")
    assert export.resolve(params).web is False
    assert export.resolve(params.model_copy(update={"glb": False})).web is False


def test_run_json_names_asset_glbs_level_for_uv_and_bake(tmp_path: Path) -> None:
    rows = [
        StageRow(stage=stage, status="ran", seconds=1.0, key=f"{stage}-{level}", path=str(tmp_path / stage / level))
        for stage in ("uv", "bake")
        for level in ("main", "lod1")
    ]
    summary = RunSummary(capture="c", preset="standard", workspace=str(tmp_path), stages=rows)
    record = json.loads((publish(tmp_path / "outputs", summary) / RUN_JSON).read_text())
    assert record["keys"] == {"uv": "uv-main", "bake": "bake-main"}
