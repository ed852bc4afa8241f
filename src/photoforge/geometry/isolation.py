"""The object alone: object or scene from the cameras, the support plane, what to remove, the asset frame.

An object capture's cameras look at one region from all around it; a scene's (a facade, a street)
look at different parts or stand on one side. From a cloud we keep what the cameras look at: the
region around where the optical axes converge, minus the supporting plane (ground, table, or the
wall behind a mounted object, found by RANSAC and told apart from the object's own flat faces by
where the cameras and the rest of the points lie), minus pieces not connected to the object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import open3d as o3d

from photoforge.camera.model import Camera

# auto calls a capture an object when this share of optical axes pass within MAX_AXIS_ANGLE_DEG of
# one point and the cameras surround it by at least MIN_SURROUND_DEG (measured: fountain-P11's 11
# cameras converge within 3.5 deg but span only 107 deg of azimuth: a facade; a walk round an object
# spans 300+). A wall-mounted object shot from the front half cannot be told from a facade this way.
MIN_CONVERGING_SHARE = 0.7
MAX_AXIS_ANGLE_DEG = 20.0
MIN_SURROUND_DEG = 180.0


@dataclass(frozen=True)
class KindDecision:
    """Object or scene, and the numbers it was decided from (the manifest and the report show them)."""

    kind: Literal["object", "scene"]
    centre: np.ndarray  # where the optical axes pass closest (world)
    up: np.ndarray  # the cameras' mean up (world)
    converging_share: float  # of the cameras, whose axis passes within MAX_AXIS_ANGLE_DEG of the centre
    median_axis_angle_deg: float
    surround_deg: float  # azimuth the cameras cover around the centre (360 minus the largest gap)
    reason: str

    def evidence(self) -> dict[str, float | str]:
        return {
            "converging_share": round(self.converging_share, 3),
            "median_axis_angle_deg": round(self.median_axis_angle_deg, 2),
            "surround_deg": round(self.surround_deg, 1),
            "thresholds": f"object when >= {MIN_CONVERGING_SHARE:.0%} of optical axes pass within "
            f"{MAX_AXIS_ANGLE_DEG:.0f} deg of one point and the cameras surround it by >= {MIN_SURROUND_DEG:.0f} deg",
            "reason": self.reason,
        }


def cameras_up(cameras: list[Camera]) -> np.ndarray:
    """Up from the cameras: people hold cameras level (no roll) but tilt them up or down at will.

    So the cameras' right vectors are horizontal: up is the direction most perpendicular to all of them
    (the smallest eigenvector of their scatter), signed like the cameras' mean up. When the cameras all
    face one way that direction is undetermined, and the mean up (tilted by the pitch) is used.
    """
    mean_up = -np.mean([c.cam_from_world.rotation[1] for c in cameras], axis=0)  # camera y points down
    mean_up /= np.linalg.norm(mean_up)
    rights = np.array([c.cam_from_world.rotation[0] for c in cameras])
    values, vectors = np.linalg.eigh(rights.T @ rights)
    if values[1] < 0.05 * len(cameras):  # the right vectors span no plane: yaw barely varies
        return mean_up
    up = vectors[:, 0]
    return up if up @ mean_up > 0 else -up


def convergence_point(cameras: list[Camera]) -> np.ndarray:
    """The point closest to every optical axis (least squares), the place the cameras look at."""
    normal_matrix, rhs = np.zeros((3, 3)), np.zeros(3)
    for camera in cameras:
        axis = camera.cam_from_world.rotation[2]
        projector = np.eye(3) - np.outer(axis, axis)
        normal_matrix += projector
        rhs += projector @ camera.centre
    return np.linalg.lstsq(normal_matrix, rhs, rcond=None)[0]


def perpendicular(direction: np.ndarray) -> np.ndarray:
    """Some unit vector perpendicular to `direction`: a horizontal when nothing prefers one."""
    other = np.cross(direction, [1.0, 0.0, 0.0] if abs(direction[0]) < 0.9 else [0.0, 1.0, 0.0])
    return other / np.linalg.norm(other)


def surround_deg(centres: np.ndarray, *, centre: np.ndarray, up: np.ndarray) -> float:
    """Azimuth range the cameras cover around `centre`, seen from above: 360 minus the largest gap."""
    x_axis = perpendicular(up)
    y_axis = np.cross(up, x_axis)
    offsets = centres - centre
    azimuths = np.sort(np.degrees(np.arctan2(offsets @ y_axis, offsets @ x_axis)))
    if len(azimuths) < 2:
        return 0.0
    gaps = np.diff(np.concatenate([azimuths, azimuths[:1] + 360.0]))
    return float(360.0 - gaps.max())


def decide_kind(cameras: list[Camera]) -> KindDecision:
    """Object when the cameras look at one region from around it, else scene."""
    up = cameras_up(cameras)
    centre = convergence_point(cameras)
    centres = np.array([c.centre for c in cameras])
    axes = np.array([c.cam_from_world.rotation[2] for c in cameras])
    to_centre = centre - centres
    distance = np.linalg.norm(to_centre, axis=1)
    cosine = np.sum(to_centre * axes, axis=1) / np.maximum(distance, 1e-12)
    angles = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    share = float(np.mean(angles <= MAX_AXIS_ANGLE_DEG))
    around = surround_deg(centres, centre=centre, up=up)
    kind: Literal["object", "scene"]
    if share < MIN_CONVERGING_SHARE:
        kind, reason = "scene", f"only {share:.0%} of the cameras look at one region"
    elif around < MIN_SURROUND_DEG:
        kind = "scene"
        reason = (
            f"the cameras look at one region but from one side only ({around:.0f} deg): a facade, or an object "
            "against a wall (asset.kind=object isolates it)"
        )
    else:
        kind, reason = "object", f"{share:.0%} of the cameras look at one region, from {around:.0f} deg around it"
    return KindDecision(kind, centre, up, share, float(np.median(angles)), around, reason)


def region_radius(cameras: list[Camera], centre: np.ndarray) -> float:
    """How far from the centre the object can reach: half the frame's larger side at the object's distance."""
    radii = []
    for camera in cameras:
        depth = float(camera.cam_from_world.apply(centre[None])[0, 2])
        if depth > 0:
            radii.append(depth * max(camera.width / camera.k[0, 0], camera.height / camera.k[1, 1]) / 2)
    return float(np.median(radii))


@dataclass(frozen=True)
class Support:
    """A plane the object stands on (floor) or hangs from (wall): n.x + d = 0, n towards the object."""

    normal: np.ndarray
    offset: float
    kind: Literal["floor", "wall"]

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        return points @ self.normal + self.offset

    def as_list(self) -> list[float]:
        return [*np.round(self.normal, 9).tolist(), round(self.offset, 9)]


def find_support(
    points: np.ndarray, cameras: list[Camera], *, up: np.ndarray, threshold: float, attempts: int = 3
) -> Support | None:
    """The ground, table or wall: a large plane with every camera and nearly every other point on one side.

    RANSAC (open3d) finds the largest planes in turn; an object's own flat face fails the test because
    most of the object lies behind it. Floor or wall from the angle between the plane and the cameras' up.
    """
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    remaining = np.arange(len(points))
    centres = np.array([c.centre for c in cameras])
    for _ in range(attempts):
        if len(remaining) < 100:
            return None
        o3d.utility.random.seed(7)  # a cached stage gives the same plane for the same cloud
        plane, inliers = cloud.select_by_index(remaining.tolist()).segment_plane(
            distance_threshold=threshold, ransac_n=3, num_iterations=1000
        )
        inliers = remaining[np.asarray(inliers, dtype=int)]
        if len(inliers) < 0.1 * len(points):
            return None
        normal, offset = np.asarray(plane[:3], float), float(plane[3])
        length = float(np.linalg.norm(normal))
        normal, offset = normal / length, offset / length
        camera_side = np.sign(centres @ normal + offset)
        if np.mean(camera_side < 0) > 0.5:
            normal, offset, camera_side = -normal, -offset, -camera_side
        distance = points @ normal + offset
        off_plane = distance[np.abs(distance) > 3 * threshold]  # the plane's own noise counts for neither side
        in_front = np.mean(off_plane > 0) if len(off_plane) else 1.0
        if np.mean(camera_side > 0) >= 0.9 and in_front >= 0.9:
            tilt = math.degrees(math.acos(min(1.0, abs(float(normal @ up)))))
            return Support(normal, offset, "floor" if tilt < 45.0 else "wall")
        remaining = np.setdiff1d(remaining, inliers)
    return None


@dataclass
class Isolation:
    """Which points stay, and how many went for which reason."""

    keep: np.ndarray  # bool per point
    removed: dict[str, int] = field(default_factory=dict)
    reasons: np.ndarray | None = None  # per point: 0 kept, 1 outside the region, 2 support, 3 floater


OUTSIDE, SUPPORT, FLOATER = 1, 2, 3
FLAT_SHARE = 0.3  # a piece lower than this share of the main piece's height off the support lies on it
STANDING_BANDS = 5  # a piece under the main one stands up (a stem, a leg) when it reaches this many bands up
MIN_STANDING_SHARE = 0.01  # and is more than a speck: this share of the main piece's points


def isolate(
    points: np.ndarray,
    *,
    inside: np.ndarray,
    support: Support | None,
    band: float,
    spacing: float,
    keep_floaters: bool,
) -> Isolation:
    """Keep the points inside the region, clear of the support, and connected to the main object.

    Pieces: DBSCAN (open3d) at a few point spacings. The main piece is the one with the most points
    times its height off the support; another piece stays when it is at least a fifth of its size
    and, with a support, stands at least FLAT_SHARE of the main piece's height off it: a picture frame
    or a mat lying flat on the wall or the table goes with the support. On a floor, a smaller piece
    (MIN_STANDING_SHARE of the main one's points or more) also stays when it stands on the floor within
    the main piece's footprint and reaches STANDING_BANDS support bands up: a mushroom's stem under its
    cap, a table's legs, cut off from the main piece where no camera saw the junction (measured: the
    test bed's mushroom lost its whole stem, whose top is 0.30 of the cap's height: recall 0.91 -> 0.72).
    """
    reasons = np.zeros(len(points), np.int8)
    reasons[~inside] = OUTSIDE
    height = support.signed_distance(points) if support is not None else None
    if height is not None:
        reasons[(reasons == 0) & (height < band)] = SUPPORT
    if not keep_floaters:
        candidates = np.flatnonzero(reasons == 0)
        if len(candidates):
            labels = _pieces(points[candidates], spacing)
            footing = None if support is None or height is None else _Footing(support, height[candidates], band)
            keep = _main_pieces(labels, points[candidates], footing)
            reasons[candidates[~keep]] = FLOATER
    names = {OUTSIDE: "outside_region", SUPPORT: "support", FLOATER: "floaters"}
    removed = {name: int(np.sum(reasons == code)) for code, name in names.items()}
    return Isolation(reasons == 0, removed, reasons)


def _pieces(points: np.ndarray, spacing: float) -> np.ndarray:
    """DBSCAN labels (-1: noise) at four point spacings."""
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    return np.asarray(cloud.cluster_dbscan(eps=4.0 * spacing, min_points=4))


@dataclass(frozen=True)
class _Footing:
    """The support under the pieces: their points' heights off it, and the band that counts as on it."""

    support: Support
    height: np.ndarray
    band: float

    def ground_plan(self, points: np.ndarray) -> np.ndarray:
        """Points dropped onto the support plane (their place seen from above it)."""
        return points - self.height[:, None] * self.support.normal

    def under_main(self, labels: np.ndarray, points: np.ndarray, main: int) -> np.ndarray:
        """Per piece: whether it stands on the support (its lowest points within 3 bands) inside the
        main piece's footprint (its centre within the 95th-percentile radius of the main piece's plan)."""
        plan = self.ground_plan(points)
        centre = np.median(plan[labels == main], axis=0)
        radius = np.percentile(np.linalg.norm(plan[labels == main] - centre, axis=1), 95)
        result = np.zeros(labels.max() + 1, bool)
        for i in range(len(result)):
            members = labels == i
            if members.any():
                inside = np.linalg.norm(np.median(plan[members], axis=0) - centre) <= radius
                result[i] = inside and np.percentile(self.height[members], 2) <= 3 * self.band
        return result


def _main_pieces(labels: np.ndarray, points: np.ndarray, footing: _Footing | None) -> np.ndarray:
    """Which points belong to the pieces that stay (see `isolate`)."""
    if not (labels >= 0).any():
        return np.zeros(len(labels), bool)
    sizes = np.bincount(labels[labels >= 0])
    tall = np.ones(len(sizes))
    if footing is not None:
        height = footing.height
        tall = np.array([np.percentile(height[labels == i], 98) if sizes[i] else 0.0 for i in range(len(sizes))])
    main = int(np.argmax(sizes * np.maximum(tall, 0.0)))
    stays = sizes >= 0.2 * sizes[main]
    if footing is not None:
        stays &= tall >= FLAT_SHARE * tall[main]
        if footing.support.kind == "floor":  # on a wall, a frame around a bust stays with the wall
            standing = footing.under_main(labels, points, main) & (tall >= STANDING_BANDS * footing.band)
            stays |= standing & (sizes >= MIN_STANDING_SHARE * sizes[main])
    stays[main] = True
    return np.append(stays, False)[labels]  # label -1 (noise) reads the appended False


def median_spacing(points: np.ndarray) -> float:
    """The median distance to the nearest neighbour: the cloud's resolution."""
    if len(points) < 2:
        return 0.0
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    return float(np.median(np.asarray(cloud.compute_nearest_neighbor_distance())))


def object_rotation(
    points: np.ndarray, cameras: list[Camera], *, support: Support | None, up: np.ndarray
) -> np.ndarray:
    """Rows: the asset's x, y (up), z (front) axes in world coordinates.

    Up: the floor's normal, else the cameras' up (made perpendicular to a wall). Front: a wall's
    normal; otherwise the side most photos saw (the 90-degree sector holding the most cameras).
    """
    if support is not None and support.kind == "floor":
        up = support.normal
    elif support is not None:
        up = up - support.normal * (up @ support.normal)
    up = up / np.linalg.norm(up)
    if support is not None and support.kind == "wall":
        front = support.normal - up * (support.normal @ up)
    else:
        front = _most_seen_side(points.mean(axis=0), np.array([c.centre for c in cameras]), up)
    front /= np.linalg.norm(front)
    right = np.cross(up, front)
    return np.stack([right, up, front])


def _most_seen_side(centre: np.ndarray, centres: np.ndarray, up: np.ndarray) -> np.ndarray:
    offsets = centres - centre
    offsets -= np.outer(offsets @ up, up)
    lengths = np.linalg.norm(offsets, axis=1)
    if lengths.max() < 1e-12:  # every camera straight above: any horizontal direction
        return perpendicular(up)
    directions = offsets[lengths > 1e-12] / lengths[lengths > 1e-12, None]
    best, best_count = directions[0], -1
    for candidate in directions:  # each camera's direction as a sector's centre
        count = int(np.sum(directions @ candidate >= math.cos(math.radians(45.0))))
        if count > best_count:
            best, best_count = candidate, count
    within = directions[directions @ best >= math.cos(math.radians(45.0))]
    return within.mean(axis=0)


def place_on_support(points: np.ndarray, rotation: np.ndarray, *, support: Support | None) -> np.ndarray:
    """The translation after `rotation`: footprint centred on x, z; base (or the floor) at y = 0; a wall at z = 0."""
    rotated = points @ rotation.T
    lo, hi = rotated.min(axis=0), rotated.max(axis=0)
    translation = -(lo + hi) / 2
    translation[1] = -lo[1]
    if support is not None:
        # a point of the plane, rotated: its height (floor) or depth (wall) becomes 0
        on_plane = rotation @ (-support.offset * support.normal)
        if support.kind == "floor":
            translation[1] = -on_plane[1]
        else:
            translation[2] = -on_plane[2]
    return translation


def similarity(rotation: np.ndarray, translation: np.ndarray, scale: float) -> np.ndarray:
    """4x4 x -> scale * (R x + t)."""
    transform = np.eye(4)
    transform[:3, :3] = scale * rotation
    transform[:3, 3] = scale * translation
    return transform
