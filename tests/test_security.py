"""Nothing in the workspace runs code, and the workspace file server serves only the workspace's files."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows import cli
from flows.file_server import serve_workspace
from flows.loopback import free_port


class _Touch:
    """A pickle payload: unpickling it creates `path` (stands in for any code an attacker would run)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings_of_photoforge() -> Iterator[list[str]]:
    """Warnings of the `photoforge` loggers, whatever propagation the CLI tests left set."""
    handler = _Records()
    logger = logging.getLogger("photoforge")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


# --- Prefect result records -------------------------------------------------------------------


def _pickle_record(storage_key: str, marker: Path) -> bytes:
    from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
    from prefect.serializers import PickleSerializer

    metadata = ResultRecordMetadata(storage_key=storage_key, serializer=PickleSerializer())
    return ResultRecord(metadata=metadata, result=_Touch(marker)).serialize()


def _json_record(**serializer: Any) -> bytes:
    from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
    from prefect.serializers import JSONSerializer

    from photoforge.stage import StageResult

    result = StageResult(stage="s", key="k", path="/p", metrics={"n": 1}, reused=False, seconds=1.0, compute_seconds=1)
    metadata = ResultRecordMetadata(storage_key="/p/prefect-result.json", serializer=JSONSerializer(**serializer))
    return ResultRecord(metadata=metadata, result=result).serialize()


def test_the_crafted_pickle_record_would_run_code_if_prefect_read_it(tmp_path: Path) -> None:
    """The payload used below is live: Prefect's own reader runs it (so the next test can fail)."""
    from prefect._internal.result_records import ResultRecord

    marker = tmp_path / "ran"
    ResultRecord.deserialize(_pickle_record("/x", marker))
    assert marker.exists()


@pytest.mark.usefixtures("prefect_api")
def test_a_pickle_result_record_in_the_workspace_is_a_cache_miss_not_code(
    sample_subset: Path, tmp_path: Path, warnings_of_photoforge: list[str]
) -> None:
    from prefect import flow

    from photoforge.presets import load_preset
    from photoforge.store import ArtefactStore
    from tasks.cache import RECORD_NAME
    from tasks.ingest import ingest

    params = load_preset("preview", {"ingest.max_size": 240}).ingest
    workspace = tmp_path / "ws"

    @flow(name="one-stage")
    def one_stage() -> tuple[str, dict[str, Any]]:
        store = ArtefactStore(workspace, "cap")
        state = ingest(store=store, capture=str(sample_subset), params=params, return_state=True)
        return state.name, state.result().model_dump()

    first_state, first = one_stage()
    assert first_state == "Completed" and first["reused"] is False
    record = Path(first["path"]) / RECORD_NAME
    assert json.loads(record.read_text())["metadata"]["serializer"]["type"] == "json"

    marker = tmp_path / "pwned"
    record.write_bytes(_pickle_record(str(record), marker))
    second_state, second = one_stage()
    assert not marker.exists()
    assert second_state == "Completed"  # not Cached: the record was refused; the stage reused its artefact
    assert second["path"] == first["path"] and second["reused"] is True
    assert second["metrics"] == first["metrics"]
    assert any(str(record) in m and "pickle" in m for m in warnings_of_photoforge), warnings_of_photoforge
    assert json.loads(record.read_text())["metadata"]["serializer"]["type"] == "json"  # rewritten as JSON

    third_state, third = one_stage()
    assert third_state == "Cached" and third["path"] == first["path"]


def test_stage_tasks_and_their_copies_read_records_only_through_the_check(tmp_path: Path) -> None:
    from prefect.results import ResultStore

    from tasks.ingest import ingest
    from tasks.records import UnsafeRecord

    marker, record = tmp_path / "pwned", tmp_path / "prefect-result.json"
    record.write_bytes(_pickle_record(str(record), marker))
    for task in (ingest, ingest.with_options(name="ingest-copy")):
        store = ResultStore(result_storage=task.result_storage)
        assert not store.exists(str(record))
        with pytest.raises(UnsafeRecord, match="pickle"):
            store.read(str(record))
    assert not marker.exists()


def test_plain_json_records_load_as_stage_results() -> None:
    from prefect._internal.result_records import ResultRecord

    from photoforge.stage import StageResult
    from tasks.records import checked_record

    loaded = ResultRecord.deserialize(checked_record(_json_record(), "/p/prefect-result.json")).result
    assert isinstance(loaded, StageResult) and loaded.metrics == {"n": 1} and loaded.path == "/p"


def _with_exception_metric() -> bytes:
    return _json_record().replace(b'\\"n\\": 1', b'\\"n\\": {\\"__exc_type__\\": \\"SystemExit\\"}')


REFUSED: dict[str, tuple[Any, str]] = {
    "garbage": (lambda: b"not json", "not JSON"),
    "extra-key": (lambda: b'{"metadata": {}, "result": "null", "extra": 1}', "not a Prefect result record"),
    "pickle": (lambda: b'{"metadata": {"serializer": {"type": "pickle"}}, "result": "gASVAAAA"}', "pickle"),
    "json-eval-decoder": (lambda: _json_record(object_decoder="builtins.eval"), "builtins.eval"),
    "json-pickle-lib": (lambda: _json_record().replace(b'"jsonlib":"json"', b'"jsonlib":"pickle"'), "jsonlib"),
    "other-class": (
        lambda: _json_record().replace(b"photoforge.stage.StageResult", b"subprocess.Popen"),
        "subprocess.Popen",
    ),
    "exception": (_with_exception_metric, "__exc_type__"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_records_other_than_plain_json_stage_results_are_refused(case: str) -> None:
    from tasks.records import UnsafeRecord, checked_record

    make, cause = REFUSED[case]
    with pytest.raises(UnsafeRecord, match=cause):
        checked_record(make(), "/p/prefect-result.json")


def test_what_prefect_reads_is_the_checked_record_reencoded() -> None:
    """Two JSON parsers may disagree on duplicate keys: Prefect gets the checked values, re-encoded."""
    from tasks.records import checked_record

    for content in (
        _json_record().replace(b'"metadata":{', b'"metadata":{"serializer":{"type":"pickle"},', 1),
        _json_record().replace(b'"serializer":{', b'"serializer":{"type":"pickle",', 1),
    ):
        assert b"pickle" in content
        checked = checked_record(content, "/p/prefect-result.json")
        assert b"pickle" not in checked
        assert json.loads(checked)["metadata"]["serializer"]["type"] == "json"


# --- splat checkpoints --------------------------------------------------------------------------


def test_a_checkpoint_with_a_pickle_payload_is_refused_without_running_it(tmp_path: Path) -> None:
    import torch

    from photoforge.splatting.train import CheckpointError, TrainSettings, _load_checkpoint

    settings = TrainSettings(steps=10, sh_degree=0, strategy="default", max_gaussians=10, fingerprint="run-key")
    marker = tmp_path / "pwned"
    path = tmp_path / ".checkpoint-run-key.pt"
    torch.save({"format": 1, "fingerprint": "run-key", "step": _Touch(marker)}, path)
    with pytest.raises(CheckpointError, match="cannot read the checkpoint"):
        _load_checkpoint(path, settings, {}, {}, None, {}, torch.device("cpu"))  # type: ignore[arg-type]
    assert not marker.exists()


def test_a_saved_checkpoint_loads_with_tensors_only(tmp_path: Path) -> None:
    """Everything a checkpoint holds (Adam, scheduler, strategy state, RNG) loads with weights_only=True."""
    import torch
    from gsplat.strategy import DefaultStrategy

    from photoforge.splatting.gaussians import Splats
    from photoforge.splatting.train import TrainSettings, _load_checkpoint, _optimizers, _save_checkpoint

    settings = TrainSettings(steps=10, sh_degree=1, strategy="default", max_gaussians=100, fingerprint="k")
    n = 8
    params = Splats(*(torch.rand(n, *s) for s in ((3,), (3,), (4,), (), (1, 3), (3, 3)))).as_params()
    optimizers = _optimizers(params, settings)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizers["means"], gamma=0.5)
    for name, optimizer in optimizers.items():
        params[name].grad = torch.ones_like(params[name])
        optimizer.step()
    scheduler.step()
    state = {**DefaultStrategy().initialize_state(scene_scale=2.0), "grad2d": torch.ones(n), "count": torch.ones(n)}
    path = tmp_path / "c.pt"
    _save_checkpoint(path, settings, 3, 1.5, params, optimizers, scheduler, state, [{"step": 0, "psnr": 9.5}])
    assert set(torch.load(path, weights_only=True)) >= {"params", "optimizers", "scheduler", "strategy_state"}

    fresh = Splats(*(torch.zeros(n, *s) for s in ((3,), (3,), (4,), (), (1, 3), (3, 3)))).as_params()
    fresh_optimizers = _optimizers(fresh, settings)
    fresh_scheduler = torch.optim.lr_scheduler.ExponentialLR(fresh_optimizers["means"], gamma=0.5)
    step, seconds, evaluations, loaded = _load_checkpoint(
        path, settings, fresh, fresh_optimizers, fresh_scheduler, {}, torch.device("cpu")
    )
    assert (step, seconds, evaluations) == (3, 1.5, [{"step": 0, "psnr": 9.5}])
    assert loaded["scene_scale"] == 2.0 and torch.equal(loaded["grad2d"], torch.ones(n))
    torch.testing.assert_close(fresh["means"], params["means"])
    assert fresh_scheduler.last_epoch == 1
    assert fresh_optimizers["means"].state[fresh["means"]]["step"] == 1


# --- the workspace file server ---------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    workspace = tmp_path / "ws"
    (workspace / "cap" / "outputs").mkdir(parents=True)
    (workspace / "cap" / "outputs" / "report.html").write_bytes(b"<html>report</html>")
    (workspace / ".prefect").mkdir()
    (workspace / ".prefect" / "prefect.db").write_bytes(b"SQLite format 3\x00")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (workspace / "cap" / "link.txt").symlink_to(outside)
    (workspace / "etc").symlink_to("/etc")
    (workspace / "hidden").symlink_to(workspace / ".prefect")
    port = free_port()
    server = serve_workspace(workspace, port)
    try:
        yield workspace, port
    finally:
        server.shutdown()
        server.server_close()


def _request(port: int, path: str, method: str = "GET", host: str | None = None) -> tuple[int, bytes, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=host is not None)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read(), response.headers
    finally:
        connection.close()


def test_file_server_serves_a_workspace_file(files: tuple[Path, int]) -> None:
    _, port = files
    status, body, headers = _request(port, "/cap/outputs/report.html")
    assert (status, body) == (200, b"<html>report</html>")
    assert headers["Content-Type"] == "text/html"
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, body, headers = _request(port, "/cap/outputs/report.html", host=f"localhost:{port}", method="HEAD")
    assert (status, body, headers["Content-Length"]) == (200, b"", "19")


@pytest.mark.parametrize(
    "path",
    [
        "/cap/link.txt",  # a symlink to a file outside the workspace
        "/etc/passwd",  # through a symlinked dir to /etc
        "/etc/hostname",
        "/cap/",  # a directory: no listing
        "/cap",
        "/",
        "/.prefect/prefect.db",  # Prefect's database
        "/%2eprefect/prefect.db",
        "/hidden/prefect.db",  # a symlink into a dot-folder
        "/cap/..%2f..%2fsecret.txt",  # traversal
        "/..%2fsecret.txt",
        "/missing.txt",
    ],
)
def test_file_server_serves_nothing_else(files: tuple[Path, int], path: str) -> None:
    _, port = files
    status, body, _ = _request(port, path)
    assert status == 404, (path, status, body[:200])
    assert b"secret" not in body and b"SQLite" not in body and b"root:" not in body


def test_file_server_answers_only_local_host_names(files: tuple[Path, int]) -> None:
    _, port = files
    status, body, _ = _request(port, "/cap/outputs/report.html", host="evil.example")
    assert status == 403 and b"report" not in body
    status, _, _ = _request(port, "/cap/outputs/report.html", host=f"evil.example:{port}")
    assert status == 403


def test_file_server_accepts_a_configured_host(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    port = free_port()
    server = serve_workspace(tmp_path, port, hosts=("files.internal",))
    try:
        assert _request(port, "/a.txt", host=f"files.internal:{port}")[:2] == (200, b"a")
        assert _request(port, "/a.txt", host="other.internal")[0] == 403
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_file_server_is_read_only(files: tuple[Path, int], method: str) -> None:
    _, port = files
    status, _, headers = _request(port, "/cap/outputs/report.html", method=method)
    assert status == 405 and headers["Allow"] == "GET, HEAD"


# --- photoforge ui with a port taken -------------------------------------------------------------


@pytest.mark.parametrize("taken", ["--port", "--files-port"])
def test_ui_with_a_port_taken_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, taken: str
) -> None:
    started: list[Any] = []
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: started.append(a) or 0)
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    ports = {"--port": free_port(), "--files-port": free_port()}
    ports[taken] = busy.getsockname()[1]
    try:
        code = cli.main(["ui", "--workspace", str(tmp_path / "ws"), *(str(x) for kv in ports.items() for x in kv)])
    finally:
        busy.close()
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert code != 0
    assert lines == [
        f"error: [ui] 127.0.0.1:{ports[taken]}: port in use (another photoforge ui or Prefect server?): "
        f"stop it or pass {taken}"
    ]
    assert not started  # Prefect's server was not started
    other = ports["--files-port" if taken == "--port" else "--port"]
    with socket.socket() as probe:  # the file server was not started (or was stopped) on the free port
        probe.bind(("127.0.0.1", other))
    assert not (tmp_path / "ws").exists()  # nothing was set up either
