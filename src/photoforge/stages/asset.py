"""Stage asset: decide object or scene, and for an object keep the object alone (isolation).

Object: the region the cameras look at, the supporting plane (ground, table, or the wall behind
a mounted object) found and removed, disconnected floaters dropped; the asset frame's up comes from
the support. Scene: the cloud untouched. Writes the kept points (object.ply), what was removed
(removed.ply) and isolation.json, which the mesh stage frames the surface with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from photoforge.metrics import AssetMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult


class AssetParams(StageParams):
    kind: Literal["auto", "object", "scene"] = Field(
        "auto", description="object: isolate what the cameras look at; scene: keep everything; auto: from the cameras"
    )
    crop: list[float] | None = Field(
        None, description="[x0,y0,z0,x1,y1,z1] box in the asset frame (y up, metres with a scale): overrides the automatic one"
    )
    remove_support: bool = Field(True, description="object: find the ground, table or wall and remove it")
    support_band: float = Field(
        0.015, gt=0.0, lt=0.5, description="object: points this close to the support plane (share of the object's size) go"
    )
    keep_floaters: bool = Field(False, description="object: keep pieces not connected to the main object")

    @field_validator("crop")
    @classmethod
    def _a_box(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) != 6 or any(value[i] >= value[i + 3] for i in range(3))):
            raise ValueError("give six numbers x0,y0,z0,x1,y1,z1 with x0 < x1, y0 < y1, z0 < z1")
        return value


class AssetInputs(StageInputs):
    poses: StageResult
    fusion: StageResult
    scale: StageResult


def run(inputs: AssetInputs, *, out: Path, params: AssetParams, progress: Progress) -> AssetMetrics:
    raise NotImplementedError  # being written (issue 13)


STAGE = Stage("asset", inputs=AssetInputs, params=AssetParams, metrics=AssetMetrics, run=run)
