"""A low-poly from the high-res surface: pymeshlab's quadric edge collapse, tuned for texturing.

Boundaries are kept (an open object's rim stays where it is), normals may not flip, and the
quality term keeps triangles well shaped, which keeps xatlas's charts few and their texels even.
"""

from __future__ import annotations

import numpy as np
import pymeshlab


def decimate(vertices: np.ndarray, faces: np.ndarray, *, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """The mesh collapsed to at most `target_faces` faces (as it is when already within)."""
    if len(faces) <= target_faces:
        return vertices, faces
    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(vertex_matrix=vertices.astype(np.float64), face_matrix=faces.astype(np.int32)))
    ms.meshing_decimation_quadric_edge_collapse(
        targetfacenum=target_faces,
        qualitythr=0.5,
        preserveboundary=True,
        boundaryweight=2.0,
        preservenormal=True,
        optimalplacement=True,
        planarquadric=True,
        autoclean=True,
    )
    ms.meshing_remove_unreferenced_vertices()
    mesh = ms.current_mesh()
    return mesh.vertex_matrix(), mesh.face_matrix()


def surface_area(vertices: np.ndarray, faces: np.ndarray) -> float:
    """The mesh's total triangle area."""
    corners = np.asarray(vertices, np.float64)[faces]
    return float(
        np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1).sum() / 2
    )
