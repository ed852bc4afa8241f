"""The Khronos glTF-Validator (npm package `gltf-validator`, run with node) on an exported file.

When it cannot run, the answer says why ('available': False, 'reason'): the report then shows the
check as not done instead of passing a file nobody validated.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

TOOLS = Path(__file__).resolve().parents[3] / "tools"  # src/photoforge/qa/ -> the checkout
SCRIPT = TOOLS / "validate_gltf.mjs"


def unavailable_reason() -> str | None:
    """Why the validator cannot run here (None: it can)."""
    if shutil.which("node") is None:
        return "node not found on PATH (scripts/setup.sh installs it)"
    if not (TOOLS / "node_modules" / "gltf-validator").is_dir():
        return "tools/node_modules/gltf-validator missing (scripts/setup.sh installs it)"
    return None


def available() -> bool:
    return unavailable_reason() is None


def validate(path: Path, timeout: float = 120) -> dict[str, Any]:
    """Errors, warnings and the first messages; {'available': False, 'reason': ...} where it could not run."""
    reason = unavailable_reason()
    if reason is not None:
        return {"available": False, "reason": reason}
    try:
        run = subprocess.run(
            ["node", str(SCRIPT), str(path)], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"available": False, "reason": f"the validator did not finish in {timeout:.0f} s"}
    if run.returncode != 0:
        return {"available": False, "reason": f"the validator failed: {run.stderr.strip()[-300:]}"}
    try:
        issues = json.loads(run.stdout).get("issues", {})
    except (ValueError, AttributeError):
        return {"available": False, "reason": f"the validator's output is not a report: {run.stdout.strip()[:200]}"}
    return {
        "available": True,
        "errors": int(issues.get("numErrors", -1)),
        "warnings": int(issues.get("numWarnings", -1)),
        "messages": [f"{m.get('code')}: {m.get('message')}" for m in issues.get("messages", [])[:10]],
    }
