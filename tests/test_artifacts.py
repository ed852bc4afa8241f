"""The run's Prefect UI page: a summary with the poster and photo | render pictures, served by the file server."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from flows import artifacts, cli
from flows.artifacts import files_url, publish_artifacts
from flows.file_server import serve_workspace
from flows.loopback import free_port
from photoforge.layout import BAKE_JSON, POSTER, REPORT_HTML, REPORT_JSON
from photoforge.summary import RunSummary, StageRow

CAPTURE = "my cap"  # a space: URLs must be quoted


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 16, 3), 128, np.uint8))
    return path


def _workspace(root: Path, *, poster: bool = True, bake: bool = True, viewer: bool = True) -> RunSummary:
    """A finished run's summary over a tiny workspace: outputs with the poster and report, a bake dir."""
    workspace = root / "ws"
    outputs = workspace / CAPTURE / "outputs"
    outputs.mkdir(parents=True)
    (outputs / REPORT_HTML).write_text('<html><section id="viewer"></section></html>')
    (outputs / REPORT_JSON).write_text(json.dumps({"viewer": {"available": viewer}}))
    if poster:
        _image(outputs / POSTER)
    bake_dir = workspace / CAPTURE / "bake" / "abc123"
    if bake:
        evaluation = [
            {"name": "used_view.jpg", "left_out": False, "psnr": 30.0, "side_by_side": "eval/0002.jpg"},
            {"name": "IMG_0001 (1).jpg", "left_out": True, "psnr": 24.456, "side_by_side": "eval/0001.jpg"},
            {"name": "other.jpg", "left_out": True, "psnr": 22.0, "side_by_side": "eval/0003.jpg"},
        ]
        for entry in evaluation:
            _image(bake_dir / entry["side_by_side"])
        (bake_dir / BAKE_JSON).write_text(json.dumps({"evaluation": evaluation}))
    rows = [
        StageRow(stage="bake", status="ran", seconds=1.0, path=str(bake_dir)),
        StageRow(stage="bake", status="ran", seconds=1.0, path=str(workspace / CAPTURE / "bake" / "lod1")),
        StageRow(stage="report", status="ran", seconds=1.0, path=str(workspace / CAPTURE / "report" / "k")),
    ]
    return RunSummary(capture=CAPTURE, preset="fast", workspace=str(workspace), outputs=str(outputs), stages=rows)


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    """Prefect's artifact functions replaced by recorders: no Prefect server."""
    calls: dict[str, list[dict[str, Any]]] = {"markdown": [], "link": [], "table": []}

    def recorder(kind: str, first: str) -> Any:
        return lambda value, **kwargs: calls[kind].append({first: value, **kwargs})

    monkeypatch.setattr(artifacts, "create_markdown_artifact", recorder("markdown", "markdown"))
    monkeypatch.setattr(artifacts, "create_link_artifact", recorder("link", "link"))
    monkeypatch.setattr(artifacts, "create_table_artifact", recorder("table", "table"))
    return calls


def _images(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", markdown)


def test_the_summary_shows_the_poster_and_left_out_pictures(
    tmp_path: Path, created: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(artifacts.FILES_PORT_ENV, raising=False)
    summary = _workspace(tmp_path)
    workspace, bake = Path(summary.workspace), Path(summary.stages[0].path or "")
    publish_artifacts(summary)
    (markdown,) = [c["markdown"] for c in created["markdown"]]
    poster = files_url(workspace, Path(summary.outputs or "") / POSTER)
    assert poster == "http://127.0.0.1:4201/my%20cap/outputs/poster.png"
    left_out = [files_url(workspace, bake / f"eval/{n}.jpg") for n in ("0001", "0003")]
    assert _images(markdown) == [poster, *left_out]  # at most 2, left-out views first
    assert "IMG\\_0001 (1).jpg" in markdown and "PSNR 24.5 dB" in markdown and "used_view" not in markdown
    viewer = re.search(r"\[Open the 3D viewer\]\(([^)]+)\)", markdown)
    assert viewer is not None and viewer.group(1).endswith("/my%20cap/outputs/report.html#viewer")
    keyed = [c for c in created["link"] if c.get("key") == "photoforge-viewer"]
    assert [c["link"] for c in keyed] == [viewer.group(1)]
    assert {c["link_text"] for c in created["link"]} == {"Open the 3D viewer", "report.html"}


def test_no_viewer_link_when_the_report_has_no_viewer(tmp_path: Path, created: dict[str, list[dict[str, Any]]]) -> None:
    publish_artifacts(_workspace(tmp_path, viewer=False))
    (markdown,) = [c["markdown"] for c in created["markdown"]]
    assert "Open the 3D viewer" not in markdown and "report.html#viewer" not in markdown
    assert {c["link_text"] for c in created["link"]} == {"report.html"}


def test_a_used_view_fills_in_when_one_view_was_left_out(
    tmp_path: Path, created: dict[str, list[dict[str, Any]]]
) -> None:
    summary = _workspace(tmp_path)
    bake = Path(summary.stages[0].path or "")
    evaluation = json.loads((bake / BAKE_JSON).read_text())["evaluation"][:2]
    (bake / BAKE_JSON).write_text(json.dumps({"evaluation": evaluation}))
    publish_artifacts(summary)
    markdown = created["markdown"][0]["markdown"]
    assert [url.rsplit("/", 1)[1] for url in _images(markdown)] == ["poster.png", "0001.jpg", "0002.jpg"]
    assert "(left out)" in markdown and "(used for the texture)" in markdown


@pytest.mark.parametrize("missing", ["poster", "bake", "bake.json", "eval", "report stage rows"])
def test_missing_pictures_are_left_out_without_an_error(
    tmp_path: Path, created: dict[str, list[dict[str, Any]]], missing: str
) -> None:
    summary = _workspace(tmp_path, poster=missing != "poster", bake=missing != "bake")
    bake = Path(summary.stages[0].path or "")
    if missing == "bake.json":
        (bake / BAKE_JSON).unlink()
    elif missing == "eval":
        for image in (bake / "eval").iterdir():
            image.unlink()
    elif missing == "report stage rows":
        summary.stages, summary.outputs = [], None
    publish_artifacts(summary)
    images = _images(created["markdown"][0]["markdown"])
    assert any(url.endswith("/poster.png") for url in images) == (missing not in ("poster", "report stage rows"))
    assert any(url.endswith(".jpg") for url in images) == (missing == "poster")


def test_the_bake_dir_is_found_through_run_json(tmp_path: Path, created: dict[str, list[dict[str, Any]]]) -> None:
    summary = _workspace(tmp_path)
    bake = summary.stages[0].path
    Path(summary.outputs or "", "run.json").write_text(json.dumps({"paths": {"bake": bake}}))
    for row in summary.stages:
        row.path = None
    publish_artifacts(summary)
    assert sum(url.endswith(".jpg") for url in _images(created["markdown"][0]["markdown"])) == 2


# --- the file server sends the pictures ----------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunSummary]:
    summary = _workspace(tmp_path)
    port = free_port()
    monkeypatch.setenv(artifacts.FILES_PORT_ENV, str(port))
    server = serve_workspace(Path(summary.workspace), port)
    try:
        yield summary
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> tuple[int, bytes, str]:
    match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/[^#]*)(#.*)?", url)
    assert match is not None, url
    connection = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=30)
    try:
        connection.request("GET", match.group(2))
        response = connection.getresponse()
        return response.status, response.read(), response.headers["Content-Type"]
    finally:
        connection.close()


def test_the_file_server_sends_the_summary_pictures(served: RunSummary) -> None:
    workspace, bake = Path(served.workspace), Path(served.stages[0].path or "")
    status, body, kind = _get(files_url(workspace, bake / "eval" / "0001.jpg"))
    assert (status, kind, body[:3]) == (200, "image/jpeg", b"\xff\xd8\xff")
    status, body, kind = _get(files_url(workspace, Path(served.outputs or "") / POSTER))
    assert (status, kind, body[:4]) == (200, "image/png", b"\x89PNG")


def test_every_summary_url_is_served(served: RunSummary, created: dict[str, list[dict[str, Any]]]) -> None:
    publish_artifacts(served)
    markdown = created["markdown"][0]["markdown"]
    urls = re.findall(r"\]\((http://[^)\s]+)\)", markdown)
    assert len(urls) == 5  # poster, viewer, 2 pictures, report.html
    assert all(_get(url)[0] == 200 for url in urls), markdown


# --- photoforge open --browser -----------------------------------------------------------------


def test_open_browser_opens_the_report_at_its_viewer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import webbrowser

    summary = _workspace(tmp_path)
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    args = ["open", CAPTURE, "--workspace", summary.workspace]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert opened == []  # without --browser: the paths only
    assert cli.main([*args, "--browser"]) == 0
    report = (Path(summary.outputs or "") / REPORT_HTML).resolve()
    assert opened == [report.as_uri() + "#viewer"] and opened[0].endswith("report.html#viewer")
    assert opened[0].startswith("file:///") and "my%20cap" in opened[0]
    assert capsys.readouterr().out == printed
    assert printed.replace("\n", "") == str(report)  # the same path as without --browser (rich wraps at 120)
