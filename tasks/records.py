"""Prefect result records read as plain JSON only: a record in the workspace must never run code.

A Prefect record names its own serializer, and Prefect obeys it: a record edited to the pickle
serializer (or to the JSON serializer with another `jsonlib`/`object_decoder`, or to a payload
naming any importable class) runs code on whichever worker next gets a cache hit. The workspace
is shared, so anyone who can write it could run code everywhere. Every read of a record goes
through `JsonRecordStorage.read_path`, which checks the bytes and hands Prefect a re-encoding
of what it checked (two JSON parsers never see different things). A refused record is a cache
miss: the task runs, the stage reuses its complete artefact, and Prefect writes a fresh record.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import LocalFileSystem
from prefect.serializers import JSONSerializer

log = logging.getLogger("photoforge.records")

# What photoforge's stage tasks return, as Prefect's JSON encoder names it: the one class a record may build.
ALLOWED_CLASSES = frozenset({"photoforge.stage.StageResult"})
_SERIALIZER: dict[str, Any] = JSONSerializer().model_dump(mode="json")
_METADATA_KEYS = {"storage_key", "expiration", "serializer", "prefect_version", "storage_block_id"}


class UnsafeRecord(ValueError):
    """A result record that is not a plain-JSON StageResult; Prefect treats it as absent."""


def checked_record(content: bytes, path: str) -> bytes:
    """The record re-encoded from what was checked, or UnsafeRecord: Prefect's default JSON serializer,
    a payload of plain JSON values and StageResult objects only."""
    try:
        record = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnsafeRecord(f"not JSON ({exc})") from exc
    if not isinstance(record, dict) or set(record) != {"metadata", "result"}:
        raise UnsafeRecord("not a Prefect result record")
    metadata, payload = record["metadata"], record["result"]
    if not isinstance(metadata, dict) or not set(metadata) <= _METADATA_KEYS or not isinstance(payload, str):
        raise UnsafeRecord("not a Prefect result record")
    serializer = metadata.get("serializer")
    if not isinstance(serializer, dict) or {**_SERIALIZER, **serializer} != _SERIALIZER:
        raise UnsafeRecord(f"its serializer is not plain JSON: {json.dumps(serializer)[:200]}")
    expiration, version = metadata.get("expiration"), metadata.get("prefect_version", "")
    if not isinstance(expiration, str | None) or not isinstance(version, str):
        raise UnsafeRecord("not a Prefect result record")
    try:
        value = json.loads(payload, object_hook=_plain_object)
    except json.JSONDecodeError as exc:
        raise UnsafeRecord(f"its result is not JSON ({exc})") from exc
    checked = {
        "storage_key": path,
        "expiration": expiration,
        "serializer": _SERIALIZER,
        "prefect_version": version,
        "storage_block_id": None,
    }
    return json.dumps({"metadata": checked, "result": json.dumps(value)}).encode()


def _plain_object(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse the keys by which Prefect's JSON decoder imports and builds objects, but for StageResult."""
    if "__exc_type__" in value:
        raise UnsafeRecord(f"its result builds an exception (__exc_type__ {str(value['__exc_type__'])[:100]!r})")
    if "__class__" in value and value["__class__"] not in ALLOWED_CLASSES:
        raise UnsafeRecord(f"its result builds {str(value['__class__'])[:100]!r}, not a StageResult")
    return value


def _refuse(path: str, exc: UnsafeRecord) -> None:
    log.warning("%s: ignoring this Prefect result record (%s); the stage runs again and rewrites it", path, exc)


class JsonRecordStorage(LocalFileSystem):
    """Local result storage whose reads return only checked plain-JSON records (see the module docstring)."""

    _block_type_name = "photoforge JSON records"

    async def aread_path(self, path: str) -> bytes:
        return self._checked(path, await super().aread_path(path))

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:
        return self._checked(path, super().read_path(path, _sync=True))

    def _checked(self, path: str, content: bytes) -> bytes:
        where = str(self._resolve_path(path))
        try:
            return checked_record(content, where)
        except UnsafeRecord as exc:
            _refuse(where, exc)
            raise


def record_storage() -> JsonRecordStorage:
    """Storage for records at absolute paths (the cache key is the record's path in its artefact dir)."""
    return JsonRecordStorage(basepath=str(Path("/")))
