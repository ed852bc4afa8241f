"""Content hashes: the basis of every cache key (file content, never paths or mtimes)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
# (path, size, mtime_ns, inode) -> digest. The stat tuple only memoises a digest within one
# process (the CachePolicy and the stage both ask); the digest itself is of the bytes.
_memo: dict[tuple[str, int, int, int], str] = {}


def file_digest(path: Path) -> str:
    """blake2b of a file's bytes, memoised per process by its stat signature."""
    st = os.stat(path)
    sig = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    cached = _memo.get(sig)
    if cached is not None:
        return cached
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    _memo[sig] = digest
    return digest


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal values hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def combine(parts: Iterable[str] | Mapping[str, Any], length: int = 16) -> str:
    """Hash an ordered sequence (or a mapping) of already-canonical parts into a short key."""
    h = hashlib.blake2b(digest_size=16)
    h.update(canonical_json(parts if isinstance(parts, Mapping) else list(parts)).encode())
    return h.hexdigest()[:length]
