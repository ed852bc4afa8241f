"""Stage scale: metres per SfM unit from ArUco markers of known size seen in the frames.

Structure from motion fixes a reconstruction only up to scale; markers printed at a known size
(or the object's known height) give the asset real units (glTF's unit is the metre).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from photoforge.metrics import ScaleMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult

ARUCO_DICTIONARIES = ("auto", "4x4_50", "4x4_100", "4x4_250", "4x4_1000", "5x5_50", "5x5_100", "5x5_250",
                      "5x5_1000", "6x6_50", "6x6_250", "6x6_1000", "7x7_50", "7x7_1000", "aruco_original",
                      "apriltag_36h11")  # fmt: skip


class ScaleParams(StageParams):
    marker_size: float = Field(
        0.0, ge=0.0, description="printed ArUco marker side in metres, black border included (0: markers.yaml or none)"
    )
    dictionary: Literal[ARUCO_DICTIONARIES] = Field(  # type: ignore[valid-type]
        "auto", description="the markers' ArUco dictionary (auto: the common ones are tried)"
    )
    object_height: float = Field(
        0.0, ge=0.0, description="without markers: the object's real height in metres (object captures)"
    )


class ScaleInputs(StageInputs):
    ingest: StageResult
    poses: StageResult


def run(inputs: ScaleInputs, *, out: Path, params: ScaleParams, progress: Progress) -> ScaleMetrics:
    raise NotImplementedError  # being written (issue 13)


STAGE = Stage("scale", inputs=ScaleInputs, params=ScaleParams, metrics=ScaleMetrics, run=run)
