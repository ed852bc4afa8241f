"""Synthetic captures with known answers, for tests and benchmarks.

`make_capture` renders a textured blob floating in grey (the dense stages' accuracy tests);
`make_object_capture` renders an object on a table or a wall with ArUco markers, and writes
what the product must recover from it: the object alone, upright, in metres.
"""

from photoforge.camera.model import look_at
from photoforge.synthetic.blob import SyntheticCapture, blob_mesh, make_capture, render, ring_cameras
from photoforge.synthetic.cameras import orbit_camera, write_strecha_camera
from photoforge.synthetic.noise import ValueNoise3D
from photoforge.synthetic.shapes import SHAPES, TABLE_SHAPES, WALL_SHAPES, shape_mesh
from photoforge.synthetic.tabletop import ObjectCapture, make_object_capture

__all__ = [
    "SHAPES",
    "TABLE_SHAPES",
    "WALL_SHAPES",
    "ObjectCapture",
    "SyntheticCapture",
    "ValueNoise3D",
    "blob_mesh",
    "look_at",
    "make_capture",
    "make_object_capture",
    "orbit_camera",
    "render",
    "ring_cameras",
    "shape_mesh",
    "write_strecha_camera",
]
