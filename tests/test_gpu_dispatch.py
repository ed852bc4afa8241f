"""Which stages go to the GPU pool, and their inputs surviving the trip as deployment parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.gpu import GPU_DEPLOYMENT, GPU_TASKS, decode, encode, gpu_deployment
from photoforge.presets import load_preset
from photoforge.stage import StageResult
from photoforge.store import ArtefactStore


def _result(stage: str) -> StageResult:
    return StageResult(stage=stage, key=f"{stage}-key", path=f"/ws/c/{stage}/k", metrics={"n": 1}, reused=False,
                       seconds=1.0, compute_seconds=1.0)  # fmt: skip


def _kwargs(stage: str) -> dict:
    cfg = load_preset("hero", {"mesh.surface": "splats"})
    store = ArtefactStore(Path("/ws"), "c")
    return {
        "depth": {"store": store, "ingest": _result("ingest"), "poses": _result("poses"), "params": cfg.depth},
        "splat": {"store": store, "depth": _result("depth"), "fusion": _result("fusion"), "params": cfg.splat},
        "mesh": {"store": store, "asset": _result("asset"), "depth": _result("depth"), "params": cfg.mesh,
                 "splat": _result("splat")},
        "turntable": {"store": store, "uv": _result("uv"), "bake": _result("bake"), "params": cfg.turntable,
                      "splat": _result("splat"), "mesh": None},
    }[stage]  # fmt: skip


@pytest.mark.parametrize("stage", sorted(GPU_TASKS))
def test_inputs_round_trip_through_json_parameters(stage: str) -> None:
    kwargs = _kwargs(stage)
    parameters = json.loads(json.dumps(encode(kwargs)))  # what the API stores
    decoded = decode(GPU_TASKS[stage], parameters)
    assert decoded == {k: v for k, v in kwargs.items() if k != "store"}
    assert all(type(decoded[k]) is type(v) for k, v in kwargs.items() if k != "store")


def test_only_stages_that_need_cuda_go_to_the_gpu_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GPU_DEPLOYMENT, raising=False)
    assert gpu_deployment("depth", _kwargs("depth")) is None  # no pool configured: inline
    monkeypatch.setenv(GPU_DEPLOYMENT, "gpu-stage/gpu")
    assert gpu_deployment("depth", _kwargs("depth")) == "gpu-stage/gpu"
    assert gpu_deployment("splat", _kwargs("splat")) == "gpu-stage/gpu"
    assert gpu_deployment("fusion", {}) is None
    mesh = _kwargs("mesh")
    assert gpu_deployment("mesh", mesh) == "gpu-stage/gpu"  # it renders the splats
    classical = mesh | {"params": mesh["params"].model_copy(update={"surface": "classical"})}
    assert gpu_deployment("mesh", classical) is None
    turntable = _kwargs("turntable")
    assert gpu_deployment("turntable", turntable) == "gpu-stage/gpu"
    assert gpu_deployment("turntable", turntable | {"splat": None}) is None
