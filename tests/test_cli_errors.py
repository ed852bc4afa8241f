"""Errors a user can cause around the run itself: the workspace, a full disk, a Prefect API that does not start.

Each gives one `error:` line, a non-zero exit, no traceback, and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import cli_env

from flows import cli

PHOTOFORGE = Path(sys.executable).with_name("photoforge")
FAST = ["--preset", "preview", "--set", "ingest.max_size=480", "--set", "poses.max_features=2048"]


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _processes_using(prefect_home: Path) -> list[psutil.Process]:
    """Processes (a Prefect server) whose PREFECT_HOME is this one: none may outlive the command."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get("PREFECT_HOME") == str(prefect_home):
                found.append(process)
    return found


def test_workspace_that_is_a_file(sample_subset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = tmp_path / "ws.txt"
    workspace.write_text("not a folder")
    code, output = _main(["run", str(sample_subset), "--workspace", str(workspace)], capsys)
    assert code == 2
    assert f"error: [run] {workspace}: --workspace is a file, not a folder" in " ".join(output.split())
    assert "Traceback" not in output
    assert workspace.read_text() == "not a folder"


def test_workspace_that_cannot_be_written(
    sample_subset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() == 0:
        workspace = Path("/sys") / f"photoforge-{uuid.uuid4().hex[:8]}"  # refused even to root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        workspace = locked / "ws"
    code, output = _main(["batch", str(sample_subset.parent), "--workspace", str(workspace)], capsys)
    assert code == 2
    assert f"error: [batch] {workspace}: cannot write the workspace" in " ".join(output.split())
    assert "Traceback" not in output


def test_prefect_api_that_does_not_start_is_one_line(sample_subset: Path, tmp_path: Path) -> None:
    """A start-up timeout (seen on a loaded machine) is retried once, then reported; no server is left."""
    workspace = tmp_path / "ws"
    env = cli_env(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="0")  # every start times out
    done = subprocess.run(
        [str(PHOTOFORGE), "run", str(sample_subset), "--workspace", str(workspace), *FAST],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: [run] Prefect's local API server did not start in 0 s")
    assert done.stderr.count("did not start in 0 s (attempt") == 2  # retried once
    assert not _processes_using(workspace / ".prefect")
    assert not (workspace / sample_subset.name).exists()  # no stage started


@contextlib.contextmanager
def _small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `path`: a real full disk (ENOSPC from the kernel)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize(
    ("size", "min_free_mb", "stage", "cause"),
    [
        ("200k", "0", "ingest", "no space left on device: free some space"),  # the kernel's ENOSPC mid-write
        ("1200k", "0", "poses", "no space left on device: 0."),  # checked before COLMAP, which would abort
        ("1200k", "64", "ingest", "no space left on device: 1."),  # the reserve every stage keeps
    ],
)
def test_full_disk_names_the_stage(
    sample_subset: Path, tmp_path: Path, size: str, min_free_mb: str, stage: str, cause: str
) -> None:
    home = tmp_path / "prefect-home"  # Prefect's database on the big disk: only the artefacts fill up
    with _small_disk(tmp_path / "small", size) as workspace:
        done = subprocess.run(
            [str(PHOTOFORGE), "run", str(sample_subset), "--workspace", str(workspace), *FAST],
            env=cli_env(PREFECT_HOME=str(home), PHOTOFORGE_MIN_FREE_MB=min_free_mb),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
        line = " ".join(done.stderr.split())
        assert f"error: [{stage}] {workspace}" in line and cause in line, line
        manifests = list(workspace.glob("*/*/*/manifest.json"))
        finished = sorted(p.parent.parent.name for p in manifests)
        assert finished == (["ingest"] if stage == "poses" else [])  # earlier artefacts intact
        assert not list(workspace.glob("*/*/.tmp-*"))  # nothing half-written left
    assert not _processes_using(home)
