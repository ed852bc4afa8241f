"""Deployments of the photoforge flows, served from this process (`photoforge serve`).

`reconstruct` can be started from the UI's Run form (the preset is a dropdown) or with
`prefect deployment run reconstruct/reconstruct`; `process-inbox` runs on a cron schedule.
Serving never pauses the schedule on shutdown.
"""

from __future__ import annotations

from pathlib import Path

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.batch import process_inbox
from flows.reconstruct import reconstruct


def build(workspace: Path, preset: str, inbox: Path | None, cron: str | None) -> list[RunnerDeployment]:
    items = [
        reconstruct.to_deployment(
            name="reconstruct",
            parameters={"workspace": str(workspace.resolve()), "preset": preset},
            description="Reconstruct one capture folder (parameters: capture path, preset, overrides).",
        )
    ]
    if inbox is not None:
        items.append(
            process_inbox.to_deployment(
                name="process-inbox",
                cron=cron,
                parameters={"inbox": str(inbox.resolve()), "preset": preset, "workspace": str(workspace.resolve())},
                description="Reconstruct every capture of the inbox that is not done yet.",
            )
        )
    return items


def serve_deployments(workspace: Path, preset: str, inbox: Path | None, cron: str | None) -> None:
    serve(*build(workspace, preset, inbox, cron), pause_on_shutdown=False)
