"""What a run shows on its Prefect UI page: a summary, a table of stage metrics, links to the files.

The UI cannot open local files, so links point at the workspace file server that
`photoforge ui` runs next to the Prefect server (127.0.0.1, read-only).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from photoforge.summary import RunSummary

FILES_PORT_ENV = "PHOTOFORGE_FILES_PORT"
DEFAULT_FILES_PORT = 4201


def files_url(workspace: Path, path: Path) -> str:
    port = int(os.environ.get(FILES_PORT_ENV, DEFAULT_FILES_PORT))
    relative = Path(path).resolve().relative_to(Path(workspace).resolve()).as_posix()
    return f"http://127.0.0.1:{port}/{quote(relative)}"


def publish_artifacts(summary: RunSummary) -> None:
    workspace = Path(summary.workspace)
    rows = [
        {"stage": r.stage, "status": r.status, "seconds": round(r.seconds, 2), "metric": r.metric}
        for r in summary.stages
    ]
    create_table_artifact(rows, key="stage-metrics", description="photoforge: one row per stage")
    lines = [f"# photoforge: {summary.capture}", f"preset **{summary.preset}**, overrides `{summary.overrides}`", ""]
    lines += [f"- **{r.stage}** ({r.status}, {r.seconds:.1f} s): {r.metric}" for r in summary.stages]
    if summary.outputs:
        outputs = Path(summary.outputs)
        links = [(n, outputs / n) for n in ("report.html", "turntable.mp4", "asset.glb") if (outputs / n).is_file()]
        lines += ["", "Files (served by `photoforge ui`):"]
        lines += [f"- [{name}]({files_url(workspace, path)})" for name, path in links]
        for name, path in links:
            create_link_artifact(files_url(workspace, path), link_text=name, description=f"photoforge {name}")
    create_markdown_artifact("\n".join(lines), key="photoforge-summary", description="photoforge run summary")
