"""Batch runs over an inbox: one `reconstruct` run per capture folder.

Captures already done (same content, same settings, outputs on disk) are not even started;
one failing capture never stops the others; concurrency comes from Prefect's task runner.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from prefect import flow, task

from flows.reconstruct import DEFAULT_WORKSPACE, PipelineFailed, config_hash, reconstruct
from flows.runners import StoppableThreadPoolTaskRunner
from photoforge.errors import PhotoforgeError
from photoforge.io.capture_files import CaptureFolder
from photoforge.io.outputs import RUN_JSON
from photoforge.layout import capture_name
from photoforge.presets import load_preset
from photoforge.stages import ingest
from tasks.futures import result_when_done

log = logging.getLogger("photoforge")


def list_captures(inbox: Path) -> list[Path]:
    if not inbox.is_dir():
        raise PhotoforgeError(f"[batch] {inbox}: not a folder (give the inbox that holds one folder per capture)")
    return [p for p in sorted(inbox.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def already_done(capture: Path, preset: str, overrides: dict[str, Any], workspace: Path) -> bool:
    """Outputs exist from a run with the same settings over the same input content."""
    record = workspace / capture_name(str(capture)) / "outputs" / RUN_JSON
    if not record.is_file():
        return False
    try:
        done = json.loads(record.read_text())
        cfg = load_preset(preset, overrides)
        key = ingest.STAGE.key(ingest.IngestInputs(capture=CaptureFolder(path=str(capture))), cfg.ingest)
    except (PhotoforgeError, ValueError, OSError):
        return False  # unreadable record or capture: let the run itself report
    return (
        done.get("status") == "completed"
        and done.get("config_hash") == config_hash(cfg)
        and done.get("keys", {}).get("ingest") == key
        and all(Path(p).is_dir() for p in done.get("paths", {}).values())
    )


@task(name="capture", retries=0)
def run_capture(capture: str, preset: str, overrides: dict[str, Any], workspace: str) -> dict[str, Any]:
    """One capture's reconstruct run (a subflow); its failure becomes a row, not an exception."""
    started = time.perf_counter()
    row: dict[str, Any] = {"capture": Path(capture).name}
    try:
        summary = reconstruct(capture=capture, preset=preset, overrides=overrides, workspace=workspace)
        row |= {
            "status": "done",
            "outputs": summary.get("outputs"),
            "ran": [s["stage"] for s in summary["stages"] if s["status"] == "ran"],
        }
    except PipelineFailed as failed:
        last = failed.summary.stages[-1].stage if failed.summary.stages else "?"
        stage = getattr(failed.cause, "stage", None) or last  # publishing fails after the last stage's row
        row |= {"status": "failed", "stage": stage, "cause": _cause(failed.cause)}
    except PhotoforgeError as exc:
        row |= {"status": "failed", "stage": getattr(exc, "stage", "?"), "cause": str(exc)}
    except Exception as exc:  # anything else (publishing the outputs, a bug): this capture's row, not the batch's end
        log.warning("batch: capture %s failed: %s", row["capture"], _cause(exc), exc_info=True)
        row |= {"status": "failed", "stage": "?", "cause": _cause(exc)}
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def _cause(exc: BaseException) -> str:
    """Our errors read as they are; anything else with its type (an empty OSError message says little)."""
    return str(exc) if isinstance(exc, PhotoforgeError) else f"{type(exc).__name__}: {exc}"


@flow(name="process-inbox", task_runner=StoppableThreadPoolTaskRunner(max_workers=1))
def process_inbox(
    inbox: str,
    preset: str = "standard",
    workspace: str = DEFAULT_WORKSPACE,
    overrides: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Reconstruct every capture folder of `inbox` not done yet; a row per capture."""
    overrides = overrides or {}
    rows: list[dict[str, Any]] = []
    futures = []
    for capture in list_captures(Path(inbox)):
        if already_done(capture, preset, overrides, Path(workspace)):
            rows.append({"capture": capture.name, "status": "skipped", "cause": "done: same content and settings"})
            continue
        futures.append(run_capture.submit(str(capture.resolve()), preset, overrides, workspace))
    rows += [result_when_done(future) for future in futures]
    return sorted(rows, key=lambda r: r["capture"])


def with_concurrency(concurrency: int):  # type: ignore[no-untyped-def]
    """process_inbox running up to `concurrency` captures at once (Prefect's thread-pool task runner)."""
    return process_inbox.with_options(task_runner=StoppableThreadPoolTaskRunner(max_workers=max(1, concurrency)))
