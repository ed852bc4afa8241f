"""Open a GLB in Blender's own glTF importer (Blender in the background), as an artist hands it to Blender.

tools/blender_import.py runs inside Blender, imports the file and prints what Blender made of it: meshes,
faces, the material's shader nodes (a Normal Map node where the normal map was read), the images and the
objects' dimensions (Blender is +Z up: glTF's x, y, z extents show as x, z, y). Blender is optional:
Debian's `blender` (and `python3-numpy`, which its importer needs); scripts/test.sh installs both.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel

from photoforge.qa.gltf_validation import TOOLS

SCRIPT = TOOLS / "blender_import.py"


class BlenderImport(BaseModel):
    blender: str
    meshes: int
    faces: int
    nodes: list[str]
    images: list[tuple[str, int, int]]  # name, width, height
    dimensions: list[list[float]]  # per mesh object, Blender's axes


def unavailable_reason() -> str | None:
    if shutil.which("blender") is None:
        return "blender is not installed (apt install blender python3-numpy; scripts/test.sh does)"
    return None


def import_glb(path: Path, *, timeout: float = 180) -> BlenderImport:
    """What Blender's glTF importer makes of `path`; RuntimeError when Blender is missing or the import fails."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    command = ["blender", "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(SCRIPT), "--",
               str(Path(path).resolve())]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    line = next((x for x in run.stdout.splitlines() if x.startswith("RESULT ")), None)
    if run.returncode != 0 or line is None:
        said = (run.stderr.strip() or run.stdout.strip())[-500:]
        raise RuntimeError(f"Blender could not import {Path(path).name} (exit {run.returncode}): {said}")
    return BlenderImport.model_validate(json.loads(line.removeprefix("RESULT ")))
