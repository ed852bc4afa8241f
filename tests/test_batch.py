"""Batch over an inbox: every capture runs, failures stay contained, done captures are skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import textured_rgb, write_jpeg

pytestmark = pytest.mark.usefixtures("prefect_api")

FAST = {
    **{"ingest.max_size": 480, "poses.max_features": 2048, "depth.max_size": 320, "depth.planes": 32},
    **{"mesh.poisson_depth": 7, "mesh.target_faces": 8000, "uv.texture_size": 512, "export.usdz": False},
    **{"turntable.frames": 12, "turntable.width": 160, "turntable.height": 120},
}


def test_inbox_runs_skips_done_and_contains_failures(sample_subset: Path, tmp_path: Path) -> None:
    from flows.batch import process_inbox

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copytree(sample_subset, inbox / "alpha")
    shutil.copytree(sample_subset, inbox / "beta")  # same photos: its stages come from alpha's cache
    for seed in range(3):
        write_jpeg(inbox / "broken" / f"p{seed}.jpg", textured_rgb(500 + seed))  # nothing overlaps
    (inbox / ".hidden").mkdir()
    workspace = tmp_path / "ws"

    first = {r["capture"]: r for r in process_inbox(str(inbox), "preview", str(workspace), FAST)}
    assert set(first) == {"alpha", "beta", "broken"}
    assert first["alpha"]["status"] == first["beta"]["status"] == "done"
    assert first["broken"]["status"] == "failed" and first["broken"]["stage"] == "poses"
    assert "[poses]" in first["broken"]["cause"]
    assert (workspace / "alpha" / "outputs" / "asset.glb").is_file()
    assert (workspace / "beta" / "outputs" / "report.html").is_file()

    second = {r["capture"]: r for r in process_inbox(str(inbox), "preview", str(workspace), FAST)}
    assert second["alpha"]["status"] == second["beta"]["status"] == "skipped"
    assert second["broken"]["status"] == "failed"  # failures are retried, never skipped

    changed = {
        r["capture"]: r for r in process_inbox(str(inbox), "preview", str(workspace), {**FAST, "bake.blend": 0.3})
    }
    assert changed["alpha"]["status"] == "done"
    assert changed["alpha"]["ran"] == ["bake", "export", "turntable", "report"]


def test_batch_command_reports_failures_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows import cli, prefect_env

    monkeypatch.setattr(prefect_env, "configure", lambda *args, **kwargs: None)  # keep the test's Prefect API
    inbox = tmp_path / "inbox"
    (inbox / "empty-capture").mkdir(parents=True)
    code = cli.main(["batch", str(inbox), "--workspace", str(tmp_path / "ws"), "--json", str(tmp_path / "b.json")])
    output = " ".join(capsys.readouterr().out.split())
    assert code == 1
    assert "empty-capture" in output and "failed" in output and "0 done, 0 skipped, 1 failed" in output
    assert "the folder is empty" in (tmp_path / "b.json").read_text()
    assert cli.main(["batch", str(tmp_path / "no-such-inbox")]) == 2


def test_any_exception_in_one_capture_is_its_failed_row(
    sample_subset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing fails for beta (OSError) and gamma (RuntimeError, no PhotoforgeError): their rows only."""
    import flows.reconstruct
    from flows.batch import process_inbox

    real_publish = flows.reconstruct.publish

    def publish(outputs: Path, summary):  # type: ignore[no-untyped-def]
        if outputs.parent.name == "beta":
            raise OSError(28, "No space left on device", str(outputs))
        if outputs.parent.name == "gamma":
            raise RuntimeError("publishing went wrong")
        return real_publish(outputs, summary)

    monkeypatch.setattr(flows.reconstruct, "publish", publish)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("alpha", "beta", "gamma"):  # the same photos: beta and gamma reuse alpha's stages
        shutil.copytree(sample_subset, inbox / name)
    workspace = tmp_path / "ws"

    rows = {r["capture"]: r for r in process_inbox(str(inbox), "preview", str(workspace), FAST)}
    assert rows["alpha"]["status"] == "done"
    assert (workspace / "alpha" / "outputs" / "asset.glb").is_file()
    assert rows["beta"]["status"] == "failed"
    assert "no space left on device" in rows["beta"]["cause"].lower(), rows["beta"]
    assert rows["gamma"]["status"] == "failed"
    assert rows["gamma"]["cause"] == "RuntimeError: publishing went wrong", rows["gamma"]
    assert not (workspace / "beta" / "outputs").exists() and not (workspace / "gamma" / "outputs").exists()
