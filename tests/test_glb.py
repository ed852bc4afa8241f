"""The GLB writer (TANGENT, normal and occlusion maps) and the web GLB (gltfpack), checked with the Khronos
glTF-Validator, trimesh and three.js in headless chromium, on a UV sphere made here."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from photoforge.errors import StageError
from photoforge.io import web_glb
from photoforge.io.glb_writer import pack_glb, write_glb
from photoforge.io.web_glb import decode_web_glb, read_glb, write_web_glb
from photoforge.qa import browser_load, gltf_validation
from photoforge.texturing.tangents import vertex_tangents

MEDIUM = (24, 44)  # rings x segments: 2,112 faces
LARGE = (80, 125)  # 20,000 faces


def sphere(rings: int, segments: int) -> dict[str, np.ndarray]:
    """A sphere of radius 0.5 with a seam column: uvs from the angles (glTF's v down), normals, and the
    tangent frames the uv stage writes (texturing.tangents, MikkTSpace's convention)."""
    theta, phi = np.meshgrid(np.linspace(0, np.pi, rings + 1), np.linspace(0, 2 * np.pi, segments + 1), indexing="ij")
    normals = np.stack([np.sin(theta) * np.cos(phi), np.cos(theta), np.sin(theta) * np.sin(phi)], -1).reshape(-1, 3)
    uvs = np.stack([phi / (2 * np.pi), theta / np.pi], -1).reshape(-1, 2)
    corner = (np.arange(rings)[:, None] * (segments + 1) + np.arange(segments)[None]).ravel()
    below, right = corner + segments + 1, corner + 1
    faces = np.concatenate([np.stack([corner, below, right], 1), np.stack([right, below, below + 1], 1)])
    tangents = vertex_tangents(0.5 * normals, faces, uvs, normals)
    return {"vertices": 0.5 * normals, "faces": faces, "uvs": uvs, "normals": normals, "tangents": tangents}


def textures(folder: Path, size: int) -> dict[str, Path]:
    """Albedo, tangent-space normal map (bumps) and occlusion, as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(0)
    albedo = np.stack([x, y, 0.5 + 0.3 * np.sin(20 * x) * np.cos(15 * y)], -1) + rng.normal(0, 0.03, (size, size, 3))
    height = np.sin(24 * x) * np.sin(24 * y)
    dy, dx = np.gradient(height)
    normal = np.stack([-dx * size * 0.02, -dy * size * 0.02, np.ones_like(height)], -1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    occlusion = 0.8 + 0.2 * np.cos(7 * x) * np.cos(9 * y)
    files = {"albedo": albedo, "normal_map": normal * 0.5 + 0.5, "occlusion": np.repeat(occlusion[..., None], 3, -1)}
    for name, values in files.items():
        Image.fromarray(np.clip(np.round(values * 255), 0, 255).astype(np.uint8)).save(folder / f"{name}.png")
    return {name: folder / f"{name}.png" for name in files}


def document(path: Path) -> dict:
    return read_glb(path.read_bytes())[0]


def image_bytes(path: Path, index: int) -> bytes:
    doc, binary = read_glb(path.read_bytes())
    view = doc["bufferViews"][doc["images"][index]["bufferView"]]
    return binary[view.get("byteOffset", 0) : view.get("byteOffset", 0) + view["byteLength"]]


def assert_valid(path: Path) -> dict:
    report = gltf_validation.validate(path)
    if not report["available"]:
        pytest.skip(report["reason"])
    assert (report["errors"], report["warnings"]) == (0, 0), report["messages"]
    return report


def faces_in_trimesh(path: Path) -> int:
    loaded = trimesh.load(path)
    mesh = loaded.to_mesh() if isinstance(loaded, trimesh.Scene) else loaded
    return len(mesh.faces)


def require(reason: str | None) -> None:
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("medium")
    mesh, maps = sphere(*MEDIUM), textures(folder, 256)
    write_glb(folder / "asset.glb", **mesh, **maps)
    return {"path": folder / "asset.glb", "mesh": mesh, "maps": maps, "folder": folder}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 20k-face sphere with 1024 px maps, and its web GLB with maps at most 512 px."""
    require(web_glb.unavailable_reason())
    folder = tmp_path_factory.mktemp("web")
    mesh, maps = sphere(*LARGE), textures(folder, 1024)
    write_glb(folder / "asset.glb", **mesh, **maps)
    result = write_web_glb(folder / "asset.glb", folder / "asset.web.glb", max_texture=512, workdir=folder / "work")
    return {"source": folder / "asset.glb", "result": result, "mesh": mesh, "maps": maps, "folder": folder}


# --- write_glb -----------------------------------------------------------------------------------------


def test_glb_has_tangents_and_three_maps_and_passes_the_validator(medium: dict) -> None:
    path, faces = medium["path"], len(medium["mesh"]["faces"])
    doc = document(path)
    primitive = doc["meshes"][0]["primitives"][0]
    assert set(primitive["attributes"]) == {"POSITION", "NORMAL", "TEXCOORD_0", "TANGENT"}
    material = doc["materials"][0]
    assert {"normalTexture", "occlusionTexture"} <= set(material)
    assert material["pbrMetallicRoughness"]["metallicFactor"] == 0.0
    assert [image["mimeType"] for image in doc["images"]] == ["image/png"] * 3
    assert image_bytes(path, 1) == medium["maps"]["normal_map"].read_bytes()  # embedded as it is
    assert doc["accessors"][primitive["indices"]]["componentType"] == 5123  # uint16 under 65,536 vertices
    assert all(view["byteOffset"] % 4 == 0 for view in doc["bufferViews"])
    assert struct.unpack_from("<I", path.read_bytes(), 8)[0] == path.stat().st_size
    assert faces_in_trimesh(path) == faces
    assert_valid(path)


def test_glb_without_normal_map_has_no_tangents_and_fixes_what_the_validator_rejects(medium: dict) -> None:
    """No TANGENT without a normal map; a JPEG albedo; zero normals and unnormalised tangents made unit."""
    mesh = dict(medium["mesh"])
    mesh["normals"] = mesh["normals"] * 3.0
    mesh["normals"][[0, 5]] = 0.0
    albedo = medium["folder"] / "albedo.jpg"
    Image.open(medium["maps"]["albedo"]).save(albedo, quality=90)
    plain = medium["folder"] / "plain.glb"
    write_glb(plain, **mesh, albedo=albedo, occlusion=medium["maps"]["occlusion"])
    doc = document(plain)
    assert "TANGENT" not in doc["meshes"][0]["primitives"][0]["attributes"]
    assert "normalTexture" not in doc["materials"][0]
    assert [image["mimeType"] for image in doc["images"]] == ["image/jpeg", "image/png"]
    assert_valid(plain)

    tangents = medium["folder"] / "tangents.glb"
    skewed = mesh["tangents"] * np.array([2.0, 2.0, 2.0, 0.5])
    skewed[3] = 0.0
    write_glb(tangents, **{**mesh, "tangents": skewed}, albedo=albedo, normal_map=medium["maps"]["normal_map"])
    assert "TANGENT" in document(tangents)["meshes"][0]["primitives"][0]["attributes"]
    assert_valid(tangents)


def test_glb_indices_are_uint32_past_65535_vertices(tmp_path: Path, medium: dict) -> None:
    rng = np.random.default_rng(1)
    vertices = rng.normal(size=(70_000, 3))
    faces = np.arange(69_999 - 299, 70_000).reshape(-1, 3)
    path = tmp_path / "big.glb"
    write_glb(path, vertices=vertices, faces=faces, uvs=rng.random((70_000, 2)), normals=vertices, tangents=None,
              albedo=medium["maps"]["albedo"])  # fmt: skip
    doc = document(path)
    assert doc["accessors"][doc["meshes"][0]["primitives"][0]["indices"]]["componentType"] == 5125
    assert faces_in_trimesh(path) == 100


# --- write_web_glb -------------------------------------------------------------------------------------


def test_web_glb_is_smaller_compressed_and_valid(web: dict) -> None:
    result, source = web["result"], web["source"]
    assert result.path.is_file() and result.bytes == result.path.stat().st_size
    assert result.tool.startswith("gltfpack ")
    assert result.bytes < source.stat().st_size / 4, (result.bytes, source.stat().st_size)
    doc = document(result.path)
    assert {"EXT_meshopt_compression", "KHR_mesh_quantization"} <= set(doc["extensionsRequired"])
    assert "KHR_texture_transform" not in doc.get("extensionsUsed", [])  # float uvs: nothing to undo
    assert "TANGENT" in doc["meshes"][0]["primitives"][0]["attributes"]
    assert [image["mimeType"] for image in doc["images"]] == ["image/jpeg"] * 3
    report = assert_valid(result.path)
    # the validator cannot look inside the compressed views: it says so as an info, not a warning
    assert all(message.startswith("UNSUPPORTED_EXTENSION") for message in report["messages"]), report["messages"]


def test_web_glb_maps_are_smaller_and_the_normal_map_stays_close(web: dict) -> None:
    path = web["result"].path
    images = [Image.open(io.BytesIO(image_bytes(path, index))) for index in range(3)]
    assert [image.size for image in images] == [(512, 512)] * 3
    assert images[2].mode == "L"  # occlusion: glTF reads R, kept as one grey channel

    def unit(image: Image.Image) -> np.ndarray:
        normals = np.asarray(image.convert("RGB"), dtype=np.float64) / 127.5 - 1.0
        return normals / np.linalg.norm(normals, axis=-1, keepdims=True)

    reference = unit(Image.open(web["maps"]["normal_map"]).resize((512, 512), Image.LANCZOS))
    angles = np.degrees(np.arccos(np.clip(np.einsum("ijk,ijk->ij", unit(images[1]), reference), -1.0, 1.0)))
    assert angles.mean() < 1.5 and np.percentile(angles, 99) < 5.0, (angles.mean(), np.percentile(angles, 99))
    source_ao = np.asarray(Image.open(web["maps"]["occlusion"]).resize((512, 512)), dtype=np.float64)[..., 0]
    assert np.abs(np.asarray(images[2], dtype=np.float64) - source_ao).mean() < 3.0


def test_web_glb_decodes_for_trimesh_and_the_validator(web: dict) -> None:
    """trimesh has no meshopt decoder: gltfpack decodes the geometry, which the validator then checks in full."""
    decoded = decode_web_glb(web["result"].path, web["folder"] / "decoded.glb")
    assert "EXT_meshopt_compression" not in document(decoded).get("extensionsUsed", [])
    report = assert_valid(decoded)
    assert report["messages"] == []
    loaded = trimesh.load(decoded)
    mesh = loaded.to_mesh() if isinstance(loaded, trimesh.Scene) else loaded
    assert len(mesh.faces) == len(web["mesh"]["faces"])
    assert np.allclose(mesh.bounds, [[-0.5] * 3, [0.5] * 3], atol=1e-3)
    # uvs as the sphere's angles say (trimesh's v is up), away from the seam and the poles
    x, y, z = (mesh.vertices / np.linalg.norm(mesh.vertices, axis=1, keepdims=True)).T
    expected = np.column_stack([np.mod(np.arctan2(z, x), 2 * np.pi) / (2 * np.pi), 1 - np.arccos(y) / np.pi])
    inside = (np.abs(y) < 0.99) & (expected[:, 0] > 0.01) & (expected[:, 0] < 0.99)
    assert inside.sum() > 1000 and np.abs(mesh.visual.uv[inside] - expected[inside]).max() < 1e-3


def test_web_glb_loads_in_three_js(web: dict) -> None:
    require(browser_load.unavailable_reason())
    said = browser_load.load_gltf(web["result"].path)
    result = browser_load.parse_result(said)
    assert result["status"] == "ok", said
    assert int(result["faces"]) == len(web["mesh"]["faces"])
    assert (result["textures"], result["tangents"]) == ("3", "yes"), said
    assert np.allclose([float(x) for x in result["size"].split(",")], 1.0, atol=1e-3), said


def test_web_glb_failures_are_stage_errors(web: dict, tmp_path: Path) -> None:
    not_glb = tmp_path / "not.glb"
    not_glb.write_bytes(b"nothing like a GLB at all")
    with pytest.raises(StageError, match=r"\[export\].*GLB"):
        write_web_glb(not_glb, tmp_path / "out.glb", workdir=tmp_path / "work")

    doc, binary = read_glb(web["source"].read_bytes())
    doc["accessors"][0]["bufferView"] = 99  # gltfpack refuses a view that does not exist
    broken = tmp_path / "broken.glb"
    broken.write_bytes(pack_glb(doc, binary))
    with pytest.raises(StageError, match=r"\[export\].*gltfpack") as raised:
        write_web_glb(broken, tmp_path / "out.glb", workdir=tmp_path / "work")
    assert "\n" not in str(raised.value) and not (tmp_path / "out.glb").exists()
