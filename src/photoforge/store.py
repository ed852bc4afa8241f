"""The artefact store: WORKSPACE/CAPTURE/STAGE/KEY/ directories, written atomically.

A directory under its final name is complete by construction: a stage writes into a
hidden temp directory beside it and renames it when done, so a run killed at any moment
leaves nothing that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
LOCKS = ".locks"
_TMP_PREFIX = ".tmp-"


class ArtefactStore:
    """Where one capture's stage artefacts live, and where to find reusable ones."""

    def __init__(self, root: Path, capture: str) -> None:
        self.root = Path(root).resolve()
        self.capture = capture

    def stage_dir(self, stage: str, key: str) -> Path:
        return self.root / self.capture / stage / key

    def find(self, stage: str, key: str) -> Path | None:
        """A complete artefact for this key: this capture's first, else any capture's.

        Keys are content hashes, so the same photos under another folder name reuse the work.
        """
        own = self.stage_dir(stage, key)
        if is_complete(own):
            return own
        for other in sorted(self.root.glob(f"*/{stage}/{key}")):
            if is_complete(other):
                return other
        return None

    def lock_path(self, stage: str, key: str) -> Path:
        """One lock per key across captures, as `find` reuses any capture's artefact (see locks.py)."""
        return self.root / LOCKS / f"{stage}-{key}.lock"

    def outputs_dir(self) -> Path:
        """Stable names for users: the latest run's deliverables."""
        return self.root / self.capture / "outputs"


def is_complete(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads((path / MANIFEST).read_text())


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temp dir beside `final`; rename it to `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(final)
    tmp = final.parent / f"{_TMP_PREFIX}{final.name}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        # An incomplete leftover (no manifest) or a concurrent writer's complete copy.
        if is_complete(final):
            shutil.rmtree(tmp, ignore_errors=True)
            return
        shutil.rmtree(final)
    os.rename(tmp, final)


def _remove_stale_temps(final: Path) -> None:
    """Delete temp dirs of this key left by killed processes on this host."""
    host = socket.gethostname()
    for tmp in final.parent.glob(f"{_TMP_PREFIX}{final.name}-{host}-*"):
        try:
            pid = int(tmp.name[len(f"{_TMP_PREFIX}{final.name}-{host}-") :].split("-")[0])
        except ValueError:
            continue
        if not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
