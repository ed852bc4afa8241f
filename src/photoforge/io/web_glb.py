"""`asset.web.glb`: the asset lighter for the web, with smaller textures and meshopt-compressed geometry.

Two steps, since the npm build of gltfpack cannot re-encode textures (its -tc/-tw/-tl need the native
build's BasisU/WebP): Pillow resizes the images to `max_texture` and re-encodes them (base colour and
occlusion as JPEG, the normal map as JPEG at quality 95 without chroma subsampling: about 0.5 to 1.5
degrees of mean error against the PNG, a quarter of its size), then gltfpack quantizes the geometry
(KHR_mesh_quantization) and compresses it (EXT_meshopt_compression, -cc). Texture coordinates stay
float (-vtf): no KHR_texture_transform to undo, and no 12-bit steps across a 2k atlas.

A reader without a meshopt decoder (trimesh) cannot open the result; `decode_web_glb` writes the
plain GLB that gltfpack decodes from it, which trimesh opens and the glTF-Validator checks in full
(on the compressed file it can only report the extension as not validated).
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from photoforge.errors import StageError
from photoforge.io.glb_writer import CHUNK_BIN, CHUNK_JSON, GLB_MAGIC, pack_glb
from photoforge.qa.gltf_validation import TOOLS

GLTFPACK = TOOLS / "node_modules" / "gltfpack" / "cli.js"
GLTFPACK_FLAGS = ("-cc", "-vtf")  # meshopt + quantization, float texture coordinates
ALBEDO_QUALITY, NORMAL_QUALITY, OCCLUSION_QUALITY = 90, 95, 90


@dataclass
class WebGlb:
    path: Path
    bytes: int
    tool: str  # e.g. "gltfpack 1.3.0"


def unavailable_reason() -> str | None:
    """Why the web GLB cannot be written here (None: it can)."""
    if shutil.which("node") is None:
        return "node not found on PATH (scripts/setup.sh installs it)"
    if not GLTFPACK.is_file():
        return "tools/node_modules/gltfpack missing (scripts/setup.sh installs it)"
    return None


def tool_name() -> str:
    version = json.loads((GLTFPACK.parent / "package.json").read_text()).get("version", "?")
    return f"gltfpack {version}"


def _gltfpack(source: Path, dest: Path, flags: tuple[str, ...], what: str) -> None:
    """gltfpack on `source`, written to `dest` whole or not at all; StageError('export') when it fails."""
    reason = unavailable_reason()
    if reason is not None:
        raise StageError("export", f"cannot write {what}: {reason}", source)
    partial = dest.with_name(dest.name + ".partial.glb")
    try:
        run = subprocess.run(["node", str(GLTFPACK), "-i", str(source), "-o", str(partial), *flags],
                             capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        partial.unlink(missing_ok=True)
        raise StageError("export", f"gltfpack did not write {what} in 600 s: try a smaller mesh", source) from None
    if run.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        said = (run.stderr.strip() or run.stdout.strip() or f"exit status {run.returncode}").splitlines()[-1]
        raise StageError("export", f"gltfpack could not write {what} ({said}); run scripts/setup.sh and retry", source)
    partial.replace(dest)


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """The JSON document and BIN chunk of a GLB."""
    magic, _, _ = struct.unpack_from("<III", data)
    length, kind = struct.unpack_from("<II", data, 12)
    if magic != GLB_MAGIC or kind != CHUNK_JSON:
        raise ValueError("not a GLB file")
    document = json.loads(data[20 : 20 + length])
    rest = 20 + length
    binary = b""
    if len(data) >= rest + 8 and struct.unpack_from("<II", data, rest)[1] == CHUNK_BIN:
        binary = data[rest + 8 : rest + 8 + struct.unpack_from("<I", data, rest)[0]]
    return document, binary


def _encode(data: bytes, role: str, max_texture: int) -> tuple[bytes, str] | None:
    """An image re-encoded for its material role, at most `max_texture` pixels a side (None: keep it)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    shrink = max(image.size) > max_texture
    if not shrink and image.format == "JPEG":
        return None  # re-encoding a JPEG of the right size would only lose quality
    size = tuple(max(1, round(side * max_texture / max(image.size))) for side in image.size) if shrink else image.size
    if role == "occlusion":  # glTF reads its R channel
        image = image.convert("RGB").getchannel(0).resize(size, Image.LANCZOS)
        quality, subsampling = OCCLUSION_QUALITY, 2
    elif role == "normal":  # averaged normals are shorter: unit again after the resize
        normals = np.asarray(image.convert("RGB").resize(size, Image.LANCZOS), dtype=np.float32) / 127.5 - 1.0
        normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-6)
        image = Image.fromarray(np.clip(np.round((normals + 1.0) * 127.5), 0, 255).astype(np.uint8))
        quality, subsampling = NORMAL_QUALITY, 0  # chroma subsampling would tilt normals by ~6 degrees
    else:
        has_alpha = "A" in image.getbands() and image.getchannel("A").getextrema()[0] < 255
        image = image.convert("RGBA" if has_alpha else "RGB").resize(size, Image.LANCZOS)
        if has_alpha:  # JPEG has no alpha: a smaller PNG
            out = io.BytesIO()
            image.save(out, "PNG", optimize=True)
            return out.getvalue(), "image/png"
        quality, subsampling = ALBEDO_QUALITY, 2
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, subsampling=subsampling, optimize=True)
    return out.getvalue(), "image/jpeg"


def with_web_textures(data: bytes, max_texture: int) -> bytes:
    """The GLB with its material images resized and re-encoded for the web; everything else as it was."""
    document, binary = read_glb(data)
    roles: dict[int, str] = {}
    for material in document.get("materials", []):
        slots = {"albedo": material.get("pbrMetallicRoughness", {}).get("baseColorTexture"),
                 "normal": material.get("normalTexture"), "occlusion": material.get("occlusionTexture")}  # fmt: skip
        for role, slot in slots.items():
            if slot is not None:
                source = document["textures"][slot["index"]].get("source")
                if source is not None:
                    roles[source] = role if roles.get(source, role) == role else "mixed"
    views = document.get("bufferViews", [])
    chunks = [binary[v.get("byteOffset", 0) : v.get("byteOffset", 0) + v["byteLength"]] for v in views]
    for index, image in enumerate(document.get("images", [])):
        if roles.get(index, "mixed") != "mixed" and "bufferView" in image:
            encoded = _encode(chunks[image["bufferView"]], roles[index], max_texture)
            if encoded is not None:
                chunks[image["bufferView"]], image["mimeType"] = encoded
    packed = bytearray()
    for view, chunk in zip(views, chunks, strict=True):
        packed.extend(b"\0" * (-len(packed) % 4))
        view.update(byteOffset=len(packed), byteLength=len(chunk))
        packed.extend(chunk)
    packed.extend(b"\0" * (-len(packed) % 4))
    document["buffers"] = [{"byteLength": len(packed)}]
    return pack_glb(document, bytes(packed))


def write_web_glb(source: Path, dest: Path, *, max_texture: int = 1024, workdir: Path) -> WebGlb:
    """`source` (a GLB from write_glb) as a web GLB at `dest`: textures at most `max_texture` pixels,
    geometry quantized and meshopt-compressed by gltfpack. TANGENT is kept where a normal map uses it."""
    workdir.mkdir(parents=True, exist_ok=True)
    light = workdir / f"{dest.stem}.textures.glb"
    try:
        data = source.read_bytes()
        light.write_bytes(with_web_textures(data, max_texture))
    except OSError as exc:
        cause = f"cannot write {light.name} ({exc}): check free space and permissions"
        raise StageError("export", cause, light) from exc
    except (ValueError, KeyError, IndexError) as exc:
        cause = f"cannot read it as a GLB with images ({exc}): export the asset again"
        raise StageError("export", cause, source) from exc
    try:
        _gltfpack(light, dest, GLTFPACK_FLAGS, "the web GLB")
    finally:
        light.unlink(missing_ok=True)  # an intermediate: never part of the artefact
    return WebGlb(path=dest, bytes=dest.stat().st_size, tool=tool_name())


def decode_web_glb(path: Path, dest: Path) -> Path:
    """The web GLB with its geometry decoded to plain floats (gltfpack -noq), for readers without a meshopt
    decoder such as trimesh, and for a full glTF-Validator check of the decoded data."""
    _gltfpack(path, dest, ("-noq",), "the decoded GLB")
    return dest
