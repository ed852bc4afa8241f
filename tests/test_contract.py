"""The stage contract holds for every stage: typed run, no stage importing another, light imports."""

from __future__ import annotations

import ast
import importlib
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from photoforge.layout import STAGE_ORDER
from photoforge.stage import Stage, StageInputs, StageMetrics, StageParams

ROOT = Path(__file__).resolve().parents[1]
STAGES_DIR = ROOT / "src" / "photoforge" / "stages"
HEAVY = ("torch", "open3d", "pycolmap", "gsplat", "pymeshlab", "xatlas", "trimesh", "cv2", "scipy", "pxr")


@pytest.mark.parametrize("name", STAGE_ORDER)
def test_each_stage_declares_its_contract(name: str) -> None:
    module = importlib.import_module(f"photoforge.stages.{name}")
    stage = module.STAGE
    assert isinstance(stage, Stage) and stage.name == name
    assert issubclass(stage.inputs, StageInputs) and stage.inputs is not StageInputs
    assert issubclass(stage.params, StageParams) and issubclass(stage.metrics, StageMetrics)
    signature = inspect.signature(stage.run)
    first, *rest = signature.parameters.values()
    assert first.annotation in (stage.inputs.__name__, stage.inputs)
    assert [(p.name, p.kind) for p in rest] == [
        ("out", inspect.Parameter.KEYWORD_ONLY),
        ("params", inspect.Parameter.KEYWORD_ONLY),
        ("progress", inspect.Parameter.KEYWORD_ONLY),
    ]
    assert rest[1].annotation in (stage.params.__name__, stage.params)
    assert signature.return_annotation in (stage.metrics.__name__, stage.metrics)
    assert not hasattr(module, "key_inputs"), "keys are derived from the Inputs, not written by hand"


def test_every_stage_s_metrics_model_lives_where_the_report_reads_it() -> None:
    import photoforge.metrics

    for name in STAGE_ORDER:
        metrics = importlib.import_module(f"photoforge.stages.{name}").STAGE.metrics
        assert getattr(photoforge.metrics, metrics.__name__) is metrics


@pytest.mark.parametrize("path", sorted(STAGES_DIR.glob("*.py")), ids=lambda p: p.stem)
def test_no_stage_module_imports_another(path: Path) -> None:
    imported: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
            imported += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
    stages = {m for m in imported if m.startswith("photoforge.stages.")}
    assert not stages, f"{path.name} imports {sorted(stages)}: use photoforge.layout for another stage's files"


def test_the_presets_list_the_stages_in_the_dag_order() -> None:
    from photoforge.presets import PipelineConfig

    assert tuple(PipelineConfig.model_fields) == STAGE_ORDER


def test_the_flow_and_the_stages_import_no_heavy_library() -> None:
    """A fully cached re-run and `photoforge presets` load none of them: stages import them in `run`."""
    code = (
        "import sys, flows.reconstruct, photoforge.presets\n"
        + "".join(f"import photoforge.stages.{name}\n" for name in STAGE_ORDER)
        + f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"imported at start-up: {done.stdout.strip()}"


def test_a_type_checker_verifies_a_stage_s_run_against_its_contract(tmp_path: Path) -> None:
    """mypy accepts the doc's toy stage and rejects the same stage whose run takes the wrong Inputs."""
    pytest.importorskip("mypy", reason="mypy is a dev dependency (scripts/setup.sh installs it)")
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    toy = doc.split("<!-- example-stage -->")[1].split("```python\n")[1].split("```")[0]
    good = tmp_path / "good_stage.py"
    good.write_text(toy)
    bad = tmp_path / "bad_stage.py"
    bad.write_text(toy.replace("def run(inputs: FaceCountInputs,", "def run(inputs: FaceCountParams,"))
    results = {}
    for path in (good, bad):
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", str(ROOT / "pyproject.toml"), path],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        results[path.name] = done.stdout
    assert "Success" in results["good_stage.py"], results["good_stage.py"]
    assert 'Cannot infer value of type parameter "I" of "Stage"' in results["bad_stage.py"], results["bad_stage.py"]


def test_the_validator_scripts_setup_installs_is_the_one_the_export_runs() -> None:
    """A moved module once looked for tools/ under src/: every validator test skipped instead of failing."""
    from photoforge.qa import gltf_validation

    assert gltf_validation.TOOLS == ROOT / "tools"
    if (ROOT / "tools" / "node_modules" / "gltf-validator").is_dir() and shutil.which("node"):
        assert gltf_validation.available()
