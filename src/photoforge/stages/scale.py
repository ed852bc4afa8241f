"""Stage scale: metres per SfM unit from ArUco markers of known size seen in the frames.

Structure from motion fixes a reconstruction only up to scale; markers printed at a known size
(or the object's known height) give the asset real units (glTF's unit is the metre).

The size: scale.marker_size, else markers.yaml beside the photos (ingest copies it). Without one, or
when no marker triangulates (a warning says what to check), scale.json carries the object's height
for the asset stage to apply, else says the units stay SfM's: a missing scale never fails a run.
The estimate and its spread: photoforge.camera.markers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from photoforge.layout import MARKERS_YAML, SCALE_JSON, SPARSE_DIR, Frames, ScaleEstimate
from photoforge.metrics import ScaleMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams, StageResult
from photoforge.store import write_json

if TYPE_CHECKING:
    import numpy as np
    import pycolmap

    from photoforge.camera.markers import Corners, LocatedMarker, MarkerSpec
    from photoforge.camera.model import Camera

log = logging.getLogger("photoforge")

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
    max_reprojection_error: float = Field(
        3.0, gt=0.0, description="px (RMS over a marker's corners): a view farther from the others is left out"
    )
    max_spread: float = Field(
        2.0, gt=0.0, description="% spread of the per-side scales above which a warning asks to check the prints"
    )


class ScaleInputs(StageInputs):
    ingest: StageResult
    poses: StageResult


def run(inputs: ScaleInputs, *, out: Path, params: ScaleParams, progress: Progress) -> ScaleMetrics:
    spec = marker_spec(params, inputs.ingest.dir / MARKERS_YAML)
    if spec is None:
        return _without_markers(out, params, "no marker size (scale.marker_size or markers.yaml)")
    from photoforge.camera.markers import DICTIONARIES, pick_dictionary

    names = list(DICTIONARIES) if spec.dictionary == "auto" else [spec.dictionary]
    sightings, cameras = _sightings(inputs, names, progress)
    dictionary, markers = pick_dictionary(sightings, cameras, max_error=params.max_reprojection_error)
    if not markers:
        seen = {view for by_view in sightings.values() for view, corners in by_view.items() if corners}
        log.warning(
            "scale: no %g m marker triangulated: dictionaries tried %s; markers detected in %d of %d registered "
            "frames; check each marker is flat, sharp, has a white margin and is seen whole in at least two "
            "photos (or set scale.dictionary)",
            spec.size, ", ".join(names), len(seen), len(cameras),
        )  # fmt: skip
        return _without_markers(out, params, f"no {spec.size:g} m markers found in {len(cameras)} views")
    return _with_markers(out, params, spec=spec, dictionary=dictionary, markers=markers)


def marker_spec(params: ScaleParams, markers_yaml: Path) -> MarkerSpec | None:
    """The markers' size and dictionary: the params win over markers.yaml (copied by ingest); None: no size."""
    from photoforge.camera.markers import MarkerSpec, read_marker_spec

    spec = read_marker_spec(markers_yaml) if markers_yaml.is_file() else None
    size = params.marker_size or (spec.size if spec else 0.0)
    if size <= 0:
        return None
    dictionary = params.dictionary if params.dictionary != "auto" or spec is None else spec.dictionary
    return MarkerSpec(size, dictionary)


def _sightings(
    inputs: ScaleInputs, names: list[str], progress: Progress
) -> tuple[dict[str, dict[str, Corners]], dict[str, Camera]]:
    """Per dictionary, per registered view: its markers' corners, lens distortion taken out; and the views."""
    import pycolmap

    from photoforge.camera.markers import MarkerDetector
    from photoforge.camera.views import load_views

    model = pycolmap.Reconstruction(inputs.poses.dir / SPARSE_DIR)
    views, _ = load_views(model)
    images = Frames.read(inputs.ingest.dir).images
    detector = MarkerDetector(names)
    sightings: dict[str, dict[str, Corners]] = {name: {} for name in names}
    for i, view in enumerate(views, 1):
        found = detector.detect_file(images / view.name)
        lens = model.camera(model.find_image_with_name(view.name).camera_id)
        for name, corners in found.items():
            sightings[name][view.name] = {m: _pinhole(lens, view.camera.k, c) for m, c in corners.items()}
        progress(i, len(views), f"{view.name}: {max(map(len, found.values()), default=0)} markers")
    return sightings, {v.name: v.camera for v in views}


def _pinhole(lens: pycolmap.Camera, k: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Detected pixels with the lens distortion taken out, in the pinhole camera `k` the views use."""
    normalised = lens.cam_from_img(pixels)
    return normalised @ k[:2, :2].T + k[:2, 2]


def _with_markers(
    out: Path, params: ScaleParams, *, spec: MarkerSpec, dictionary: str | None, markers: list[LocatedMarker]
) -> ScaleMetrics:
    """scale.json and the metrics from the triangulated markers; a warning when they disagree."""
    from photoforge.camera.markers import metres_per_unit

    scale, spread = metres_per_unit(markers, spec.size)
    if spread > params.max_spread:
        log.warning(
            "scale: the markers disagree by %.1f%% (> scale.max_spread %.1f%%): check they are all printed at "
            "%g m, flat, and that printing did not rescale them",
            spread, params.max_spread, spec.size,
        )  # fmt: skip
    views = len({view for m in markers for view in m.views})
    estimate = ScaleEstimate.model_validate(
        {
            "source": "markers",
            "metres_per_unit": scale,
            "spread_percent": spread,
            "marker_size_m": spec.size,
            "dictionary": dictionary,
            "views_with_markers": views,
            "markers": [m.to_json(spec.size) for m in markers],
        }
    )
    write_json(out / SCALE_JSON, estimate.model_dump())
    return ScaleMetrics(
        source="markers",
        units="m",
        marker_size_m=spec.size,
        dictionary=dictionary,
        markers_found=len(markers),
        views_with_markers=views,
        metres_per_unit=scale,
        spread_percent=spread,
        summary=f"scale {scale:.4g} m/unit from {len(markers)} markers in {views} views (spread {spread:.1f}%)",
    )


def _without_markers(out: Path, params: ScaleParams, why: str) -> ScaleMetrics:
    """scale.json without a marker scale: the object's height for the asset stage to apply, or SfM units."""
    if params.object_height > 0:
        estimate = ScaleEstimate(source="object_height", object_height_m=params.object_height)
        summary = f"object height {params.object_height:g} m (applied by the asset stage); {why}"
    else:
        estimate = ScaleEstimate(source="none")
        summary = f"SfM units: {why}, no object height"
    write_json(out / SCALE_JSON, estimate.model_dump())
    return ScaleMetrics(
        source=estimate.source,
        units="sfm" if estimate.source == "none" else "m",
        marker_size_m=None,
        dictionary=None,
        markers_found=0,
        views_with_markers=0,
        metres_per_unit=None,
        spread_percent=None,
        summary=summary,
    )


STAGE = Stage("scale", inputs=ScaleInputs, params=ScaleParams, metrics=ScaleMetrics, run=run)
