"""A baked normal map, as three.js shows it, brings a low-poly's shading closer to the high-res mesh's.

A bumpy sphere (radius 1 + 0.03 sin 8θ sin 8φ, 40k faces) is the high-res; its 2,500-face decimation,
charted by xatlas, gets a tangent-space normal map baked from it (texturing.detail_maps). Both are written
as GLBs and grey-shaded in headless chromium (qa.browser_render, tools/shade_gltf.html) from one frame:
(a) the high-res, (b) the low-poly without its map, (c) with it, (d) with its green channel flipped.
Inside the object, (c) must be much nearer (a) than (b) is, and nearer than (d): a map baked or decoded
in the wrong tangent convention (TANGENT's w negated, v not flipped for glTF, red or green inverted), lost
on export or ignored by the viewer fails one of the two. A missing TANGENT does not: three.js then derives
the frames from screen-space uv derivatives, which agree with MikkTSpace's closely enough here.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoforge.geometry.decimation import decimate
from photoforge.io.glb_writer import write_glb
from photoforge.layout import UVMesh
from photoforge.qa import browser_render
from photoforge.render.raycast import MeshScene
from photoforge.texturing.atlas import rasterise
from photoforge.texturing.detail_maps import bake_detail_maps
from photoforge.texturing.tangents import HighResSurface, vertex_normals, vertex_tangents

SIZE = 480  # render size in pixels
MAP_SIZE = 512  # normal map


def bumpy_sphere(rings: int, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed, outward-facing: rings - 1 latitude circles of `segments` vertices plus the two poles;
    2 * segments * (rings - 1) faces."""
    theta, phi = np.meshgrid(
        np.linspace(0, np.pi, rings + 1)[1:-1], np.linspace(0, 2 * np.pi, segments, endpoint=False), indexing="ij"
    )
    radius = 1 + 0.03 * np.sin(8 * theta) * np.sin(8 * phi)
    direction = np.stack([np.sin(theta) * np.cos(phi), np.cos(theta), np.sin(theta) * np.sin(phi)], -1)
    vertices = np.vstack([(radius[..., None] * direction).reshape(-1, 3), [[0, 1, 0], [0, -1, 0]]])
    circles = rings - 1
    i, j = (x.ravel() for x in np.meshgrid(np.arange(circles - 1), np.arange(segments), indexing="ij"))

    def at(ring: np.ndarray | int, column: np.ndarray) -> np.ndarray:
        return ring * segments + column % segments

    a, b, c, d = at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1)
    column = np.arange(segments)
    top, bottom = len(vertices) - 2, len(vertices) - 1
    faces = np.concatenate([
        np.stack([a, d, b], 1),
        np.stack([d, c, b], 1),
        np.stack([np.full(segments, top), at(0, column + 1), at(0, column)], 1),
        np.stack([np.full(segments, bottom), at(circles - 1, column), at(circles - 1, column + 1)], 1),
    ])  # fmt: skip
    return vertices, faces


@pytest.fixture(scope="session")
def bumpy(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The high-res and the normal-mapped low-poly GLBs, and one frame for both (skips where no browser can
    render them, before building anything)."""
    reason = browser_render.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    import xatlas

    folder = tmp_path_factory.mktemp("three_render")
    high_vertices, high_faces = bumpy_sphere(101, 200)  # 40,000 faces
    high_normals = vertex_normals(high_vertices, high_faces)
    low_vertices, low_faces = decimate(high_vertices, high_faces, target_faces=2500)
    mapping, indices, uvs = xatlas.parametrize(low_vertices, low_faces)
    low_vertices, low_faces = low_vertices[mapping], indices.astype(np.int64)
    uvs = uvs.astype(np.float64)
    uvs[:, 1] = 1.0 - uvs[:, 1]  # xatlas: v up; glTF: v down
    low_normals = vertex_normals(low_vertices, low_faces)
    low_tangents = vertex_tangents(low_vertices, low_faces, uvs, low_normals)
    texels = rasterise(low_vertices, low_faces, uvs, MAP_SIZE)
    low = UVMesh(low_vertices, low_faces, uvs, MAP_SIZE, low_normals, low_tangents)
    high = HighResSurface(MeshScene(high_vertices, high_faces), high_normals)
    maps = bake_detail_maps(texels, low, high=high, search=0.1, distance=0.3, occlusion=False)
    assert maps.hit_fraction > 0.99
    grey = folder / "grey.png"
    Image.fromarray(np.full((8, 8, 3), 180, np.uint8)).save(grey)
    Image.fromarray(maps.normal).save(folder / "normal.png")
    write_glb(folder / "low.glb", vertices=low_vertices, faces=low_faces, uvs=uvs, normals=low_normals,
              tangents=low_tangents, albedo=grey, normal_map=folder / "normal.png")  # fmt: skip
    write_glb(folder / "high.glb", vertices=high_vertices, faces=high_faces, uvs=np.zeros((len(high_vertices), 2)),
              normals=high_normals, tangents=None, albedo=grey)  # fmt: skip
    frame = browser_render.union_box(high_vertices, low_vertices)
    return {"high": folder / "high.glb", "low": folder / "low.glb", "frame": frame, "folder": folder}


def test_three_js_shows_the_baked_normal_map(bumpy: dict) -> None:
    start = time.perf_counter()
    frame = bumpy["frame"]
    renders = {
        "a high-res": browser_render.render_gltf(bumpy["high"], size=SIZE, frame=frame),
        "b map off": browser_render.render_gltf(bumpy["low"], normal_map=False, size=SIZE, frame=frame),
        "c map on": browser_render.render_gltf(bumpy["low"], size=SIZE, frame=frame),
        "d green flipped": browser_render.render_gltf(bumpy["low"], flip_green=True, size=SIZE, frame=frame),
    }
    seconds = time.perf_counter() - start
    for name, image in renders.items():  # left for a look when the test fails
        Image.fromarray(image).save(Path(bumpy["folder"]) / f"{name.replace(' ', '_')}.png")
    high, off, on, flipped = renders.values()
    inside = browser_render.object_mask(*renders.values())
    share = float(inside.mean())
    error = {name: browser_render.mean_abs_difference(image, high, inside) for name, image in renders.items()}
    print(f"\nobject {share:.1%} of the frame, 4 renders in {seconds:.1f} s; mean |grey - high-res| inside: "
          + ", ".join(f"{name} {value:.2f}" for name, value in error.items()))  # fmt: skip

    assert 0.15 < share < 0.6, f"the object covers {share:.1%} of the frame"
    assert all(image.shape == (SIZE, SIZE, 3) for image in renders.values())
    assert np.std(high[inside].mean(axis=-1)) > 10, "the high-res render is not shaded"
    assert error["c map on"] < 0.6 * error["b map off"], error
    assert error["c map on"] < error["d green flipped"], error
    assert not np.array_equal(on, off), "the normal map changed nothing"
    assert not np.array_equal(on, flipped)
