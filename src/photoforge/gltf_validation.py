"""The Khronos glTF-Validator (npm package `gltf-validator`, run with node) on an exported file."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

TOOLS = Path(__file__).resolve().parents[2] / "tools"
SCRIPT = TOOLS / "validate_gltf.mjs"


def available() -> bool:
    return shutil.which("node") is not None and (TOOLS / "node_modules" / "gltf-validator").is_dir()


def validate(path: Path, timeout: float = 120) -> dict[str, Any]:
    """Errors, warnings and the first messages; {'available': False} where node or the validator is missing."""
    if not available():
        return {"available": False, "reason": "node or tools/node_modules/gltf-validator missing (scripts/setup.sh)"}
    run = subprocess.run(["node", str(SCRIPT), str(path)], capture_output=True, text=True, timeout=timeout, check=False)
    if run.returncode != 0:
        return {"available": True, "errors": -1, "warnings": -1, "messages": [run.stderr.strip()[-500:]]}
    report = json.loads(run.stdout)
    issues = report.get("issues", {})
    return {
        "available": True,
        "errors": int(issues.get("numErrors", -1)),
        "warnings": int(issues.get("numWarnings", -1)),
        "messages": [f"{m.get('code')}: {m.get('message')}" for m in issues.get("messages", [])[:10]],
    }
