"""ArUco markers of a known printed size: markers.yaml, detection in a frame, triangulation, metres per unit.

Structure from motion knows shape, not size. A marker's four outer corners, triangulated in the
registered views, give its side in SfM units; the printed side over it is metres per unit. Every side
of every marker is one estimate: the median resists a misprinted or badly seen marker, and the
spread (1.4826 x MAD / median, in %: a robust standard deviation) says how far they agree.

Pixels here follow COLMAP (a pixel's centre at +0.5), as `Camera.project` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from photoforge.camera.marker_edges import edge_corners
from photoforge.camera.model import Camera
from photoforge.camera.triangulation import triangulate
from photoforge.errors import StageError

# The names ScaleParams.dictionary offers (besides auto), smallest of each family first: a marker of
# 4x4_50 is also one of 4x4_1000, and the smaller dictionary, with fewer codes, misreads less.
DICTIONARIES: dict[str, int] = {
    "4x4_50": cv2.aruco.DICT_4X4_50,
    "4x4_100": cv2.aruco.DICT_4X4_100,
    "4x4_250": cv2.aruco.DICT_4X4_250,
    "4x4_1000": cv2.aruco.DICT_4X4_1000,
    "5x5_50": cv2.aruco.DICT_5X5_50,
    "5x5_100": cv2.aruco.DICT_5X5_100,
    "5x5_250": cv2.aruco.DICT_5X5_250,
    "5x5_1000": cv2.aruco.DICT_5X5_1000,
    "6x6_50": cv2.aruco.DICT_6X6_50,
    "6x6_250": cv2.aruco.DICT_6X6_250,
    "6x6_1000": cv2.aruco.DICT_6X6_1000,
    "7x7_50": cv2.aruco.DICT_7X7_50,
    "7x7_1000": cv2.aruco.DICT_7X7_1000,
    "aruco_original": cv2.aruco.DICT_ARUCO_ORIGINAL,
    "apriltag_36h11": cv2.aruco.DICT_APRILTAG_36h11,
}
MARKERS_YAML_EXAMPLE = (
    "write it as 'size: 0.05' (printed side in metres, black border included), optionally 'dictionary: 4x4_50'"
)
MAX_MARKER_SIZE = 2.0  # metres: a bigger "size" is a side in mm or cm
MAX_SKEW = 0.15  # a triangulated marker whose sides or diagonals stray more than this from square is dropped
MIN_RAY_ANGLE_DEG = 1.0  # corners seen along nearly parallel rays have no reliable depth

Corners = dict[int, np.ndarray]  # marker id -> 4 x 2 outer corners, clockwise from the marker's top-left


@dataclass(frozen=True)
class MarkerSpec:
    """What the user printed: the markers' side in metres, and their dictionary (or auto)."""

    size: float
    dictionary: str = "auto"


def read_marker_spec(path: Path) -> MarkerSpec:
    """markers.yaml, checked: a wrong file fails the run with what to write, rather than a wrong scale."""
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise StageError(
            "scale", f"markers.yaml is not valid YAML ({_first_line(exc)}): {MARKERS_YAML_EXAMPLE}", path
        ) from exc
    if not isinstance(data, dict):
        raise StageError("scale", f"markers.yaml must be a mapping of keys: {MARKERS_YAML_EXAMPLE}", path)
    unknown = sorted(str(k) for k in data if k not in ("size", "dictionary"))
    if unknown:
        raise StageError("scale", f"markers.yaml: unknown key(s) {', '.join(unknown)}: {MARKERS_YAML_EXAMPLE}", path)
    size = data.get("size")
    if isinstance(size, bool) or not isinstance(size, int | float) or not 0 < size <= MAX_MARKER_SIZE:
        raise StageError(
            "scale",
            f"markers.yaml: size {size!r} is not a marker side in metres (0 < size <= {MAX_MARKER_SIZE}; "
            f"a 5 cm marker is 0.05): {MARKERS_YAML_EXAMPLE}",
            path,
        )
    dictionary = str(data.get("dictionary", "auto")).lower()
    if dictionary != "auto" and dictionary not in DICTIONARIES:
        raise StageError(
            "scale", f"markers.yaml: dictionary {dictionary!r} is not one of auto, {', '.join(DICTIONARIES)}", path
        )
    return MarkerSpec(float(size), dictionary)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class MarkerDetector:
    """OpenCV's ArUco detector over several dictionaries at once (the candidate squares found once)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        parameters = cv2.aruco.DetectorParameters()
        parameters.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        parameters.cornerRefinementMinAccuracy = 0.01
        dictionaries = [cv2.aruco.getPredefinedDictionary(DICTIONARIES[n]) for n in self.names]
        self._cells = [d.markerSize + 2 for d in dictionaries]  # the code's cells and the black border
        self._detector = cv2.aruco.ArucoDetector(dictionaries, parameters)

    def detect(self, gray: np.ndarray) -> dict[str, Corners]:
        """Markers per dictionary, corners from their edges (`marker_edges`); an id found twice in one image
        (two prints of it) is ambiguous and left out."""
        corners, ids, _, indices = self._detector.detectMarkersMultiDict(gray)
        if ids is None:
            return {}
        found: dict[str, dict[int, list[np.ndarray]]] = {}
        for quad, marker, index in zip(corners, ids.ravel(), np.ravel(indices), strict=True):
            refined = edge_corners(gray, quad.reshape(4, 2), self._cells[int(index)]) + 0.5  # to COLMAP's pixels
            found.setdefault(self.names[int(index)], {}).setdefault(int(marker), []).append(refined)
        return {
            name: {marker: quads[0] for marker, quads in by_id.items() if len(quads) == 1}
            for name, by_id in found.items()
        }

    def detect_file(self, path: Path) -> dict[str, Corners]:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise StageError("scale", "cannot read this frame: run ingest again", path)
        return self.detect(gray)


@dataclass(frozen=True)
class LocatedMarker:
    """A marker triangulated in the reconstruction's world (SfM units)."""

    id: int
    views: tuple[str, ...]
    corners: np.ndarray  # 4 x 3, in the detector's corner order
    errors_px: np.ndarray  # per view: RMS reprojection error of its corners

    @property
    def sides(self) -> np.ndarray:
        return np.linalg.norm(np.roll(self.corners, -1, axis=0) - self.corners, axis=1)

    @property
    def diagonals(self) -> np.ndarray:
        return np.linalg.norm(self.corners[2:] - self.corners[:2], axis=1)

    @property
    def skew(self) -> float:
        """How far from a square: the largest relative gap of a side (or diagonal / sqrt 2) to their median."""
        lengths = np.concatenate([self.sides, self.diagonals / np.sqrt(2)])
        return float(np.max(np.abs(lengths / np.median(lengths) - 1)))

    def to_json(self, size: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "views": list(self.views),
            "sides": [round(float(s), 6) for s in self.sides],
            "diagonals": [round(float(d), 6) for d in self.diagonals],
            "metres_per_unit": round(float(size / np.median(self.sides)), 6),
            "reprojection_px": [round(float(e), 3) for e in self.errors_px],
            "corners_xyz": np.round(self.corners, 6).tolist(),
        }


def locate_markers(
    sightings: Mapping[str, Corners], cameras: Mapping[str, Camera], *, max_error: float
) -> list[LocatedMarker]:
    """Markers whose id is seen in at least two registered views and triangulates as a square.

    `sightings`: per view name, its markers' corners in that view's pinhole pixels (undistorted).
    Views farther than `max_error` px (RMS) from the others are dropped, one at a time.
    """
    seen: dict[int, list[str]] = {}
    for name, corners in sorted(sightings.items()):
        if name in cameras:
            for marker, quad in corners.items():
                if np.all(np.isfinite(quad)):  # a lens model may not invert far out in the corners
                    seen.setdefault(marker, []).append(name)
    located = []
    for marker, names in sorted(seen.items()):
        if len(names) < 2:
            continue
        pixels = np.stack([sightings[n][marker] for n in names])
        fit = triangulate([cameras[n] for n in names], pixels, max_error=max_error, min_angle_deg=MIN_RAY_ANGLE_DEG)
        if fit is None:
            continue
        found = LocatedMarker(marker, tuple(names[i] for i in fit.views), fit.points, fit.errors)
        if found.skew <= MAX_SKEW:
            located.append(found)
    return located


def pick_dictionary(
    sightings: Mapping[str, Mapping[str, Corners]], cameras: Mapping[str, Camera], *, max_error: float
) -> tuple[str | None, list[LocatedMarker]]:
    """The dictionary whose markers triangulate best: most markers, then most sightings; ties go to the
    first (the smaller dictionary), so a marker that several dictionaries contain is named by the smallest."""
    best: tuple[str | None, list[LocatedMarker]] = (None, [])
    best_score = (0, 0)
    for name, by_view in sightings.items():
        located = locate_markers(by_view, cameras, max_error=max_error)
        score = (len(located), sum(len(m.views) for m in located))
        if score > best_score:
            best, best_score = (name, located), score
    return best


def metres_per_unit(markers: Sequence[LocatedMarker], size: float) -> tuple[float, float]:
    """The median of size / side over every side of every marker, and the spread of those estimates:
    1.4826 x median absolute deviation / median, in % (a standard deviation were they Gaussian)."""
    estimates = size / np.concatenate([m.sides for m in markers])
    median = float(np.median(estimates))
    spread = 1.4826 * float(np.median(np.abs(estimates - median))) / median * 100
    return median, spread
