"""A Prefect cache policy over photoforge's artefact store.

The key is the stage's content key, and the Prefect result record lives *inside* the
artefact dir it describes: delete the dir and the record goes with it, so the task runs
again; keep it and the UI shows the task as Cached, across runs, processes and workers.
Since the record sits in the shared workspace, it is read back only as plain JSON
(tasks/records.py, through the storage that tasks/stage_task.py gives every stage task).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext

from photoforge.store import ArtefactStore

RECORD_NAME = "prefect-result.json"

# From a task's inputs: the store it writes to and the stage's content key.
KeyFunction = Callable[[dict[str, Any]], tuple[ArtefactStore, str]]


@dataclass
class ArtefactCachePolicy(CachePolicy):
    stage: str = ""
    key_function: KeyFunction | None = None

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if self.key_function is None:
            return None
        store, key = self.key_function(inputs)
        found = store.find(self.stage, key)
        target = found if found is not None else store.stage_dir(self.stage, key)
        return str(Path(target) / RECORD_NAME)
