"""The photoforge command: bad input gives one clear error and a non-zero exit; runs summarise."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import cli_env, textured_rgb, write_jpeg

from flows import cli, prefect_env
from flows.loopback import free_port
from flows.shutdown import stop_process_group
from photoforge.layout import STAGE_ORDER

PHOTOFORGE = Path(sys.executable).with_name("photoforge")
FAST = [
    *("--preset", "preview", "--set", "ingest.max_size=480", "--set", "poses.max_features=2048"),
    *("--set", "depth.max_size=320", "--set", "depth.planes=32", "--set", "mesh.poisson_depth=7"),
    *("--set", "mesh.target_faces=8000", "--set", "uv.texture_size=512", "--set", "export.usdz=false"),
    *("--set", "turntable.frames=12", "--set", "turntable.width=160", "--set", "turntable.height=120"),
]
STAGES = [s for s in STAGE_ORDER if s != "splat"]  # splat is off in the standard preset


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        ("missing", "[ingest] {path}: no such file or folder"),
        ("empty", "[ingest] {path}: the folder is empty"),
        ("text-only", "[ingest] {path}: no supported files"),
    ],
)
def test_unusable_folder_fails_before_prefect_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, fragment: str
) -> None:
    path = tmp_path / setup
    if setup != "missing":
        path.mkdir()
    if setup == "text-only":
        (path / "readme.txt").write_text("no photos here")
    code, output = _main(["run", str(path), "--workspace", str(tmp_path / "ws")], capsys)
    assert code == 2
    assert fragment.format(path=path) in " ".join(output.split())
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--preset", "ultra"], "unknown preset 'ultra'"),
        (["--set", "poses.fancy=1"], "unknown parameter 'fancy' of stage 'poses'"),
        (["--set", "ingest.max_size=big"], "ingest.max_size"),
    ],
)
def test_bad_preset_or_param_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    code, output = _main(["run", str(tmp_path), *args], capsys)
    assert code == 2 and fragment in output


def test_presets_lists_every_preset_and_param(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _main(["presets"], capsys)
    assert code == 0
    for text in ("preset: preview", "preset: standard", "preset: hero", "poses.matcher", "ingest.max_size"):
        assert text in output


@pytest.mark.usefixtures("prefect_api")
def test_corrupt_photo_fails_in_ingest_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prefect_env, "configure", lambda *args, **kwargs: None)  # keep the test's Prefect API
    capture = tmp_path / "cap"
    for seed in range(3):
        write_jpeg(capture / f"p{seed}.jpg", textured_rgb(seed))
    bad = capture / "p1.jpg"
    bad.write_bytes(bad.read_bytes()[:500])
    code, output = _main(["run", str(capture), "--workspace", str(tmp_path / "ws"), *FAST], capsys)
    assert code == 2
    assert f"[ingest] {bad}: corrupt or truncated image" in " ".join(output.split())


def test_real_command_runs_then_reuses_everything(sample_subset: Path, tmp_path: Path) -> None:
    """The console script end to end, on Prefect's ephemeral API with a project-local PREFECT_HOME."""
    workspace = tmp_path / "ws"
    command = [str(PHOTOFORGE), "run", str(sample_subset), "--workspace", str(workspace), *FAST]
    env = cli_env()
    first = subprocess.run([*command, "--json", str(tmp_path / "1.json")], capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    summary = json.loads((tmp_path / "1.json").read_text())
    assert [(r["stage"], r["status"]) for r in summary["stages"]] == [(stage, "ran") for stage in STAGES]
    assert Path(summary["outputs"], "asset.glb").is_file()
    assert summary["stages"][1]["metrics"]["registered"] == 6
    assert "registering frames" in first.stderr  # progress while it works
    assert (workspace / ".prefect" / "prefect.db").is_file()

    second = subprocess.run([*command, "--json", str(tmp_path / "2.json")], capture_output=True, text=True, env=env)
    assert second.returncode == 0, second.stderr + second.stdout
    assert "nothing changed: no stage executed" in second.stdout
    again = json.loads((tmp_path / "2.json").read_text())
    assert [r["status"] for r in again["stages"]] == ["cached"] * len(STAGES)
    assert Path(again["stages"][STAGES.index("fusion")]["path"], "fused.ply").is_file()

    for name in ("asset.glb", "turntable.mp4", "report.html"):
        assert f"outputs/{name}" in second.stdout  # the closing summary names the deliverables
    shown = subprocess.run(
        [str(PHOTOFORGE), "open", sample_subset.name, "--workspace", str(workspace)], capture_output=True, text=True
    )
    assert shown.returncode == 0 and shown.stdout.count("outputs/") == 3
    _ui_shows_runs(workspace, env, expected_runs=2, capture=sample_subset.name)


def _post_json(url: str) -> list[dict]:
    request = urllib.request.Request(url, data=b"{}", headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _ui_shows_runs(workspace: Path, env: dict[str, str], expected_runs: int, capture: str) -> None:
    """`photoforge ui` serves the same database (the runs so far, reused stages Cached) and the files."""
    port, files_port = free_port(), free_port()
    ui = subprocess.Popen(
        [str(PHOTOFORGE), "ui", "--workspace", str(workspace), "--port", str(port), "--files-port", str(files_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert ui.poll() is None, "photoforge ui exited early"
            assert time.monotonic() < deadline, "photoforge ui did not answer within 90 s"
            time.sleep(0.5)
        flow_runs = _post_json(f"{base}/flow_runs/filter")
        assert len(flow_runs) == expected_runs
        assert all(run["state_name"] == "Completed" for run in flow_runs)
        task_runs = _post_json(f"{base}/task_runs/filter")
        task_states = sorted(run["state_name"] for run in task_runs if not run["name"].startswith("depth-view-"))
        assert task_states == ["Cached"] * len(STAGES) + ["Completed"] * len(STAGES)
        views = [run for run in task_runs if run["name"].startswith("depth-view-")]
        assert len(views) == 6  # sample_subset has six photos: one depth-view task each, in the first run only
        artifacts = _post_json(f"{base}/artifacts/filter")
        assert any(
            f":{files_port}/" not in str(a["data"]) and "/outputs/report.html" in str(a["data"]) for a in artifacts
        )
        report_url = f"http://127.0.0.1:{files_port}/{capture}/outputs/report.html"
        with urllib.request.urlopen(report_url, timeout=10) as response:
            assert response.status == 200 and b'<section id="verdict">' in response.read()
        with pytest.raises(urllib.error.HTTPError):  # read-only: no uploads
            urllib.request.urlopen(urllib.request.Request(report_url, data=b"x", method="PUT"), timeout=10)
    finally:
        stop_process_group(ui, grace_s=20)
