"""Which texels a view sees, from one buffer of distances per view rather than a ray per texel and view.

The bake asks, for every texel in every view, whether the mesh hides it. A ray per pair is texels x
views rays, the bake's largest cost. One cast per view at a reduced size (`long_side` px) gives each
buffer pixel the distance to the nearest surface; a texel is seen where it lies no further than that
distance at its pixel, give or take what the surface's slope moves within a buffer pixel (shadow
mapping's slope-scaled bias). The same cast's hits are the mesh's silhouette in that view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pycolmap

from photoforge.texturing.object_masks import at_pixels

if TYPE_CHECKING:
    from photoforge.camera.model import Camera
    from photoforge.render.raycast import MeshScene

MAX_SLOPE = 10.0  # tangent of the most oblique view a bias is made for (the bake's min_cos is 0.1)


@dataclass(frozen=True)
class ViewDepth:
    distance: np.ndarray  # h x w float32 ray distance to the mesh, inf where the ray misses it
    image_size: tuple[int, int]  # the view's width and height in px, which pixels are given in
    focal: float  # the buffer's focal length in px

    @property
    def silhouette(self) -> np.ndarray:
        """h x w bool: the buffer pixels the mesh covers."""
        return np.isfinite(self.distance)

    def sees(self, pixels: np.ndarray, distance: np.ndarray, cos: np.ndarray, *, tolerance: float) -> np.ndarray:
        """Which points (image pixels, distance from the camera, cosine between their normal and the view)
        no surface hides: nothing nearer in their buffer pixel than their distance less the bias."""
        nearest = at_pixels(self.distance, pixels, *self.image_size)
        # the bias: a buffer pixel's width at the point's distance x (1 + the slope), in place (millions of points)
        bias = np.sqrt(np.maximum(1 - cos * cos, 0))
        bias /= np.maximum(cos, 1e-6)
        np.minimum(bias, MAX_SLOPE, out=bias)
        bias += 1
        bias *= distance / self.focal
        bias += tolerance
        return nearest >= distance - bias


def view_depth(scene: MeshScene, view: Camera, lens: pycolmap.Camera | None, *, long_side: int) -> ViewDepth:
    """The mesh's distances as `view` (or `lens`, distortion kept, at its own size) sees it, cast at most
    `long_side` px on the long side."""
    width, height = (view.width, view.height) if lens is None else (lens.width, lens.height)
    scale = min(1.0, long_side / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if lens is None:
        small = view.scaled(*size)
        return ViewDepth(scene.distances(small), (width, height), float(small.k[0, 0]))
    small_lens = pycolmap.Camera(lens.todict())  # a copy: the caller keeps its own
    small_lens.rescale(*size)
    return ViewDepth(scene.distances(view, small_lens), (width, height), float(small_lens.mean_focal_length()))
