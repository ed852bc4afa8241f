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
from prefect.exceptions import ObjectNotFound
from pydantic import BaseModel, TypeAdapter

from flows.runners import view_task_runner
from photoforge.errors import StageError
from photoforge.stage import StageResult
from photoforge.stages.depth import DepthParams
from photoforge.store import ArtefactStore
from tasks.depth import depth
from tasks.mesh import mesh
from tasks.splat import splat
from tasks.turntable import turntable

GPU_DEPLOYMENT = "PHOTOFORGE_GPU_DEPLOYMENT"
GPU_TASKS: dict[str, Task[Any, StageResult]] = {
    "depth": depth,
    "splat": splat,
    "mesh": mesh,  # only with mesh.surface=splats: it renders the splats
    "turntable": turntable,  # only when splats ran: it renders them on the orbit
}
GPU_TIMEOUT = "PHOTOFORGE_GPU_TIMEOUT_S"
HANDOFF_DIR = ".gpu-runs"


def gpu_deployment(stage: str, kwargs: dict[str, Any] | None = None) -> str | None:
    """The deployment this stage goes to, or None to run it inline.

    depth and splat always need the GPU; mesh and turntable only when they render splats.
    """
    name = os.environ.get(GPU_DEPLOYMENT, "").strip()
    if not name or stage not in GPU_TASKS:
        return None
    kwargs = kwargs or {}
    if stage == "mesh" and getattr(kwargs.get("params"), "surface", None) != "splats":
        return None
    if stage == "turntable" and kwargs.get("splat") is None:
        return None
    return name


def for_pool(stage: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The task inputs as the GPU pool runs them: depth's `auto` backend becomes `cuda`.

    The key hashes the backend that runs (photoforge.stages.depth), and `auto` resolves from the
    local pycolmap: on a CPU orchestrator that would be `cpu`, and a CPU result on disk would pass
    for the pool's. Resolved here, the orchestrator's cache check and the GPU worker key alike.
    """
    params = kwargs.get("params")
    if stage == "depth" and isinstance(params, DepthParams) and params.backend == "auto":
        return kwargs | {"params": params.model_copy(update={"backend": "cuda"})}
    return kwargs


def encode(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Task keyword arguments as JSON deployment parameters (the store travels separately)."""
    return {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in kwargs.items() if k != "store"}


def decode(task: Task[Any, StageResult], values: dict[str, Any]) -> dict[str, Any]:
    """Deployment parameters back to the task's own types (StageResult | None included)."""
    hints = get_type_hints(task.fn)
    return {name: TypeAdapter(hints[name]).validate_python(value) for name, value in values.items()}


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
    timeout = float(os.environ.get(GPU_TIMEOUT, 24 * 3600))
    try:
        run = run_deployment(deployment, parameters=parameters, timeout=timeout, as_subflow=True)
    except ObjectNotFound as exc:
        raise StageError(
            task.name, f"deployment {deployment} not found: run `photoforge deploy`, or unset {GPU_DEPLOYMENT}"
        ) from exc
    state = run.state
    handoff = handoff_path(str(store.root), str(run.id))
    if state is None or not state.is_completed() or not handoff.is_file():
        message = f"{state.name}: {state.message or ''}" if state is not None else "no state"
        hint = " (is a worker running on the GPU pool?)" if state is not None and not state.is_final() else ""
        raise StageError(task.name, f"the GPU run {run.name} ({deployment}) did not complete{hint}: {message}")
    payload = json.loads(handoff.read_text())
    handoff.unlink()
    return StageResult.model_validate(payload["result"]), bool(payload["cached"])
