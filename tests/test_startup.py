"""Start-up: commands that run no stage import none of the stages' heavy libraries, nor Prefect's flows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, cli_env

HEAVY = {"torch", "open3d", "pycolmap", "gsplat", "pymeshlab"}
ORCHESTRATION = {"flows.reconstruct", "flows.batch", "flows.deployments", "flows.gpu", "tasks.stage_task"}


def _imports(args: list[str], ok: tuple[int, ...] = (0,)) -> set[str]:
    """Every module `python -X importtime -m flows.cli ARGS` imported (its stderr lists them)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flows.cli", *args],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in ok, done.stdout + done.stderr[-3000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


@pytest.mark.parametrize(
    ("args", "ok"),
    [
        (["--help"], (0,)),
        (["run", "--help"], (0,)),
        (["presets"], (0,)),
        (["server", "status", "--workspace", "{tmp}"], (0, 1)),  # 1: no server (down)
    ],
    ids=["help", "run-help", "presets", "server-status"],
)
def test_command_imports_no_heavy_library(tmp_path: Path, args: list[str], ok: tuple[int, ...]) -> None:
    modules = _imports([arg.format(tmp=tmp_path / "ws") for arg in args], ok)
    assert {"rich.console", "flows.prefect_env"} <= modules  # the CLI's own imports are listed: the listing was read
    heavy = sorted(name for name in modules if name.split(".")[0] in HEAVY)
    assert not heavy, f"{' '.join(args)} imported {heavy[:10]}"
    assert not modules & ORCHESTRATION, f"{' '.join(args)} imported {sorted(modules & ORCHESTRATION)}"
    assert "prefect" not in modules, f"{' '.join(args)} imported Prefect"
