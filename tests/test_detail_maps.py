"""Detail maps of a low-poly level baked from a high-res surface: tangents, normal map, occlusion, their QA."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import open3d as o3d
import pymeshlab
import pytest
import xatlas

from photoforge.qa.detail_fidelity import normal_errors, surface_deviation
from photoforge.render.detail_views import detail_comparison
from photoforge.render.raycast import MeshScene
from photoforge.texturing.atlas import Texels, rasterise
from photoforge.texturing.detail_maps import (
    bake_detail_maps,
    bake_occlusion,
    encode_normal_map,
    find_surface,
    tangent_space_normals,
    vertex_occlusion,
)
from photoforge.texturing.tangents import (
    HighResSurface,
    interpolate,
    tangent_frames,
    vertex_normals,
    vertex_tangents,
)

SIZE = 512


def sphere(resolution: int, radius: float = 1.0, bumps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A uv sphere, radius 1 + bumps sin(8 theta) sin(8 phi)."""
    mesh = o3d.geometry.TriangleMesh.create_sphere(1.0, resolution=resolution)
    vertices, faces = np.asarray(mesh.vertices).copy(), np.asarray(mesh.triangles).astype(np.int64)
    theta = np.arccos(np.clip(vertices[:, 2], -1, 1))
    phi = np.arctan2(vertices[:, 1], vertices[:, 0])
    return vertices * (radius + bumps * np.sin(8 * theta) * np.sin(8 * phi))[:, None], faces


def decimate(vertices: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(vertices, faces))
    meshes.meshing_decimation_quadric_edge_collapse(targetfacenum=target, preservenormal=True)
    mesh = meshes.current_mesh()
    return mesh.vertex_matrix(), mesh.face_matrix().astype(np.int64)


def unwrap(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xatlas charts, split at seams, uvs flipped to glTF's v down."""
    mapping, indices, uvs = xatlas.parametrize(vertices.astype(np.float32), faces.astype(np.uint32))
    uvs = uvs.astype(np.float64)
    uvs[:, 1] = 1.0 - uvs[:, 1]
    return vertices[mapping], indices.astype(np.int64), uvs


@dataclass
class Level:
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    normals: np.ndarray
    tangents: np.ndarray
    texels: Texels

    @classmethod
    def of(cls, vertices: np.ndarray, faces: np.ndarray, size: int = SIZE) -> Level:
        vertices, faces, uvs = unwrap(vertices, faces)
        normals = vertex_normals(vertices, faces)
        tangents = vertex_tangents(vertices, faces, uvs, normals)
        return cls(vertices, faces, uvs, normals, tangents, rasterise(vertices, faces, uvs, size))


@dataclass
class Bumpy:
    high: HighResSurface
    low: Level


@pytest.fixture(scope="module")
def bumpy() -> Bumpy:
    """A bumpy sphere (40k faces) and its 2.5k-face decimation, uv'd on a 512 px atlas."""
    vertices, faces = sphere(100, bumps=0.03)
    low = Level.of(*decimate(vertices, faces, 2500))
    return Bumpy(HighResSurface.of(vertices, faces), low)


def normal_values(texels: Texels, low: Level, high: HighResSurface, *, search: float) -> np.ndarray:
    """Per texel, the tangent-space high-res normal (unencoded)."""
    return tangent_space_normals(find_surface(texels, low, high=high, search=search), high)


def grid(count: int, mirrored: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A unit square in the xy plane (normal +z), count x count quads; uv u = x (1 - x mirrored), v = 1 - y."""
    x, y = np.meshgrid(np.linspace(0, 1, count + 1), np.linspace(0, 1, count + 1))
    vertices = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], axis=1)
    i = np.arange(count * (count + 1)).reshape(count, count + 1)[:, :count].ravel()
    faces = np.concatenate([np.stack([i, i + 1, i + count + 2], 1), np.stack([i, i + count + 2, i + count + 1], 1)])
    uvs = np.stack([1 - vertices[:, 0] if mirrored else vertices[:, 0], 1 - vertices[:, 1]], axis=1)
    return vertices, faces, uvs


# --- tangents ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mirrored", [False, True])
def test_tangents_follow_u_and_the_bitangent_points_up_the_image(mirrored: bool) -> None:
    """glTF: tangent along +u, w cross(n, t) towards the top of the image (v down: decreasing v)."""
    vertices, faces, uvs = grid(4, mirrored)
    normals = vertex_normals(vertices, faces)
    tangents = vertex_tangents(vertices, faces, uvs, normals)
    assert np.allclose(normals, [0, 0, 1])
    assert np.allclose(tangents[:, :3], [-1 if mirrored else 1, 0, 0], atol=1e-6)
    assert np.all(tangents[:, 3] == (-1 if mirrored else 1))
    _, bitangent, _ = tangent_frames(normals, tangents)
    assert np.allclose(bitangent, [0, 1, 0], atol=1e-6)  # +y: where v decreases


def test_tangents_on_an_atlas_are_unit_orthogonal_and_along_u(bumpy: Bumpy) -> None:
    low = bumpy.low
    t, n, w = low.tangents[:, :3].astype(np.float64), low.normals.astype(np.float64), low.tangents[:, 3]
    assert np.all(np.isfinite(low.tangents))
    assert np.allclose(np.linalg.norm(t, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(n, axis=1), 1, atol=1e-5)
    assert np.abs(np.sum(t * n, axis=1)).max() < 1e-5
    assert set(np.unique(w)) <= {-1.0, 1.0}
    # per face corner: the tangent follows the face's dP/du, the bitangent its -dP/dv (v down)
    corners, tex = low.vertices[low.faces], low.uvs[low.faces]
    d1, d2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    e1, e2 = tex[:, 1] - tex[:, 0], tex[:, 2] - tex[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-12
    dpdu = (e2[ok, 1:2] * d1[ok] - e1[ok, 1:2] * d2[ok]) / det[ok, None]
    dpdv = (e1[ok, 0:1] * d2[ok] - e2[ok, 0:1] * d1[ok]) / det[ok, None]
    for c in range(3):
        vertex = low.faces[ok, c]
        tt, bb, _ = tangent_frames(low.normals[vertex], low.tangents[vertex])
        along_u = np.sum(tt * dpdu, axis=1) / np.linalg.norm(dpdu, axis=1)
        up = -np.sum(bb * dpdv, axis=1) / np.linalg.norm(dpdv, axis=1)
        assert np.median(along_u) > 0.95 and np.mean(along_u > 0) > 0.99
        assert np.median(up) > 0.9 and np.mean(up > 0) > 0.99


def test_degenerate_faces_give_no_nans() -> None:
    vertices, faces, uvs = grid(2)
    vertices = np.concatenate([vertices, [[2.0, 0, 0], [2.0, 0, 0], [2.0, 1, 0], [5.0, 5, 5]]])  # last: unused
    uvs = np.concatenate([uvs, [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.0, 0.0]]])
    faces = np.concatenate([faces, [[9, 10, 11], [2, 5, 11]]])  # zero area; a zero uv area with room in 3D
    uvs[11] = uvs[2]
    uvs[5] = uvs[2]
    normals = vertex_normals(vertices, faces)
    tangents = vertex_tangents(vertices, faces, uvs, normals)
    assert np.all(np.isfinite(normals)) and np.all(np.isfinite(tangents))
    assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-6)
    assert np.allclose(np.linalg.norm(tangents[:, :3], axis=1), 1, atol=1e-6)
    assert np.abs(np.sum(tangents[:, :3] * normals, axis=1)).max() < 1e-6
    assert set(np.unique(tangents[:, 3])) <= {-1.0, 1.0}
    assert tangents[12, 3] == 1.0  # no face: any perpendicular, w = +1


def test_vertex_normals_are_smooth_across_uv_seams(bumpy: Bumpy) -> None:
    """Copies of a vertex on either side of a seam get one normal (no shading seam in the GLB)."""
    low = bumpy.low
    _, weld, counts = np.unique(low.vertices, axis=0, return_inverse=True, return_counts=True)
    split = counts[weld.ravel()] > 1
    assert split.any()
    order = np.argsort(weld.ravel()[split], kind="stable")
    normals, groups = low.normals[split][order], weld.ravel()[split][order]
    first = np.searchsorted(groups, groups)
    assert np.abs(normals - normals[first]).max() < 1e-6


def test_texel_barycentrics_interpolate_positions(bumpy: Bumpy) -> None:
    low = bumpy.low
    texels = low.texels
    assert texels.barycentric.shape == (len(texels.index), 3)
    assert np.allclose(texels.barycentric.sum(axis=1), 1, atol=1e-6)
    positions = interpolate(low.vertices, low.faces, texels.face, texels.barycentric)
    assert np.allclose(positions, texels.position, atol=1e-5)


# --- normal map --------------------------------------------------------------------------------------


def test_normal_map_recovers_the_high_res_shading(bumpy: Bumpy) -> None:
    low = bumpy.low
    start = time.perf_counter()
    maps = bake_detail_maps(low.texels, low, high=bumpy.high, search=0.1, rays=16, distance=0.3)
    baked = time.perf_counter() - start
    assert maps.normal.shape == (SIZE, SIZE, 3) and maps.normal.dtype == np.uint8
    assert maps.occlusion.shape == (SIZE, SIZE) and maps.occlusion.dtype == np.uint8
    assert maps.hit_fraction > 0.99
    errors = normal_errors(low, maps.normal, high=bumpy.high, samples=50_000)
    print(f"\nbake {baked:.2f} s, {len(low.texels.index)} texels; median normal error {errors}")
    assert errors["own_deg"] > 1.0
    assert errors["mapped_deg"] * 2 <= errors["own_deg"]
    assert errors["mapped_deg"] < 1.0


def test_map_of_the_surface_itself_is_flat(bumpy: Bumpy) -> None:
    low = bumpy.low
    itself = HighResSurface(MeshScene(low.vertices, low.faces), low.normals)
    values = normal_values(low.texels, low, itself, search=0.05)
    assert values.shape == (len(low.texels.index), 3) and np.all(np.isfinite(values))
    assert np.allclose(np.linalg.norm(values, axis=1), 1, atol=1e-4)
    assert values[:, 2].mean() > 0.99


def test_normal_map_green_points_up_the_image() -> None:
    """A flat level over a surface whose normals lean towards +y (the image's up): green above 128. A second
    layer, further above the level and leaning towards +x, is within reach too: the nearer surface wins."""
    vertices, faces, uvs = grid(8)
    normals = vertex_normals(vertices, faces)
    tangents = vertex_tangents(vertices, faces, uvs, normals)
    texels = rasterise(vertices, faces, uvs, 64)
    lean = np.radians(20)
    below, above = vertices - np.array([0, 0, 0.01]), vertices + np.array([0, 0, 0.03])
    high_normals = np.concatenate(
        [
            np.tile([0.0, np.sin(lean), np.cos(lean)], (len(vertices), 1)),
            np.tile([np.sin(lean), 0.0, np.cos(lean)], (len(vertices), 1)),
        ]
    )
    level = Level(vertices, faces, uvs, normals, tangents, texels)
    layers = MeshScene(np.concatenate([below, above]), np.concatenate([faces, faces + len(vertices)]))
    values = normal_values(texels, level, HighResSurface(layers, high_normals), search=0.05)
    assert np.allclose(values, [0, np.sin(lean), np.cos(lean)], atol=1e-5)
    image = encode_normal_map(values, texels, 64, padding=2)
    assert np.all(image[8:56, 8:56] == np.rint((np.array([0, np.sin(lean), np.cos(lean)]) + 1) * 127.5))


def test_empty_texels_are_flat_and_charts_dilated() -> None:
    vertices, faces, uvs = grid(2)
    uvs = 0.25 + 0.5 * uvs  # one chart in the middle of the atlas
    texels = rasterise(vertices, faces, uvs, 64)
    values = np.tile([1.0, 0.0, 0.0], (len(texels.index), 1))
    image = encode_normal_map(values, texels, 64, padding=3)
    assert np.all(image[0, 0] == [128, 128, 255])  # far from the chart: flat
    assert np.all(image[32, 32] == [255, 128, 128])
    assert np.all(image[32, 14] == [255, 128, 128])  # 2 texels left of the chart: dilated


# --- occlusion ---------------------------------------------------------------------------------------


def test_occlusion_of_a_convex_surface_is_open() -> None:
    vertices, faces = sphere(100)
    scene = MeshScene(vertices, faces)
    start = time.perf_counter()
    occlusion = vertex_occlusion(HighResSurface(scene, vertex_normals(vertices, faces)), rays=32, distance=1.0, seed=0)
    print(f"\nocclusion: {len(vertices)} vertices x 32 rays in {time.perf_counter() - start:.2f} s")
    assert occlusion.min() > 0.99


def test_occlusion_is_darker_in_a_corner_than_on_top() -> None:
    """A box standing on a floor: the floor along the box's foot is darker than the floor far away or the box's top."""
    floor = o3d.geometry.TriangleMesh.create_box(4.0, 0.02, 4.0).subdivide_midpoint(5)
    box = o3d.geometry.TriangleMesh.create_box(1.0, 1.0, 1.0).subdivide_midpoint(4)
    floor_vertices = np.asarray(floor.vertices) - [2.0, 0.02, 2.0]
    vertices = np.concatenate([floor_vertices, np.asarray(box.vertices) - [0.5, 0.0, 0.5]])
    faces = np.concatenate([np.asarray(floor.triangles), np.asarray(box.triangles) + len(floor_vertices)])
    level = Level.of(vertices, faces, size=256)
    image = bake_occlusion(level.texels, HighResSurface.of(vertices, faces), rays=64, distance=1.0, seed=0)
    assert image.shape == (256, 256) and image.dtype == np.uint8
    ao = image.ravel()[level.texels.index].astype(float)
    p = level.texels.position
    outside = np.maximum(np.abs(p[:, 0]), np.abs(p[:, 2]))
    on_floor = np.abs(p[:, 1]) < 1e-6
    corner = on_floor & (outside > 0.52) & (outside < 0.6)
    far_floor = on_floor & (outside > 1.5) & (outside < 1.9)
    top = (np.abs(p[:, 1] - 1.0) < 1e-6) & (outside < 0.4)
    assert corner.sum() > 50 and far_floor.sum() > 50 and top.sum() > 50
    print(f"\nAO: corner {ao[corner].mean():.0f}, far floor {ao[far_floor].mean():.0f}, box top {ao[top].mean():.0f}")
    assert ao[corner].mean() < ao[far_floor].mean() - 40
    assert ao[corner].mean() < ao[top].mean() - 40
    assert ao[top].mean() > 240


# --- fidelity numbers and the comparison view -------------------------------------------------------


def test_surface_deviation() -> None:
    vertices, faces = sphere(60)
    scene = MeshScene(vertices, faces)
    same = surface_deviation(vertices, faces, high=scene, samples=20_000)
    assert same["hausdorff"] < 1e-5 and same["mean"] < 1e-6
    larger = surface_deviation(vertices * 1.01, faces, high=scene, samples=20_000)
    assert abs(larger["mean"] - 0.01) < 5e-4
    assert 0.0099 < larger["hausdorff"] < 0.0105


def test_detail_comparison_shows_what_the_map_restores(bumpy: Bumpy) -> None:
    low = bumpy.low
    normal_map = bake_detail_maps(low.texels, low, high=bumpy.high, search=0.1, distance=0.3, occlusion=False).normal
    width, height = 160, 120
    image = detail_comparison(low, normal_map, high=bumpy.high, width=width, height=height)
    assert image.shape == (height, 3 * width, 3) and image.dtype == np.uint8
    high, own, mapped = (image[30:, i * width : (i + 1) * width - 2].astype(float) for i in range(3))
    assert high.std() > 20  # something lit is there
    own_error, mapped_error = np.abs(own - high).mean(), np.abs(mapped - high).mean()
    print(f"\nmean |panel - high-res|: own normals {own_error:.2f}, normal-mapped {mapped_error:.2f}")
    assert own_error > 1.0
    assert mapped_error < 0.5 * own_error
