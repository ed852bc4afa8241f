"""The photoforge DAG, readable in one screen: each stage a cached Prefect task."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Concatenate, Literal, NoReturn, ParamSpec

from prefect import Task, flow
from prefect.context import get_run_context
from prefect.states import State

from flows import local_runs
from flows.artifacts import publish_artifacts
from flows.gpu import for_pool, gpu_deployment, run_on_gpu_pool
from flows.runners import view_task_runner
from flows.shutdown import is_interruption
from photoforge.errors import PhotoforgeError, StageError, user_facing_os_error
from photoforge.hashing import combine
from photoforge.io.outputs import publish
from photoforge.layout import STAGE_ORDER, capture_name
from photoforge.presets import PipelineConfig, load_preset, load_presets
from photoforge.stage import StageResult
from photoforge.stages.splat import cannot_run_here
from photoforge.store import ArtefactStore
from photoforge.summary import RunSummary, StageRow
from tasks.asset import asset
from tasks.bake import bake
from tasks.depth import depth
from tasks.export import export
from tasks.fusion import fusion
from tasks.ingest import ingest
from tasks.mesh import mesh
from tasks.poses import poses
from tasks.report import report
from tasks.scale import scale
from tasks.splat import splat
from tasks.turntable import turntable
from tasks.uv import uv

DEFAULT_WORKSPACE = "workspace"
P = ParamSpec("P")
log = logging.getLogger("photoforge")


def _preset_names() -> type:
    """The presets of pipelines.yaml as a Literal: an enum in deployment schemas, a dropdown in the UI."""
    try:
        names = tuple(load_presets())
    except PhotoforgeError:
        return str
    return Literal[names]  # type: ignore[return-value,valid-type]


PresetName = _preset_names()


class PipelineFailed(PhotoforgeError):
    """A stage failed; carries the summary so far so the CLI can still print the table."""

    def __init__(self, summary: RunSummary, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.summary = summary
        self.cause = cause
        self.exit_code = getattr(cause, "exit_code", 1)


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    return f"{capture_name(params['capture'])}-{params.get('preset', 'standard')}"


@flow(name="reconstruct", flow_run_name=_run_name, task_runner=view_task_runner())
def reconstruct(
    capture: str,
    preset: PresetName = "standard",  # type: ignore[valid-type]
    overrides: dict[str, Any] | None = None,
    workspace: str = DEFAULT_WORKSPACE,
    until: str | None = None,
) -> dict[str, Any]:
    """Photos or video in `capture` -> the stages of the preset, each reused when unchanged."""
    cfg = load_preset(preset, overrides)
    store = ArtefactStore(Path(workspace), capture_name(capture))
    run = PipelineRun(
        store,
        RunSummary(
            capture=capture,
            preset=preset,
            overrides=overrides or {},
            workspace=str(store.root),
            config_hash=config_hash(cfg),
        ),
        until,
    )

    source = str(Path(capture).resolve())
    with local_runs.tracked(store.root, run.summary.flow_run_id), run:
        frames = run.stage(ingest, capture=source, params=cfg.ingest)
        sparse = run.stage(poses, ingest=frames, params=cfg.poses)
        metres = run.stage(scale, ingest=frames, poses=sparse, params=cfg.scale)
        depth_maps = run.stage(depth, ingest=frames, poses=sparse, params=cfg.depth)
        cloud = run.stage(fusion, depth=depth_maps, params=cfg.fusion)
        isolated = run.stage(asset, poses=sparse, fusion=cloud, scale=metres, params=cfg.asset)
        splats = run.optional_stage(splat, why_not(cfg), depth=depth_maps, fusion=cloud, params=cfg.splat)
        surface = run.stage(mesh, asset=isolated, depth=depth_maps, splat=splats, params=cfg.mesh)
        levels = cfg.detail_levels()  # asset.glb's (export.detail), then export.lods': a low-poly and maps each
        atlases = [run.stage(uv, mesh=surface, level=level, params=cfg.uv) for level in levels]
        textures = [
            run.stage(
                bake, capture=source, ingest=frames, poses=sparse, depth=depth_maps, mesh=surface, uv=atlas,
                params=cfg.bake,
            )
            for atlas in atlases
        ]  # fmt: skip
        atlas, texture = atlases[0], textures[0]
        delivered = run.stage(
            export, mesh=surface, uv=atlas, bake=texture, lod_uvs=atlases[1:], lod_bakes=textures[1:],
            params=cfg.export,
        )  # fmt: skip
        video = run.stage(turntable, uv=atlas, bake=texture, splat=splats, mesh=surface, params=cfg.turntable)
        results = {"ingest": frames, "poses": sparse, "scale": metres, "depth": depth_maps, "fusion": cloud}
        results |= {"asset": isolated, "mesh": surface}
        results |= {"splat": splats} if splats is not None else {}
        results |= {"uv": atlas, "bake": texture, "export": delivered, "turntable": video}
        run.stage(report, capture=capture, results=results, preset=preset, overrides=overrides or {}, params=cfg.report)
    if run.summary.stages and run.summary.stages[-1].stage in ("export", "turntable", "report"):
        try:
            run.summary.outputs = str(publish(store.outputs_dir(), run.summary))
        except OSError as exc:
            run.summary.status = "failed"
            run.summary.error = str(exc)
            raise PipelineFailed(run.summary, user_facing_os_error("outputs", exc)) from exc
    publish_artifacts(run.summary)

    return run.summary.model_dump(mode="json")


def why_not(cfg: PipelineConfig) -> str | None:
    """Why the splat stage is left out of this run (None: it runs).

    Off in the preset; or too big for this machine with no GPU pool to send it to, while the mesh
    does not need it (a run that needs the splats fails in the stage with the settings to change).
    """
    if not cfg.splat.enabled:
        return "off in the preset (splat.enabled)"
    if gpu_deployment("splat") is not None or cfg.mesh.surface == "splats":
        return None
    return cannot_run_here(cfg.splat)


def config_hash(cfg: PipelineConfig) -> str:
    """Identifies the full set of stage params a run used (batch skips captures done with the same)."""
    return combine(cfg.model_dump(mode="json"))


class _UntilReached(Exception):
    pass


class PipelineRun:
    """Runs stage tasks in order, records a summary row each, stops after `until` or a failure."""

    # The summary of this process's latest run, for a CLI stopped by a signal to print what was done.
    latest: RunSummary | None = None

    def __init__(self, store: ArtefactStore, summary: RunSummary, until: str | None) -> None:
        if until is not None and until not in STAGE_ORDER:
            raise StageError("flow", f"--until {until!r}: unknown stage (known: {', '.join(STAGE_ORDER)})")
        self.store = store
        self.summary = summary
        PipelineRun.latest = summary
        self.until = until
        try:
            self.summary.flow_run_id = str(get_run_context().flow_run.id)  # type: ignore[union-attr]
        except Exception:
            self.summary.flow_run_id = None

    def __enter__(self) -> PipelineRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        return exc_type is _UntilReached

    def stage(
        self, task: Task[Concatenate[ArtefactStore, P], StageResult], *args: P.args, **kwargs: P.kwargs
    ) -> StageResult:
        """Run one stage task on this run's store (reused when its key is complete, on the GPU pool when
        one serves it); record its row; stop the run after `until` or a failure."""
        if args:
            raise TypeError(f"{task.name}: pass stage inputs by name")
        return self._stage(task, {"store": self.store, **kwargs})

    def _stage(self, task: Any, kwargs: dict[str, Any]) -> StageResult:
        start = time.perf_counter()
        deployment = gpu_deployment(task.name, kwargs)
        if deployment is not None:
            kwargs = for_pool(task.name, kwargs)  # keyed as the pool runs it, here and there
        try:
            remote = deployment is not None and not _already_cached(task, kwargs)
            if remote:
                result, cached = run_on_gpu_pool(str(deployment), task, kwargs)
        except Exception as exc:
            self._failed(task.name, time.perf_counter() - start, exc)
        if remote:
            row = StageRow.from_result(result, cached=cached, seconds=time.perf_counter() - start)
            self.summary.stages.append(row.model_copy(update={"ran_on": deployment}))
        else:
            try:
                state: State = task(**kwargs, return_state=True)
            except BaseException as exc:
                if is_interruption(exc):
                    self._interrupted(task.name, time.perf_counter() - start)
                raise
            seconds = time.perf_counter() - start
            if state.is_failed() or state.is_crashed() or not state.is_completed():
                cause = state.result(raise_on_failure=False)
                if not isinstance(cause, BaseException):
                    cause = RuntimeError(f"{task.name}: {state.message}")
                self._failed(task.name, seconds, cause, where=self.store.root / self.store.capture / task.name)
            result = state.result()
            self.summary.stages.append(StageRow.from_result(result, cached=state.name == "Cached", seconds=seconds))
        if task.name == self.until:
            raise _UntilReached
        return result

    def optional_stage(
        self,
        task: Task[Concatenate[ArtefactStore, P], StageResult],
        skip_reason: str | None,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> StageResult | None:
        """A stage the preset may leave out: a 'skipped' row with the reason (a warning unless it is off)."""
        if skip_reason is None:
            return self.stage(task, *args, **kwargs)
        if not skip_reason.startswith("off in the preset"):
            log.warning("%s skipped: %s", task.name, skip_reason)
            self.summary.stages.append(StageRow(stage=task.name, status="skipped", seconds=0.0, metric=skip_reason))
        if task.name == self.until:
            raise _UntilReached
        return None

    def _failed(self, stage: str, seconds: float, cause: BaseException, where: Path | None = None) -> NoReturn:
        self.summary.stages.append(StageRow(stage=stage, status="failed", seconds=round(seconds, 3)))
        self.summary.status = "failed"
        cause = user_facing_os_error(stage, cause, where)
        self.summary.error = str(cause)
        raise PipelineFailed(self.summary, cause) from cause

    def _interrupted(self, stage: str, seconds: float) -> None:
        self.summary.stages.append(StageRow(stage=stage, status="interrupted", seconds=round(seconds, 3)))
        self.summary.status = "interrupted"


def _already_cached(task: Any, kwargs: dict[str, Any]) -> bool:
    """A complete artefact for this key exists: reuse it here rather than wake the GPU pool."""
    store, key = task.cache_policy.key_function(kwargs)
    return store.find(task.name, key) is not None
