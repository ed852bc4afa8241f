"""Textured planes (a tabletop, a papered wall) with ArUco markers printed on them.

A plane's albedo is a texture image laid on the world by an origin and two axes, so a marker
printed into the texture has world corners known exactly: the ground truth that metric scale and
the support plane are checked against. The axes are chosen so the texture reads unmirrored from
the side the cameras are on, as a real printout does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from photoforge.synthetic.noise import value_noise_image

ARUCO_DICTIONARY = "DICT_4X4_50"
QUIET_ZONE = 0.25  # white margin around a marker, each side, as a fraction of its side


@dataclass(frozen=True, eq=False)
class PrintedPlane:
    """A textured rectangle: texture pixel (col, row) covers origin + [col, col+1) texel u + [row, row+1) texel v."""

    origin: np.ndarray  # world corner of texture pixel (0, 0)
    u_axis: np.ndarray  # unit world direction of texture columns
    v_axis: np.ndarray  # unit world direction of texture rows
    texel: float  # metres per texture pixel
    texture: np.ndarray  # H x W x 3 uint8 RGB albedo

    @property
    def normal(self) -> np.ndarray:
        """The unit normal towards the side the texture reads unmirrored from."""
        return np.cross(self.v_axis, self.u_axis)

    @property
    def extent(self) -> tuple[float, float]:
        """Width and height in metres."""
        return self.texture.shape[1] * self.texel, self.texture.shape[0] * self.texel

    def world(self, uv: np.ndarray) -> np.ndarray:
        """World points of N x 2 plane coordinates (metres along u and v from the origin)."""
        return self.origin + uv[:, :1] * self.u_axis + uv[:, 1:2] * self.v_axis

    def quad(self) -> tuple[np.ndarray, np.ndarray]:
        """Vertices (4 x 3) and two triangles (2 x 3) covering the plane, facing along `normal`."""
        width, height = self.extent
        vertices = self.world(np.array([[0, 0], [width, 0], [width, height], [0, height]], float))
        return vertices, np.array([[0, 2, 1], [0, 3, 2]])

    def albedo(self, points: np.ndarray) -> np.ndarray:
        """N x 3 float32 albedo in [0, 1] at world points on the plane (bilinear, edges clamped)."""
        points = np.asarray(points, np.float32)
        flat = np.zeros((2, -(-len(points) // 4096) * 4096), np.float32)  # remap's maps: under 32767 a side
        for axis, direction in enumerate((self.u_axis, self.v_axis)):
            step = (direction / self.texel).astype(np.float32)
            np.subtract(points @ step, np.float32(self.origin @ step + 0.5), out=flat[axis, : len(points)])
        maps = flat.reshape(2, -1, 4096)
        colour = cv2.remap(self.texture, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return colour.reshape(-1, 3)[: len(points)].astype(np.float32) * np.float32(1 / 255)


def ground_texture(shape: tuple[int, int], *, texel: float, seed: int) -> np.ndarray:
    """A blue-grey mottled mat: value noise down to 5 mm cells, a hue no synthetic object has."""
    light = value_noise_image(shape, texel=texel, cells=(0.25, 0.09, 0.035, 0.014, 0.006), seed=seed)
    tint = value_noise_image(shape, texel=texel, cells=(0.3, 0.05), seed=seed + 1, contrast=1.5)
    base = np.array([0.5, 0.66, 0.86], np.float32) * (0.25 + 0.7 * light)[..., None]
    base[..., 1] *= 0.85 + 0.3 * tint
    return _to_uint8(base)


def wallpaper_texture(shape: tuple[int, int], *, texel: float, seed: int) -> np.ndarray:
    """Sage wallpaper: vertical stripes and a diamond lattice, mottled so no two places look alike."""
    height, width = shape
    period = 0.09
    u = (np.arange(width) + 0.5) * texel / period
    v = (np.arange(height) + 0.5) * texel / period
    stripe = np.abs(u % 1.0 - 0.5) < 0.12
    diamond = np.abs((u + 0.5) % 1.0 - 0.5)[None, :] + np.abs(v % 1.0 - 0.5)[:, None] < 0.16
    ink = np.where(diamond, 2, stripe[None, :].astype(np.uint8))  # 0 ground, 1 stripe, 2 diamond
    palette = _to_uint8(np.array([[0.45, 0.62, 0.5], [0.7, 0.8, 0.66], [0.22, 0.36, 0.3]]))
    mottle = value_noise_image(shape, texel=texel, cells=(0.2, 0.06, 0.02, 0.008), seed=seed)
    light = _to_uint8((0.55 + 0.6 * mottle) / 1.15)  # scaled back by 1.15 below
    return cv2.multiply(palette[ink], cv2.merge([light] * 3), scale=1.15 / 255)


def print_marker(
    texture: np.ndarray, *, texel: float, centre: np.ndarray, angle: float, marker_id: int, size: float
) -> np.ndarray:
    """Print ArUco `marker_id` (side `size` metres, black border included) on a white quiet zone into
    `texture`, centred at plane coordinates `centre` (metres) and turned by `angle` (radians, u towards v).

    Returns its corners in plane coordinates (4 x 2 metres), in ArUco's order: top-left, top-right,
    bottom-right, bottom-left of the marker image.
    """
    cells = cv2.aruco.generateImageMarker(_dictionary(), marker_id, 6)  # 4x4 bits + a 1-cell black border
    sheet = size * (1 + 2 * QUIET_ZONE)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    reach = sheet / np.sqrt(2) + 2 * texel
    lo = np.maximum(np.floor((centre - reach) / texel).astype(int), 0)
    hi = np.minimum(np.ceil((centre + reach) / texel).astype(int), [texture.shape[1], texture.shape[0]])
    if (hi <= lo).any():
        raise ValueError(f"marker {marker_id} lies off the plane")
    # 4 x 4 samples per texel: the printed edges are anti-aliased, so bilinear lookups stay exact on average.
    sub = (np.arange(4) + 0.5) / 4
    cols = (np.arange(lo[0], hi[0])[:, None] + sub).ravel() * texel
    rows = (np.arange(lo[1], hi[1])[:, None] + sub).ravel() * texel
    uu, vv = np.meshgrid(cols, rows)
    local = np.stack([uu - centre[0], vv - centre[1]], axis=-1) @ rotation  # plane -> marker axes
    on_sheet = (np.abs(local) <= sheet / 2).all(axis=-1)
    cell = np.floor((local + size / 2) / size * 6).astype(int)
    on_marker = ((cell >= 0) & (cell < 6)).all(axis=-1)
    ink = np.where(on_marker, cells[np.clip(cell[..., 1], 0, 5), np.clip(cell[..., 0], 0, 5)] / 255.0, 1.0)
    paper = np.array([0.96, 0.96, 0.94])
    shape = (hi[1] - lo[1], 4, hi[0] - lo[0], 4)
    region = texture[lo[1] : hi[1], lo[0] : hi[0]].astype(np.float64) / 255
    printed = (ink * 0.92 + 0.04)[..., None] * paper  # ink is never pure black, paper never pure white
    mixed = np.where(on_sheet[..., None], printed, np.repeat(np.repeat(region, 4, axis=0), 4, axis=1))
    texture[lo[1] : hi[1], lo[0] : hi[0]] = _to_uint8(mixed.reshape(*shape, 3).mean(axis=(1, 3)))
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * size / 2
    return corners @ rotation.T + centre


def _dictionary() -> cv2.aruco.Dictionary:
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, ARUCO_DICTIONARY))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
