"""WORKSPACE/CAPTURE/outputs: the latest run's deliverables under stable names, replaced whole."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from photoforge.layout import DELIVERABLES, REPORT_HTML, RUN_JSON
from photoforge.report.html import RUN_PLACEHOLDER
from photoforge.summary import RunSummary


def publish(outputs: Path, summary: RunSummary) -> Path:
    """Copy the deliverables of the summary's stages; report.html also gets this run's stage table."""
    staging = outputs.with_name(f".{outputs.name}-staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for row in summary.stages:
        for name in DELIVERABLES.get(row.stage, ()):
            source = Path(row.path or "") / name
            if source.is_file():
                shutil.copyfile(source, staging / name)
            elif source.is_dir():  # the report's viewer/ folder
                shutil.copytree(source, staging / name)
    record = {
        "status": summary.status,
        "preset": summary.preset,
        "overrides": summary.overrides,
        "config_hash": summary.config_hash,
        # uv and bake have a row per detail level: the first, asset.glb's, names the stage
        "keys": {row.stage: row.key for row in reversed(summary.stages) if row.key},
        "paths": {row.stage: row.path for row in reversed(summary.stages) if row.path},
        "stages": [
            row.model_dump(mode="json", include={"stage", "status", "seconds", "compute_seconds", "ran_on"})
            for row in summary.stages
        ],
    }
    (staging / RUN_JSON).write_text(json.dumps(record, indent=2) + "\n")
    report = staging / REPORT_HTML
    if report.is_file():
        report.write_text(report.read_text().replace(RUN_PLACEHOLDER, _run_table(summary)))
    old = outputs.with_name(f".{outputs.name}-old")
    shutil.rmtree(old, ignore_errors=True)
    if outputs.exists():
        outputs.rename(old)
    staging.rename(outputs)
    shutil.rmtree(old, ignore_errors=True)
    return outputs


def _run_table(summary: RunSummary) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(r.stage)}</th><td>{r.status}</td><td>{r.seconds:.1f} s</td>"
        f"<td>{html.escape(r.metric)}</td></tr>"
        for r in summary.stages
    )
    return f'<section id="this-run"><h2>This run</h2><table>{rows}</table></section>'
