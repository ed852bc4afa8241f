"""pipelines.yaml: every preset validates; bad keys and overrides name the key and its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoforge.errors import ConfigError
from photoforge.presets import load_preset, parse_override, validate_all


def test_required_presets_exist_and_validate() -> None:
    presets = validate_all()
    assert {"preview", "standard", "hero"} <= set(presets)
    assert presets["preview"].ingest.max_size < presets["standard"].ingest.max_size <= presets["hero"].ingest.max_size


def test_every_preset_sets_every_param_explicitly() -> None:
    import yaml

    from photoforge.presets import PipelineConfig, pipelines_path

    raw = yaml.safe_load(pipelines_path().read_text())["presets"]
    for name, preset in raw.items():
        for stage, field in PipelineConfig.model_fields.items():
            expected = set(field.annotation.model_fields)  # type: ignore[union-attr]
            assert set(preset[stage]) == expected, f"preset {name} stage {stage}"


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
