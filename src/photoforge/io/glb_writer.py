"""A glTF 2.0 binary (GLB) writer with a TANGENT attribute, a normal map and an occlusion map.

trimesh cannot write TANGENT, so this writes the file itself: one mesh with one triangle primitive,
one node, one scene and one metal-free PBR material whose images are embedded as they are. The
output passes the Khronos glTF-Validator with no errors and no warnings (tests/test_glb.py).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

GLB_MAGIC, GLB_VERSION = 0x46546C67, 2  # "glTF"
CHUNK_JSON, CHUNK_BIN = 0x4E4F534A, 0x004E4942  # "JSON", "BIN\0"
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
FLOAT, UNSIGNED_SHORT, UNSIGNED_INT = 5126, 5123, 5125
LINEAR, LINEAR_MIPMAP_LINEAR, CLAMP_TO_EDGE = 9729, 9987, 33071
TRIANGLES = 4


def image_mime_type(path: Path, data: bytes) -> str:
    """image/png or image/jpeg from the file's signature (else its suffix); anything else is refused."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: glTF embeds PNG or JPEG images only")
    return mime


def _unit(vectors: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float32 (the validator checks it); zero rows become `fallback`'s."""
    v = np.asarray(vectors, dtype=np.float64)
    length = np.linalg.norm(v, axis=1, keepdims=True)
    bad = ~(length[:, 0] > 1e-12)
    v = np.where(bad[:, None], fallback, v / np.where(bad[:, None], 1.0, length))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def write_glb(
    path: Path,
    *,
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    normals: np.ndarray,
    tangents: np.ndarray | None,
    albedo: Path,
    normal_map: Path | None = None,
    occlusion: Path | None = None,
    name: str = "asset",
) -> None:
    """One textured mesh as a GLB. `uvs` are in glTF's convention (origin top-left, v down); `tangents`
    (V x 4, w = +-1) are written only together with a normal map, which is what they are for."""
    positions = np.ascontiguousarray(vertices, dtype=np.float32)
    count = len(positions)
    faces = np.asarray(faces)
    if positions.shape != (count, 3) or faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ValueError(f"expected V x 3 vertices and F x 3 faces, got {positions.shape} and {faces.shape}")
    if faces.min() < 0 or faces.max() >= count:
        raise ValueError("faces index vertices that do not exist")
    if np.shape(uvs) != (count, 2) or np.shape(normals) != (count, 3):
        raise ValueError(f"expected {count} x 2 uvs and {count} x 3 normals")
    unit_normals = _unit(normals, np.array([0.0, 0.0, 1.0]))

    binary = bytearray()
    buffer_views: list[dict] = []
    accessors: list[dict] = []

    def add_view(data: bytes, target: int | None = None) -> int:
        binary.extend(b"\0" * (-len(binary) % 4))  # every view starts 4-byte aligned
        view = {"buffer": 0, "byteOffset": len(binary), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        binary.extend(data)
        buffer_views.append(view)
        return len(buffer_views) - 1

    def add_accessor(array: np.ndarray, kind: str, component: int, target: int, bounds: bool = False) -> int:
        accessor = {"bufferView": add_view(array.tobytes(), target), "componentType": component}
        accessor.update(count=len(array), type=kind)
        if bounds:
            accessor.update(min=[float(x) for x in array.min(axis=0)], max=[float(x) for x in array.max(axis=0)])
        accessors.append(accessor)
        return len(accessors) - 1

    attributes = {
        "POSITION": add_accessor(positions, "VEC3", FLOAT, ARRAY_BUFFER, bounds=True),
        "NORMAL": add_accessor(unit_normals, "VEC3", FLOAT, ARRAY_BUFFER),
        "TEXCOORD_0": add_accessor(np.ascontiguousarray(uvs, dtype=np.float32), "VEC2", FLOAT, ARRAY_BUFFER),
    }
    if tangents is not None and normal_map is not None:
        tangents = np.asarray(tangents, dtype=np.float64)
        if tangents.shape != (count, 4):
            raise ValueError(f"expected {count} x 4 tangents, got {tangents.shape}")
        # a tangent must be a unit vector; a degenerate one gets any direction across its normal
        across = np.cross(unit_normals, np.where(np.abs(unit_normals[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))
        xyz = _unit(np.where(np.linalg.norm(tangents[:, :3], axis=1, keepdims=True) > 1e-12, tangents[:, :3], across),
                    np.array([1.0, 0.0, 0.0]))  # fmt: skip
        sign = np.where(tangents[:, 3:] < 0, -1.0, 1.0).astype(np.float32)
        attributes["TANGENT"] = add_accessor(np.hstack([xyz, sign]), "VEC4", FLOAT, ARRAY_BUFFER)
    small = count < 65536
    indices = np.ascontiguousarray(faces, dtype=np.uint16 if small else np.uint32).ravel()
    index = add_accessor(indices, "SCALAR", UNSIGNED_SHORT if small else UNSIGNED_INT, ELEMENT_ARRAY_BUFFER)

    images: list[dict] = []

    def add_texture(image: Path) -> dict:
        data = Path(image).read_bytes()
        images.append({"bufferView": add_view(data), "mimeType": image_mime_type(Path(image), data)})
        return {"index": len(images) - 1}

    base = {"baseColorTexture": add_texture(albedo), "metallicFactor": 0.0, "roughnessFactor": 1.0}
    material: dict = {"name": f"{name}-material", "pbrMetallicRoughness": base}
    if normal_map is not None:
        material["normalTexture"] = add_texture(normal_map)
    if occlusion is not None:
        material["occlusionTexture"] = add_texture(occlusion)  # glTF reads its R channel
    binary.extend(b"\0" * (-len(binary) % 4))  # the buffer's length is the padded BIN chunk's

    primitive = {"attributes": attributes, "indices": index, "material": 0, "mode": TRIANGLES}
    sampler = {"magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR, "wrapS": CLAMP_TO_EDGE, "wrapT": CLAMP_TO_EDGE}
    document = {
        "asset": {"version": "2.0", "generator": "photoforge"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": name, "mesh": 0}],
        "meshes": [{"name": name, "primitives": [primitive]}],
        "materials": [material],
        "textures": [{"sampler": 0, "source": i} for i in range(len(images))],
        "samplers": [sampler],
        "images": images,
        "accessors": accessors,
        "bufferViews": buffer_views,
        "buffers": [{"byteLength": len(binary)}],
    }
    Path(path).write_bytes(pack_glb(document, bytes(binary)))


def pack_glb(document: dict, binary: bytes) -> bytes:
    """The GLB container: a header, the JSON chunk padded with spaces, the BIN chunk padded with zeros."""
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(text) + (8 + len(binary) if binary else 0)
    head = struct.pack("<III", GLB_MAGIC, GLB_VERSION, total) + struct.pack("<II", len(text), CHUNK_JSON) + text
    return head + (struct.pack("<II", len(binary), CHUNK_BIN) + binary if binary else b"")
