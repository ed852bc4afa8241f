"""docs/ARCHITECTURE.md against the code: its stage order, its package map, and its toy stage run as written."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from photoforge.code_keys import fingerprint
from photoforge.layout import MESH_PLY, STAGE_ORDER
from photoforge.stage import StageResult
from photoforge.store import ArtefactStore

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
LIBRARY = ROOT / "src" / "photoforge"


def block(name: str) -> str:
    """The text between <!-- name --> and <!-- /name --> (a fenced code block's code, if it holds one)."""
    found = re.search(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->", DOC, re.S)
    assert found, f"docs/ARCHITECTURE.md has no {name} block"
    text = found.group(1)
    code = re.search(r"```python\n(.*?)```", text, re.S)
    return code.group(1) if code else text.strip()


def test_the_stage_order_is_the_code_s() -> None:
    assert block("stage-order") == " -> ".join(STAGE_ORDER)


def test_the_package_map_names_every_module_and_only_existing_ones() -> None:
    listed = set(re.findall(r"^\| `(photoforge[\w.]*)` \|", block("package-map"), re.M))
    for name in listed:
        assert importlib.util.find_spec(name) is not None, f"{name} is in the map but does not exist"
    packages = {f"photoforge.{p.name}" for p in LIBRARY.iterdir() if (p / "__init__.py").is_file()}
    modules = {f"photoforge.{p.stem}" for p in LIBRARY.glob("*.py") if p.stem != "__init__"}
    missing = sorted((packages | modules) - listed)
    assert not missing, f"add these to the package map of docs/ARCHITECTURE.md: {missing}"


@pytest.fixture
def toy_stage(tmp_path: Path) -> Iterator[ModuleType]:
    """The doc's example stage and task, as a module named face_count_stage on sys.path."""
    source = tmp_path / "modules" / "face_count_stage.py"
    source.parent.mkdir()
    source.write_text(block("example-stage") + "\n\n" + block("example-task"))
    sys.path.insert(0, str(source.parent))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module("face_count_stage")
    finally:
        sys.path.remove(str(source.parent))
        sys.modules.pop("face_count_stage", None)
        fingerprint.cache_clear()


def mesh_artefact(tmp_path: Path, key: str = "mesh0000") -> StageResult:
    import open3d as o3d

    mesh_dir = tmp_path / "mesh-artefact"
    mesh_dir.mkdir(exist_ok=True)
    o3d.io.write_triangle_mesh(str(mesh_dir / MESH_PLY), o3d.geometry.TriangleMesh.create_icosahedron())
    return StageResult(
        stage="mesh", key=key, path=str(mesh_dir), metrics={}, reused=False, seconds=0.0, compute_seconds=0.0
    )


def test_the_toy_stage_runs_caches_and_keys_as_the_doc_says(toy_stage: ModuleType, tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "workspace", "capture")
    mesh = mesh_artefact(tmp_path)
    params = toy_stage.FaceCountParams()

    first = toy_stage.STAGE.execute(store, toy_stage.FaceCountInputs(mesh=mesh), params)
    assert not first.reused
    assert first.metrics_as(toy_stage.FaceCountMetrics).faces == 20  # an icosahedron
    assert (first.dir / "faces.txt").read_text() == "20\n"
    assert (first.dir / "manifest.json").is_file()

    again = toy_stage.STAGE.execute(store, toy_stage.FaceCountInputs(mesh=mesh), params)
    assert again.reused and again.key == first.key and again.dir == first.dir

    heavier = toy_stage.STAGE.execute(
        store, toy_stage.FaceCountInputs(mesh=mesh), toy_stage.FaceCountParams(per_face=2)
    )
    assert heavier.key != first.key and heavier.metrics["weighted"] == 40.0

    other_mesh = mesh.model_copy(update={"key": "mesh1111"})
    assert toy_stage.STAGE.key(toy_stage.FaceCountInputs(mesh=other_mesh), params) != first.key


def test_the_toy_task_has_the_checked_signature(toy_stage: ModuleType, tmp_path: Path) -> None:
    from tasks.stage_task import stage_task

    assert toy_stage.face_count.name == "face_count"
    store = ArtefactStore(tmp_path / "workspace", "capture")
    result = toy_stage.face_count.fn(store, mesh=mesh_artefact(tmp_path), params=toy_stage.FaceCountParams())
    assert result.metrics["faces"] == 20

    def misnamed(store: ArtefactStore, *, meshes: StageResult, params: object) -> StageResult:
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="expected store"):
        stage_task(toy_stage.STAGE)(misnamed)
