"""GPU stages on the GPU work pool: the `gpu-stage` flow runs one GPU stage's task there.

When PHOTOFORGE_GPU_DEPLOYMENT names the deployment (e.g. `gpu-stage/gpu`, deployed on a GPU pool
by prefect.yaml), `reconstruct` hands its GPU stages to it with `run_deployment` and waits;
otherwise they run inline. Artefacts travel through the shared workspace, never through Prefect:
the GPU run writes its StageResult next to them, and the caller reads it back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, get_type_hints

from prefect import Task, flow
from prefect.deployments import run_deployment
from pydantic import BaseModel

from flows.runners import view_task_runner
from photoforge.errors import StageError
from photoforge.stage import StageResult
from photoforge.store import ArtefactStore
from tasks.depth import depth
from tasks.splat import splat

GPU_DEPLOYMENT = "PHOTOFORGE_GPU_DEPLOYMENT"
GPU_TASKS: dict[str, Task[Any, StageResult]] = {"depth": depth, "splat": splat}
HANDOFF_DIR = ".gpu-runs"


def gpu_deployment(stage: str) -> str | None:
    """The deployment this stage goes to, or None to run it inline."""
    name = os.environ.get(GPU_DEPLOYMENT, "").strip()
    return name if name and stage in GPU_TASKS else None


def encode(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Task keyword arguments as JSON deployment parameters (the store travels separately)."""
    return {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in kwargs.items() if k != "store"}


def decode(task: Task[Any, StageResult], values: dict[str, Any]) -> dict[str, Any]:
    hints = get_type_hints(task.fn)
    decoded = {}
    for name, value in values.items():
        kind = hints.get(name)
        decoded[name] = kind.model_validate(value) if isinstance(kind, type) and issubclass(kind, BaseModel) else value
    return decoded


def handoff_path(workspace: str, flow_run_id: str) -> Path:
    return Path(workspace) / HANDOFF_DIR / f"{flow_run_id}.json"


@flow(name="gpu-stage", flow_run_name="{stage}-{capture}", task_runner=view_task_runner())
def gpu_stage(stage: str, workspace: str, capture: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Run one GPU stage's cached task on this (GPU) worker; its result is left in the workspace."""
    from prefect.runtime import flow_run

    task = GPU_TASKS[stage]
    state = task(store=ArtefactStore(Path(workspace), capture), **decode(task, inputs), return_state=True)
    result: StageResult = state.result()
    payload = {"result": result.model_dump(mode="json"), "cached": state.name == "Cached"}
    handoff = handoff_path(workspace, flow_run.id)
    handoff.parent.mkdir(parents=True, exist_ok=True)
    handoff.write_text(json.dumps(payload))
    return payload


def run_on_gpu_pool(deployment: str, task: Task[Any, StageResult], kwargs: dict[str, Any]) -> tuple[StageResult, bool]:
    """Start the stage on the GPU pool, wait, and read its result from the shared workspace."""
    store: ArtefactStore = kwargs["store"]
    parameters = {"stage": task.name, "workspace": str(store.root), "capture": store.capture, "inputs": encode(kwargs)}
    run = run_deployment(deployment, parameters=parameters, timeout=None, as_subflow=True)
    state = run.state
    handoff = handoff_path(str(store.root), str(run.id))
    if state is None or not state.is_completed() or not handoff.is_file():
        message = state.message if state is not None else "no state"
        raise StageError(task.name, f"the GPU run {run.name} ({deployment}) did not complete: {message}", handoff)
    payload = json.loads(handoff.read_text())
    handoff.unlink()
    return StageResult.model_validate(payload["result"]), bool(payload["cached"])
