"""Object captures with known answers: an object on a table or on a wall, ArUco markers around it.

What the product must deliver from such a capture is the object alone (no ground, no wall),
upright, in metres; these captures say what that is. The world is in metres with Z up:

- layout "table": the object stands on a 1.6 m mat at z = 0, cameras on three rings (15, 35
  and 55 degrees up) around it, the markers printed on the mat around it;
- layout "wall": the object (a trophy bust) sticks out of a papered wall at y = 0 inside a
  frame, cameras in front of the wall only (within 65 degrees of its normal, 10 below to 30
  above), the markers on the wall beside the frame. Its lowest point is at z = 0 too;
- layout "handheld": the table's scene, photographed as a person walks round it once with a phone:
  one ring about 30 degrees up, its azimuth steps, elevation (+-8 degrees), distance (+-10%) and
  roll (+-5 degrees) jittered, deterministically from `seed`.

`make_object_capture` writes root/capture (images/*.png and K.txt: what a user hands
photoforge) and root/truth (object.ply, gt_cameras/*.camera, masks/*.png, truth.json).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import open3d as o3d

from photoforge.camera.model import Camera, Rigid3
from photoforge.synthetic.cameras import orbit_camera, write_strecha_camera
from photoforge.synthetic.noise import ValueNoise3D
from photoforge.synthetic.printed import (
    ARUCO_DICTIONARY,
    QUIET_ZONE,
    PrintedPlane,
    ground_texture,
    print_marker,
    wallpaper_texture,
)
from photoforge.synthetic.scene import Albedo, ObjectScene, Part
from photoforge.synthetic.shapes import SHAPES, WALL_SHAPES, shape_mesh

Layout = Literal["table", "wall", "handheld"]
UP = (0.0, 0.0, 1.0)
TABLE_PLANE = (0.0, 0.0, 1.0, 0.0)  # z = 0, normal towards the object
WALL_PLANE = (0.0, 1.0, 0.0, 0.0)  # y = 0, normal towards the object and the cameras
OBJECT_TINT = np.array([1.0, 0.62, 0.36], np.float32)  # warm: the mat is blue-grey, the wallpaper sage
FRAME_TINT = np.array([0.3, 0.25, 0.22], np.float32)
BACKGROUND = (0.78, 0.79, 0.8)  # beyond the table's edge or the wall's
TEXEL_PER_MARKER = 64  # texture pixels along a marker's side: finer than a photo's pixel in every view
# The handheld walk-round: one ring, each view's jitter uniform within these bounds.
HANDHELD_ELEVATION = 30.0  # degrees up, the ring's mean
HANDHELD_JITTER = {"elevation_deg": 8.0, "distance_share": 0.10, "roll_deg": 5.0, "azimuth_step_share": 0.35}


@dataclass(frozen=True, eq=False)
class ObjectCapture:
    """Where a synthetic object capture lies and what its answers are (metres, world Z up)."""

    capture: Path  # images/*.png + K.txt: what a user hands photoforge
    mesh: Path  # the object alone (PLY, metres)
    cameras: Path  # ground-truth cameras (Strecha .camera files)
    masks: Path  # per photo, the pixels of the object (PNG, 255 = object)
    truth: Path  # truth.json: everything below, and the object's bounding box
    layout: str
    shape: str
    object_height: float  # extent along `up`, metres
    up: tuple[float, float, float]
    support_plane: tuple[float, float, float, float]  # a, b, c, d: a x + b y + c z + d = 0, normal towards the object
    marker_size: float  # side of a printed marker, black border included, metres
    markers: dict[int, np.ndarray]  # id -> 4 x 3 world corners (ArUco order: TL, TR, BR, BL)

    @classmethod
    def read(cls, root: Path) -> ObjectCapture:
        """The capture `make_object_capture(root, ...)` wrote, from its truth.json."""
        data = json.loads((root / "truth" / "truth.json").read_text())
        return cls(
            capture=root / "capture",
            mesh=root / "truth" / data["object_mesh"],
            cameras=root / "truth" / "gt_cameras",
            masks=root / "truth" / "masks",
            truth=root / "truth" / "truth.json",
            layout=data["layout"],
            shape=data["shape"],
            object_height=data["object_height"],
            up=tuple(data["up"]),
            support_plane=tuple(data["support_plane"]),
            marker_size=data["marker_size"],
            markers={m["id"]: np.array(m["corners"]) for m in data["markers"]},
        )


def make_object_capture(
    root: Path,
    *,
    shape: str,
    layout: Layout = "table",
    views: int = 30,
    width: int = 800,
    height: int = 600,
    marker_size: float = 0.05,
    markers: int = 6,
    seed: int = 0,
    supersample: int = 2,
) -> ObjectCapture:
    """Render `shape` (one of SHAPES; "bust" goes on the wall) in `layout` from `views` known cameras
    into root/capture and root/truth. `supersample`^2 rays per pixel: 2 gives clean object and marker
    edges; 1 renders four times faster."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: one of {', '.join(SHAPES)}")
    if layout not in ("table", "wall", "handheld"):
        raise ValueError(f"unknown layout {layout!r}: table, wall or handheld")
    if (shape in WALL_SHAPES) != (layout == "wall"):
        raise ValueError(f"shape {shape!r} does not go with layout {layout!r}: the wall takes {WALL_SHAPES}")
    if not 0 <= markers <= 50:
        raise ValueError(f"{markers} markers: {ARUCO_DICTIONARY} has ids 0..49")
    mesh = shape_mesh(shape)
    vertices = np.asarray(mesh.vertices)
    build = _wall if layout == "wall" else _table
    plane, props, corners, light = build(vertices, marker_size=marker_size, markers=markers, seed=seed)
    object_part = Part(
        vertices, np.asarray(mesh.triangles), _object_albedo(vertices, seed), np.asarray(mesh.vertex_normals)
    )
    plane_vertices, plane_faces = plane.quad()
    scene = ObjectScene(
        [object_part, Part(plane_vertices, plane_faces, plane.albedo, casts_shadow=False), *props],
        light=light,
        background=BACKGROUND,
    )

    focal = 0.9 * width
    k = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    if layout == "handheld":
        cameras = _handheld_cameras(vertices, k, (width, height), views, seed)
    else:
        cameras = _cameras(layout, vertices, k, (width, height), views)

    capture, truth = root / "capture", root / "truth"
    for folder in (capture / "images", truth / "gt_cameras", truth / "masks"):
        folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(capture / "K.txt", k, fmt="%.6f")
    o3d.io.write_triangle_mesh(truth / "object.ply", mesh)
    for camera in cameras:
        rgb, mask = scene.render(camera, supersample)
        cv2.imwrite(str(capture / "images" / camera.name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(truth / "masks" / camera.name), mask.astype(np.uint8) * 255)
        write_strecha_camera(truth / "gt_cameras" / f"{camera.name}.camera", camera)
    support = WALL_PLANE if layout == "wall" else TABLE_PLANE
    record = {
        "units": "m",
        "layout": layout,
        "shape": shape,
        "up": list(UP),
        "support_plane": list(support),
        "object_mesh": "object.ply",
        "object_height": float(np.ptp(vertices[:, 2])),
        "object_bbox": {"min": vertices.min(axis=0).tolist(), "max": vertices.max(axis=0).tolist()},
        "marker_dictionary": ARUCO_DICTIONARY,
        "marker_size": marker_size,
        "markers": [{"id": i, "corners": c.tolist()} for i, c in corners.items()],
        "views": len(cameras),
        "image_size": [width, height],
    }
    (truth / "truth.json").write_text(json.dumps(record, indent=1) + "\n")
    return ObjectCapture.read(root)


# --- the two layouts --------------------------------------------------------------------------------


def _table(
    vertices: np.ndarray, *, marker_size: float, markers: int, seed: int
) -> tuple[PrintedPlane, list[Part], dict[int, np.ndarray], np.ndarray]:
    """A 1.6 m mat at z = 0 centred under the object, markers on a circle clear of its footprint."""
    side = 1.6
    texel = marker_size / TEXEL_PER_MARKER
    pixels = round(side / texel)
    plane = PrintedPlane(
        origin=np.array([-side / 2, side / 2, 0.0]),
        u_axis=np.array([1.0, 0.0, 0.0]),
        v_axis=np.array([0.0, -1.0, 0.0]),
        texel=texel,
        texture=ground_texture((pixels, pixels), texel=texel, seed=seed + 101),
    )
    sheet_reach = marker_size * (1 + 2 * QUIET_ZONE) / math.sqrt(2)  # centre to a sheet corner
    footprint = float(np.linalg.norm(vertices[:, :2], axis=1).max())
    radius = footprint + 0.03 + sheet_reach
    if markers > 1:  # neighbours' sheets apart by a centimetre at least
        radius = max(radius, (2 * sheet_reach + 0.01) / (2 * math.sin(math.pi / markers)))
    if radius + sheet_reach > side / 2:
        raise ValueError(f"{markers} markers of {marker_size} m do not fit on the {side} m mat")
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * math.pi)
    corners = {}
    for marker_id in range(markers):
        angle = phase + 2 * math.pi * marker_id / markers
        world_centre = radius * np.array([math.cos(angle), math.sin(angle)])
        uv_centre = np.array([world_centre[0] + side / 2, side / 2 - world_centre[1]])
        uv = print_marker(
            plane.texture,
            texel=texel,
            centre=uv_centre,
            angle=rng.uniform(0, 2 * math.pi),
            marker_id=marker_id,
            size=marker_size,
        )
        corners[marker_id] = plane.world(uv)
    return plane, [], corners, np.array([0.4, -0.5, 0.75])


def _wall(
    vertices: np.ndarray, *, marker_size: float, markers: int, seed: int
) -> tuple[PrintedPlane, list[Part], dict[int, np.ndarray], np.ndarray]:
    """A papered wall at y = 0 (4 x 2.2 m), a dark frame round the bust, markers in two columns beside it."""
    width, height = 4.0, 2.2
    texel = marker_size / TEXEL_PER_MARKER
    x_max, z_max = width / 2, 1.4
    plane = PrintedPlane(
        origin=np.array([x_max, 0.0, z_max]),
        u_axis=np.array([-1.0, 0.0, 0.0]),  # seen from the front (+y), -x is to the right
        v_axis=np.array([0.0, 0.0, -1.0]),
        texel=texel,
        texture=wallpaper_texture((round(height / texel), round(width / texel)), texel=texel, seed=seed + 101),
    )
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    inner_lo, inner_hi = np.array([lo[0], lo[2]]) - 0.04, np.array([hi[0], hi[2]]) + 0.04  # x, z
    bar = 0.035
    frame = _frame(inner_lo, inner_hi, bar=bar, depth=0.02)
    frame_albedo = ValueNoise3D(seed + 7, frequencies=(9.0, 30.0))
    props = [Part(*frame, lambda p: FRAME_TINT * (0.6 + 0.8 * frame_albedo(p * 3).mean(axis=1, keepdims=True)))]

    sheet = marker_size * (1 + 2 * QUIET_ZONE)
    column_x = inner_hi[0] + bar + 0.025 + sheet / 2
    per_column = math.ceil(markers / 2)
    span = inner_hi[1] - inner_lo[1]
    if per_column * (sheet + 0.01) > span + 2 * bar:
        raise ValueError(f"{markers} markers of {marker_size} m do not fit beside the frame")
    rng = np.random.default_rng(seed)
    corners = {}
    for marker_id in range(markers):
        side, row = (-1, 1)[marker_id % 2], marker_id // 2
        x = side * column_x
        z = inner_lo[1] + span * (row + 0.5) / per_column
        uv = print_marker(
            plane.texture,
            texel=texel,
            centre=np.array([x_max - x, z_max - z]),
            angle=rng.uniform(-0.3, 0.3),
            marker_id=marker_id,
            size=marker_size,
        )
        corners[marker_id] = plane.world(uv)
    return plane, props, corners, np.array([0.35, 0.6, 0.7])


def _frame(inner_lo: np.ndarray, inner_hi: np.ndarray, *, bar: float, depth: float) -> tuple[np.ndarray, np.ndarray]:
    """A picture-frame rim on the wall (four boxes standing `depth` out of y = 0) round a rectangle in x, z."""
    boxes = [
        (inner_lo[0] - bar, inner_hi[1], inner_hi[0] + bar, inner_hi[1] + bar),  # top
        (inner_lo[0] - bar, inner_lo[1] - bar, inner_hi[0] + bar, inner_lo[1]),  # bottom
        (inner_lo[0] - bar, inner_lo[1], inner_lo[0], inner_hi[1]),  # left
        (inner_hi[0], inner_lo[1], inner_hi[0] + bar, inner_hi[1]),  # right
    ]
    vertices: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    for x0, z0, x1, z1 in boxes:
        box = o3d.geometry.TriangleMesh.create_box(x1 - x0, depth, z1 - z0)
        box.translate((x0, 0.0, z0))
        faces.append(np.asarray(box.triangles) + 8 * len(vertices))
        vertices.append(np.asarray(box.vertices))
    return np.concatenate(vertices), np.concatenate(faces)


def _object_albedo(vertices: np.ndarray, seed: int) -> Albedo:
    """Warm 3D value noise in the object's own frame (about [-1, 1] across it)."""
    noise = ValueNoise3D(seed)
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    scale = float(np.ptp(vertices, axis=0).max()) / 2

    def albedo(points: np.ndarray) -> np.ndarray:
        colour = noise((points - centre) / scale)
        grey = colour.mean(axis=1, keepdims=True)  # half the hue variation: the object stays warm
        return OBJECT_TINT * (0.15 + 0.85 * (grey + 0.5 * (colour - grey)))

    return albedo


# --- cameras ---------------------------------------------------------------------------------------


def _cameras(layout: Layout, vertices: np.ndarray, k: np.ndarray, size: tuple[int, int], views: int) -> list[Camera]:
    """Rings of views (one ring after the other, as a person walks them) aimed at the object's centre,
    far enough that its bounding sphere spans about half the frame height."""
    target, distance = _aim(vertices, k, size)
    elevations = (15.0, 35.0, 55.0) if layout == "table" else (-10.0, 10.0, 30.0)
    cameras = []
    for i, (ring, step, count) in enumerate(_rings(views)):
        if layout == "table":
            azimuth = 2 * math.pi * (step + 0.5 * ring) / count
        else:  # swept across the front of the wall, within 65 degrees of its normal (+y)
            sweep = -60 + 120 * (step + 0.5) / count + 5 * (ring - 1)
            azimuth = math.pi / 2 + math.radians(sweep)
        cameras.append(
            orbit_camera(
                f"view_{i:03d}.png",
                k,
                size,
                target=target,
                distance=distance,
                azimuth=azimuth,
                elevation=math.radians(elevations[ring]),
            )
        )
    return cameras


def _aim(vertices: np.ndarray, k: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Where the cameras look (the object's box centre) and from how far: its bounding sphere spans about
    half the frame height."""
    target = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    reach = float(np.linalg.norm(vertices - target, axis=1).max())
    return target, 4 * reach * k[1, 1] / size[1]


def _handheld_cameras(
    vertices: np.ndarray, k: np.ndarray, size: tuple[int, int], views: int, seed: int
) -> list[Camera]:
    """One walk round the object, a phone in hand: a ring at about HANDHELD_ELEVATION degrees whose
    azimuth steps, elevations, distances and rolls wander within HANDHELD_JITTER (uniform, from `seed`);
    every view aimed at the object's centre, at the table layout's mean distance."""
    target, distance = _aim(vertices, k, size)
    rng = np.random.default_rng([seed, 202])  # its own stream: the markers' draws stay the table's
    step = 2 * math.pi / views
    phase = rng.uniform(0, 2 * math.pi)
    jitter = HANDHELD_JITTER
    cameras = []
    for i in range(views):
        azimuth = phase + step * (i + rng.uniform(-1, 1) * jitter["azimuth_step_share"])
        elevation = HANDHELD_ELEVATION + rng.uniform(-1, 1) * jitter["elevation_deg"]
        camera = orbit_camera(
            f"view_{i:03d}.png",
            k,
            size,
            target=target,
            distance=distance * (1 + rng.uniform(-1, 1) * jitter["distance_share"]),
            azimuth=azimuth,
            elevation=math.radians(elevation),
        )
        roll = math.radians(rng.uniform(-1, 1) * jitter["roll_deg"])
        c, s = math.cos(roll), math.sin(roll)
        spin = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # about the optical axis
        pose = camera.cam_from_world
        cameras.append(Camera(camera.name, k, Rigid3(spin @ pose.rotation, spin @ pose.translation), *size))
    return cameras


def _rings(views: int) -> list[tuple[int, int, int]]:
    """(ring, index on the ring, views on the ring) per view: three rings, as even as `views` allows."""
    bounds = [-(-ring * views // 3) for ring in range(4)]  # ceil(ring * views / 3)
    return [
        (ring, i - bounds[ring], bounds[ring + 1] - bounds[ring])
        for ring in range(3)
        for i in range(bounds[ring], bounds[ring + 1])
    ]
