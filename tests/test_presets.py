"""pipelines.yaml: code defaults are `standard`, presets are deltas; bad keys and overrides name their place."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoforge.errors import ConfigError
from photoforge.layout import STAGE_ORDER
from photoforge.presets import (
    BUILTIN_PIPELINES,
    PIPELINES_ENV,
    PipelineConfig,
    describe,
    flat_params,
    load_preset,
    load_presets,
    parse_override,
    preset_chain,
    validate_all,
)


def test_required_presets_exist_and_validate() -> None:
    presets = validate_all()
    assert {"preview", "standard", "hero"} <= set(presets)
    assert presets["preview"].ingest.max_size < presets["standard"].ingest.max_size <= presets["hero"].ingest.max_size


def test_standard_is_the_code_defaults() -> None:
    assert tuple(PipelineConfig.model_fields) == STAGE_ORDER
    assert load_presets(BUILTIN_PIPELINES)["standard"] == {}
    standard = load_preset("standard", path=BUILTIN_PIPELINES)
    assert standard == PipelineConfig()  # what a library caller gets from SplatParams() etc.
    for stage, field in PipelineConfig.model_fields.items():
        assert getattr(standard, stage) == field.annotation(), stage  # type: ignore[misc]


def _leaves(block: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in block.items():
        if isinstance(value, dict):
            out |= _leaves(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_builtin_presets_list_only_what_they_change() -> None:
    """Each block names known params only, every one differing from the preset it extends."""
    presets = load_presets(BUILTIN_PIPELINES)
    assert {"preview", "standard", "hero"} <= set(presets)
    for name, block in presets.items():
        chain = preset_chain(name, BUILTIN_PIPELINES)
        resolved = flat_params(load_preset(name, path=BUILTIN_PIPELINES))
        parent = flat_params(load_preset(chain[1], path=BUILTIN_PIPELINES) if len(chain) > 1 else PipelineConfig())
        written = _leaves({k: v for k, v in block.items() if k != "extends"})
        for key in written:
            assert key in resolved, f"preset {name}: {key} is not a param"
            assert resolved[key] != parent[key], f"preset {name}: {key} repeats the value of {chain[1]}"
        # and nothing else changed: resolved = parent + what is written
        assert {k for k in resolved if resolved[k] != parent[k]} == set(written), name


def test_pipelines_yaml_is_short() -> None:
    assert len(BUILTIN_PIPELINES.read_text().splitlines()) < 100


def test_user_preset_extends_a_builtin_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "presets:\n"
        "  mine: {extends: hero, mesh: {target_faces: 50000}, splat: {lr: {means: 1.0e-3}}}\n"
        "  mine2: {extends: mine, uv: {padding: 1}, splat: {lr: {scales: 1.0e-2}}}\n"
    )
    monkeypatch.setenv(PIPELINES_ENV, str(path))
    assert {"preview", "standard", "hero", "mine", "mine2"} <= set(load_presets())
    assert preset_chain("mine2") == ["mine2", "mine", "hero", "standard"]
    hero, mine2 = load_preset("hero"), load_preset("mine2")
    assert mine2.mesh.target_faces == 50000 and mine2.uv.padding == 1
    assert mine2.splat.lr.means == 1.0e-3 and mine2.splat.lr.scales == 1.0e-2  # nested blocks deep-merge
    assert mine2.splat.lr.quats == hero.splat.lr.quats
    assert (mine2.ingest, mine2.uv.texture_size, mine2.splat.steps) == (hero.ingest, hero.uv.texture_size, 30000)
    changed = {row.name for row in describe(mine2, load_preset("standard")) if row.changed}
    assert {"mesh.target_faces", "uv.padding", "splat.lr.means", "splat.steps", "ingest.max_size"} <= changed
    assert "poses.matcher" not in changed


def test_extends_cycle_and_unknown_base_are_named(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yaml"
    path.write_text("presets:\n  a: {extends: b}\n  b: {extends: c}\n  c: {extends: a}\n  d: {extends: nope}\n")
    with pytest.raises(ConfigError, match=r"cycle: a -> b -> c -> a"):
        load_preset("a", path=path)
    with pytest.raises(ConfigError, match=r"unknown preset 'nope' \(extended by 'd'"):
        load_preset("d", path=path)


def test_bad_key_in_an_extended_preset_names_that_preset(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yaml"
    path.write_text("presets:\n  base: {splat: {lr: {mean: 1}}}\n  top: {extends: base}\n")
    with pytest.raises(ConfigError, match=r"preset 'base' \(which 'top' extends\).*splat\.lr\.mean: unknown key"):
        load_preset("top", path=path)


def test_nested_override() -> None:
    cfg = load_preset("hero", dict([parse_override("splat.lr.means=1e-4")]))
    assert cfg.splat.lr.means == 1e-4
    assert cfg.splat.lr.scales == PipelineConfig().splat.lr.scales and cfg.splat.steps == 30000
    rows = {row.name: row for row in describe(cfg)}
    assert rows["splat.lr.means"].changed and rows["splat.lr.means"].description
    assert not rows["splat.lr.scales"].changed


def test_override_is_typed_from_yaml() -> None:
    cfg = load_preset(
        "preview", dict(map(parse_override, ["poses.min_registered=0.5", "poses.intrinsics=[100,100,50,40]"]))
    )
    assert cfg.poses.min_registered == 0.5
    assert cfg.poses.intrinsics == [100, 100, 50, 40]


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("poses.nope=1", "unknown parameter 'nope' of stage 'poses'"),
        ("splat.lr.nope=1", "unknown parameter 'nope' of group 'splat.lr' (known: means, scales"),
        ("splat.steps.max=1", "parameter 'splat.steps' is a value"),
        ("splat.lr.means=-1", "splat.lr.means"),
        ("sculpt.faces=1", "unknown stage 'sculpt'"),
        ("poses.matcher=fancy", "poses.matcher"),
        ("ingest.max_size=-5", "ingest.max_size"),
        ("justtext", "expected STAGE.PARAM=VALUE"),
    ],
)
def test_bad_override_names_the_key(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        load_preset("standard", dict([parse_override(override)]))


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown preset 'ultra'.*preview"):
        load_preset("ultra")


def test_bad_key_in_file_names_preset_and_place(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yaml"
    path.write_text("presets:\n  mine:\n    ingest: {max_sise: 10}\n    poses: {}\n")
    with pytest.raises(ConfigError, match=r"preset 'mine'.*ingest\.max_sise: unknown key"):
        load_preset("mine", path=path)
