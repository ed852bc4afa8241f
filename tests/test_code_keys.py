"""Keys that cannot go stale: the code part of a key is read from the code and the libraries it imports."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from photoforge.code_keys import fingerprint
from photoforge.stage import Stage, StageInputs, StageMetrics, StageParams, StageResult

UPSTREAM = """
from pathlib import Path
from photoforge.stage import Progress, StageInputs, StageMetrics, StageParams


class Params(StageParams):
    scale: float = 1.0


class Inputs(StageInputs):
    pass


def run(inputs: Inputs, *, out: Path, params: Params, progress: Progress) -> StageMetrics:
    (out / "value.txt").write_text(str(2.0 * params.scale))  # the stage's work
    return StageMetrics(summary="written")
"""


class DownstreamInputs(StageInputs):
    upstream: StageResult


def downstream_run(inputs: DownstreamInputs, *, out: Path, params: StageParams, progress: object) -> StageMetrics:
    return StageMetrics()


DOWNSTREAM = Stage("downstream", inputs=DownstreamInputs, params=StageParams, metrics=StageMetrics, run=downstream_run)


@pytest.fixture
def module_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "modules"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("upstream_stage", None)
    fingerprint.cache_clear()


def load(folder: Path, source: str) -> ModuleType:
    (folder / "upstream_stage.py").write_text(source)
    sys.modules.pop("upstream_stage", None)
    importlib.invalidate_caches()
    fingerprint.cache_clear()
    return importlib.import_module("upstream_stage")


def keys(module: ModuleType) -> tuple[str, str]:
    """(the upstream stage's key, the key of a stage below it that takes its artefact)."""
    stage = Stage("upstream", inputs=module.Inputs, params=module.Params, metrics=StageMetrics, run=module.run)
    key = stage.key(module.Inputs(), module.Params())
    artefact = StageResult(
        stage="upstream", key=key, path="/nowhere", metrics={}, reused=False, seconds=0, compute_seconds=0
    )
    return key, DOWNSTREAM.key(DownstreamInputs(upstream=artefact), StageParams())


def test_editing_a_stage_s_code_changes_its_key_and_those_below(module_dir: Path) -> None:
    before = keys(load(module_dir, UPSTREAM))
    after = keys(load(module_dir, UPSTREAM.replace("2.0 * params.scale", "3.0 * params.scale")))
    assert after[0] != before[0]
    assert after[1] != before[1]


def test_comments_and_layout_do_not_change_a_key(module_dir: Path) -> None:
    before = keys(load(module_dir, UPSTREAM))
    edited = UPSTREAM.replace("# the stage's work", "# writes the value").replace(
        "\n\n\nclass Inputs", "\n\nclass Inputs"
    )
    assert keys(load(module_dir, edited)) == before


def test_a_helper_module_the_stage_imports_is_part_of_its_code() -> None:
    mesh = fingerprint("photoforge.stages.mesh")
    assert "photoforge.stages.mesh" in mesh.modules
    assert "photoforge.geometry.meshing" in mesh.modules  # imported inside run: still part of the key
    assert "photoforge.stage" not in mesh.modules  # the machinery: how artefacts are stored, not what they hold


def test_the_libraries_are_those_the_stage_s_code_imports() -> None:
    splat = fingerprint("photoforge.stages.splat").libraries
    assert {"torch", "gsplat", "numpy"} <= set(splat)
    assert all(version != "absent" for version in splat.values())
    uv = fingerprint("photoforge.stages.uv").libraries
    assert {"xatlas", "open3d"} <= set(uv)
    assert "gsplat" not in uv and "torch" not in uv


def test_every_stage_is_fingerprinted_without_error() -> None:
    from photoforge.layout import STAGE_ORDER

    for name in STAGE_ORDER:
        found = fingerprint(f"photoforge.stages.{name}")
        assert len(found.code) == 16
