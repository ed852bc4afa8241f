"""Deployments of the photoforge flows: served from this process (`photoforge serve`), or put on
Prefect work pools from prefect.yaml (`photoforge deploy`), where workers pick them up.

`reconstruct` can be started from the UI's Run form (the preset is a dropdown) or with
`prefect deployment run reconstruct/reconstruct`; `process-inbox` runs on a cron schedule.
Serving never pauses the schedule on shutdown.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.batch import process_inbox
from flows.reconstruct import reconstruct
from flows.zombies import MIN_HEARTBEAT_S, check_timing, ensure_zombie_automation
from photoforge.errors import PhotoforgeError


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
    # served runs heartbeat as often as the pools' may: the automation of `photoforge deploy` watches them too
    serve(*build(workspace, preset, inbox, cron), pause_on_shutdown=False, heartbeat_seconds=MIN_HEARTBEAT_S)


ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = ROOT / "prefect.yaml"
GPU_STAGE_DEPLOYMENT = "gpu-stage/gpu"


@dataclass(frozen=True)
class PoolSetup:
    """What `photoforge deploy` puts on the Prefect server: pools, and prefect.yaml's deployments."""

    workspace: Path
    inbox: Path
    preset: str = "standard"
    cron: str = "0 * * * *"
    cpu_pool: str = "photoforge-cpu"
    gpu_pool: str | None = "photoforge-gpu"
    gpu_concurrency: int = 1
    gpu_root: Path = ROOT  # the checkout on GPU workers (/app in the Docker image)
    heartbeat_s: int = 30  # the pools' flow runs report they are alive this often (Prefect's minimum: 30)
    crash_after_s: int = 600  # a run not heard of for this long lost its process (long C calls can starve heartbeats)

    def environment(self) -> dict[str, str]:
        """The values prefect.yaml reads (`{{ $NAME }}`)."""
        return {
            "PHOTOFORGE_ROOT": str(ROOT),
            "PHOTOFORGE_GPU_ROOT": str(self.gpu_root),
            "PHOTOFORGE_WORKSPACE": str(self.workspace.resolve()),
            "PHOTOFORGE_INBOX": str(self.inbox.resolve()),
            "PHOTOFORGE_PRESET": self.preset,
            "PHOTOFORGE_CRON": self.cron,
            "PHOTOFORGE_CPU_POOL": self.cpu_pool,
            "PHOTOFORGE_GPU_POOL": self.gpu_pool or self.cpu_pool,
            "PHOTOFORGE_GPU_DEPLOYMENT": GPU_STAGE_DEPLOYMENT if self.gpu_pool else "",
            "PHOTOFORGE_HEARTBEAT_S": str(self.heartbeat_s),
        }


def ensure_pool(name: str, concurrency: int | None) -> None:
    """A process work pool with this concurrency limit (created when missing)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type="process", concurrency_limit=concurrency))
        except ObjectAlreadyExists:
            if concurrency is not None:  # keep a limit set by hand on a pool we do not limit
                client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=concurrency))
        except httpx.HTTPError as exc:
            raise PhotoforgeError(
                f"[deploy] the Prefect server does not answer ({exc}): is PREFECT_API_URL right?"
            ) from exc


def deploy_to_pools(setup: PoolSetup) -> None:
    """Create the pools, `prefect deploy --all` on prefect.yaml with the setup's values, and the
    automation that marks runs whose worker died Crashed (their runs heartbeat: prefect.yaml)."""
    check_timing(heartbeat_s=setup.heartbeat_s, crash_after_s=setup.crash_after_s)
    ensure_pool(setup.cpu_pool, None)
    if setup.gpu_pool:
        ensure_pool(setup.gpu_pool, setup.gpu_concurrency)
    command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_YAML)]
    done = subprocess.run(command, cwd=ROOT, env=os.environ | setup.environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise PhotoforgeError(f"[deploy] prefect deploy failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    ensure_zombie_automation(heartbeat_s=setup.heartbeat_s, crash_after_s=setup.crash_after_s)
