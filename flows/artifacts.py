"""What a run shows on its Prefect UI page: a summary with pictures, a table of stage metrics, links to the files.

The UI cannot open local files, so links and pictures point at the workspace file server that
`photoforge ui` runs next to the Prefect server (127.0.0.1, read-only). Both Prefect UIs render a
markdown image as a plain <img> and the Prefect server sends no Content-Security-Policy, so the
pictures show whenever that file server is up (and as broken images when it is not).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from photoforge.layout import BAKE_JSON, POSTER, REPORT_HTML, REPORT_JSON, RUN_JSON, read_json
from photoforge.summary import RunSummary

FILES_PORT_ENV = "PHOTOFORGE_FILES_PORT"
DEFAULT_FILES_PORT = 4201
VIEWER_ANCHOR = "viewer"  # report.html's <section id="viewer">: the interactive 3D viewer
VIEWER_TEXT = "Open the 3D viewer"
MAX_SIDE_BY_SIDE = 2  # "photo | render" pictures in the summary: enough to judge, few enough to load fast


def files_url(workspace: Path, path: Path) -> str:
    """The file server's URL of a workspace file (ValueError: the file lies outside the workspace)."""
    port = int(os.environ.get(FILES_PORT_ENV, DEFAULT_FILES_PORT))
    relative = Path(path).resolve().relative_to(Path(workspace).resolve()).as_posix()
    return f"http://127.0.0.1:{port}/{quote(relative)}"


def publish_artifacts(summary: RunSummary) -> None:
    """The run's Prefect UI page: a table, a summary to judge the result by, links; keyed ones version on re-runs."""
    workspace = Path(summary.workspace)
    rows = [
        {"stage": r.stage, "status": r.status, "seconds": round(r.seconds, 2), "metric": r.metric}
        for r in summary.stages
    ]
    create_table_artifact(rows, key="stage-metrics", description="photoforge: one row per stage")
    viewer = _viewer_url(workspace, Path(summary.outputs)) if summary.outputs else None
    if viewer:
        create_link_artifact(viewer, link_text=VIEWER_TEXT, key="photoforge-viewer", description="photoforge 3D viewer")
    lines = [f"# photoforge: {summary.capture}", f"preset **{summary.preset}**, overrides `{summary.overrides}`", ""]
    lines += _pictures(summary, workspace, viewer)
    lines += [f"- **{r.stage}** ({r.status}, {r.seconds:.1f} s): {r.metric}" for r in summary.stages]
    if summary.outputs:
        outputs = Path(summary.outputs)
        links = [(n, outputs / n) for n in ("report.html", "turntable.mp4", "asset.glb") if (outputs / n).is_file()]
        lines += ["", "Files (served by `photoforge ui`):"]
        lines += [f"- [{name}]({files_url(workspace, path)})" for name, path in links]
        for name, path in links:
            create_link_artifact(files_url(workspace, path), link_text=name, description=f"photoforge {name}")
    create_markdown_artifact("\n".join(lines), key="photoforge-summary", description="photoforge run summary")


def _pictures(summary: RunSummary, workspace: Path, viewer: str | None) -> list[str]:
    """Markdown for a judgement at a glance: the turntable poster, the viewer link, photo | render pictures.

    Each part is left out when its file is missing (a failed or partial run): the summary never fails on it.
    """
    lines: list[str] = []
    poster = _url(workspace, Path(summary.outputs) / POSTER) if summary.outputs else None
    if poster:
        lines += [f"![turntable poster]({poster})", ""]
    if viewer:
        lines += [f"[{VIEWER_TEXT}]({viewer})", ""]
    bake = _stage_dir(summary, "bake")
    for path, caption in _side_by_sides(bake) if bake else []:
        url = _url(workspace, path)
        if url:
            lines += [f"![photo | render]({url})", "", caption, ""]
    return lines


def _viewer_url(workspace: Path, outputs: Path) -> str | None:
    """report.html#viewer on the file server: the report opened at its interactive 3D viewer (None: the
    report has no viewer, e.g. setup's bundle was missing)."""
    report = _url(workspace, outputs / REPORT_HTML)
    try:
        has_viewer = bool(read_json(outputs / REPORT_JSON)["viewer"]["available"])
    except (OSError, ValueError, KeyError, TypeError):
        has_viewer = False
    return f"{report}#{VIEWER_ANCHOR}" if report and has_viewer else None


def _url(workspace: Path, path: Path) -> str | None:
    """The file server's URL of a file, or None when it is missing or outside the workspace (not served)."""
    if not path.is_file():
        return None
    try:
        return files_url(workspace, path)
    except ValueError:
        return None


def _stage_dir(summary: RunSummary, stage: str) -> Path | None:
    """A stage's artefact dir: its first summary row's (bake's first row is asset.glb's level), else the one
    this run's outputs/run.json names."""
    path = next((row.path for row in summary.stages if row.stage == stage and row.path), None)
    if path is None and summary.outputs:
        try:
            path = read_json(Path(summary.outputs) / RUN_JSON)["paths"].get(stage)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            path = None
    return Path(path) if path and Path(path).is_dir() else None


def _side_by_sides(bake: Path) -> list[tuple[Path, str]]:
    """Up to MAX_SIDE_BY_SIDE "photo | render" pictures of bake.json's evaluation, left-out views first,
    with a caption each; none when bake.json is missing or unreadable."""
    try:
        evaluation: list[dict[str, Any]] = list(read_json(bake / BAKE_JSON)["evaluation"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    chosen = sorted(
        (e for e in evaluation if isinstance(e, dict) and e.get("side_by_side")), key=lambda e: not e.get("left_out")
    )
    return [(bake / str(e["side_by_side"]), _caption(e)) for e in chosen[:MAX_SIDE_BY_SIDE]]


def _caption(entry: dict[str, Any]) -> str:
    """`view (left out): photo | render, PSNR 24.1 dB`, the view's name escaped for markdown."""
    role = "left out" if entry.get("left_out") else "used for the texture"
    psnr = entry.get("psnr")
    score = f", PSNR {psnr:.1f} dB" if isinstance(psnr, int | float) else ""
    return f"*{_escape(str(entry.get('name', '?')))}* ({role}): photo | render{score}"


def _escape(text: str) -> str:
    """Backslash-escape markdown's special characters, so a file name shows as written."""
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)
