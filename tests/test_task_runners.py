"""Per-view depth through Prefect task runners: a thread pool by default, prefect-dask's DaskTaskRunner.

The maps must be the same whichever runner computed them, and each view must be its own task run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.task_runners import ThreadPoolTaskRunner

from flows.runners import DASK_ADDRESS, view_task_runner
from photoforge.layout import DEPTH_JSON
from photoforge.stages import depth as depth_stage
from photoforge.store import ArtefactStore
from tasks.depth import depth

pytestmark = pytest.mark.usefixtures("prefect_api")


def _maps(depth_dir: Path) -> dict[str, np.ndarray]:
    records = json.loads((depth_dir / DEPTH_JSON).read_text())["views"]
    out = {}
    for record in records:
        with np.load(depth_dir / record["map"]) as maps:
            out[record["name"]] = maps["depth"]
    return out


def _depth_in_flow(runner, dense_run: dict, root: Path, params) -> tuple:  # type: ignore[no-untyped-def]
    @flow(task_runner=runner)
    def depth_only() -> tuple:
        from prefect.runtime import flow_run

        store = ArtefactStore(root, "synthetic")
        return depth(store=store, ingest=dense_run["frames"], poses=dense_run["sparse"], params=params), flow_run.id

    return depth_only()


def _view_task_names(flow_run_id: str) -> list[str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted(r.name for r in runs if r.name.startswith("depth-view-"))


def test_views_through_thread_pool_and_dask_match_the_serial_library(
    dense_run: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = dense_run["cfg"].depth.model_copy(update={"max_size": 160, "planes": 16})
    serial = depth_stage.STAGE.execute(
        ArtefactStore(tmp_path / "serial", "synthetic"),
        depth_stage.DepthInputs(ingest=dense_run["frames"], poses=dense_run["sparse"]),
        params,
    )
    expected = _maps(serial.dir)
    assert len(expected) == 20

    monkeypatch.delenv(DASK_ADDRESS, raising=False)
    assert isinstance(view_task_runner(), ThreadPoolTaskRunner)
    threads, threads_run = _depth_in_flow(ThreadPoolTaskRunner(max_workers=2), dense_run, tmp_path / "threads", params)

    monkeypatch.setenv(DASK_ADDRESS, "local:2")
    runner = view_task_runner()
    assert type(runner).__name__ == "DaskTaskRunner"
    dask, dask_run = _depth_in_flow(runner, dense_run, tmp_path / "dask", params)

    for result, run_id in ((threads, threads_run), (dask, dask_run)):
        assert result.key == serial.key and not result.reused  # computed again, in its own workspace
        got = _maps(result.dir)
        assert got.keys() == expected.keys()
        for name, depth_map in expected.items():
            np.testing.assert_allclose(got[name], depth_map, rtol=1e-5, atol=1e-6)
        assert _view_task_names(str(run_id)) == sorted(f"depth-view-{name}" for name in expected)
