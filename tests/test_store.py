"""The artefact store: atomic writes, completeness, reuse across capture folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support_stages import demo_stage, execute, key

from photoforge.hashing import file_digest
from photoforge.stage import StageParams
from photoforge.store import ArtefactStore, atomic_dir, is_complete


class Params(StageParams):
    size: int = 3


def test_atomic_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    final = tmp_path / "stage" / "key"
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "half-written.bin").write_bytes(b"x" * 100)
        raise RuntimeError("killed mid-write")
    assert not final.exists()
    assert list((tmp_path / "stage").iterdir()) == []


def test_atomic_dir_renames_when_complete(tmp_path: Path) -> None:
    final = tmp_path / "stage" / "key"
    with atomic_dir(final) as tmp:
        (tmp / "manifest.json").write_text("{}")
        assert not final.exists()
    assert is_complete(final)


def test_stale_temp_of_dead_process_is_removed(tmp_path: Path) -> None:
    import socket

    final = tmp_path / "stage" / "key"
    final.parent.mkdir(parents=True)
    stale = final.parent / f".tmp-key-{socket.gethostname()}-999999999-abcd"
    stale.mkdir()
    with atomic_dir(final) as tmp:
        (tmp / "manifest.json").write_text("{}")
    assert not stale.exists()


def test_execute_reuses_complete_artefact_and_recomputes_deleted_one(tmp_path: Path) -> None:
    stage = demo_stage(Params)
    store = ArtefactStore(tmp_path / "ws", "cap")
    calls: list[Path] = []

    def compute(out: Path) -> dict:
        calls.append(out)
        (out / "data.txt").write_text("result")
        return {"summary": "ok"}

    first = execute(stage, store, Params(), {"x": "1"}, compute)
    second = execute(stage, store, Params(), {"x": "1"}, compute)
    assert (first.reused, second.reused) == (False, True)
    assert len(calls) == 1
    assert first.path == second.path
    import shutil

    shutil.rmtree(first.path)
    third = execute(stage, store, Params(), {"x": "1"}, compute)
    assert not third.reused and len(calls) == 2
    changed = execute(stage, store, Params(size=4), {"x": "1"}, compute)
    assert not changed.reused and changed.key != first.key


def test_failed_compute_leaves_no_complete_artefact(tmp_path: Path) -> None:
    stage = demo_stage(Params)
    store = ArtefactStore(tmp_path / "ws", "cap")

    def crash(out: Path) -> dict:
        (out / "partial").write_text("...")
        raise ValueError("boom")

    with pytest.raises(ValueError):
        execute(stage, store, Params(), {}, crash)
    demo_key = key(stage, Params(), {})
    assert store.find("demo", demo_key) is None
    assert not store.stage_dir("demo", demo_key).exists()


def test_find_reuses_another_captures_artefact(tmp_path: Path) -> None:
    stage = demo_stage(Params)
    first = execute(stage, ArtefactStore(tmp_path, "a"), Params(), {"x": "1"}, lambda out: {})
    other = ArtefactStore(tmp_path, "b")
    again = execute(stage, other, Params(), {"x": "1"}, lambda out: pytest.fail("recomputed"))
    assert again.reused and again.path == first.path


def test_file_digest_depends_on_content_not_path_or_mtime(tmp_path: Path) -> None:
    a = tmp_path / "a.jpg"
    b = tmp_path / "sub" / "b.jpg"
    b.parent.mkdir()
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    os.utime(b, (1_000_000, 1_000_000))
    assert file_digest(a) == file_digest(b)
    a.write_bytes(b"other bytes")
    assert file_digest(a) != file_digest(b)


def test_stage_key_covers_name_params_and_inputs(tmp_path: Path) -> None:
    """(The code part of keys: tests/test_code_keys.py.)"""
    stage = demo_stage(Params)
    base = key(stage, Params(), {"x": "1"})
    assert key(demo_stage(Params, name="other"), Params(), {"x": "1"}) != base
    assert key(stage, Params(size=5), {"x": "1"}) != base
    assert key(stage, Params(), {"x": "2"}) != base
    assert key(demo_stage(Params), Params(), {"x": "1"}) == base
