"""Check a built photoforge image (or any install) can do what the stages need, before anyone runs it.

    python scripts/image_check.py                    # node, the glTF-Validator, imports, pymeshlab plugins
    python scripts/image_check.py --pip-check --allow-missing pycolmap --cuda   # the GPU image's last step

Why: missing pieces only show at run time otherwise. Node 12 (Ubuntu 22.04's) cannot parse the
validator's top-level await, so export fails; open3d fails at import without libEGL, pycolmap-cuda12
without libSM/libICE/libX11/libXext, and pymeshlab loads its filter plugins (libOpenGL) only when a
filter runs. Each check runs the real thing; the first failure exits non-zero with what is missing.
--allow-missing: a distribution `pip check` may report missing because another provides its module
(the GPU image swaps pycolmap for pycolmap-cuda12, same module name).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

MIN_NODE = 18  # top-level await in tools/validate_gltf.mjs needs >= 14.8; 18 is the oldest we test


def check_node() -> str:
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major = int(re.match(r"v(\d+)", out).group(1))  # type: ignore[union-attr]
    if major < MIN_NODE:
        raise RuntimeError(f"node {out} is too old: the glTF-Validator script needs node >= {MIN_NODE}")
    return out


def check_validator() -> str:
    """A GLB written by trimesh through photoforge's own validator call: zero errors expected."""
    import trimesh

    from photoforge.qa import gltf_validation

    if (reason := gltf_validation.unavailable_reason()) is not None:
        raise RuntimeError(reason)
    with tempfile.TemporaryDirectory() as tmp:
        glb = Path(tmp) / "box.glb"
        trimesh.creation.box().export(glb)
        report = gltf_validation.validate(glb)
    if not report["available"]:  # node too old (a syntax error on top-level await) lands here
        raise RuntimeError(report["reason"])
    if report["errors"] != 0:
        raise RuntimeError(f"{report['errors']} errors in a trimesh box: {report['messages'][:3]}")
    return f"0 errors, {report['warnings']} warnings on a trimesh GLB"


def check_imports() -> str:
    import open3d
    import pycolmap
    import pymeshlab  # noqa: F401  (loads its own shared libraries)

    import photoforge.geometry.surfaces  # noqa: F401  (the mesh stage's work: open3d, pymeshlab, splatting)

    return f"open3d {open3d.__version__}, pymeshlab {version('pymeshlab')}, pycolmap {pycolmap.__version__}"


def check_meshlab_plugins() -> str:
    """photoforge's clean-up (plugin filters: components, holes, quadric decimation) on a sphere."""
    import numpy as np
    import trimesh

    from photoforge.geometry import meshing

    sphere = trimesh.creation.icosphere(subdivisions=4)
    _, faces = meshing.cleanup(
        np.asarray(sphere.vertices), np.asarray(sphere.faces), meshing.CleanupSettings(target_faces=1000)
    )
    if not 0 < len(faces) <= 1000:
        raise RuntimeError(f"quadric decimation to 1000 faces gave {len(faces)}")
    return f"clean-up and decimation {len(sphere.faces)} -> {len(faces)} faces"


def check_pip(allowed_missing: list[str]) -> str:
    run = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False)
    lines = [line for line in run.stdout.splitlines() if line.strip() and "No broken requirements" not in line]
    allowed = [rf"requires {re.escape(name)}, which is not installed" for name in allowed_missing]
    broken = [line for line in lines if not any(re.search(a, line) for a in allowed)]
    if broken:
        raise RuntimeError("pip check: " + "; ".join(broken))
    return "no broken requirements" + (f" (allowed: {'; '.join(lines)})" if lines else "")


def check_cuda() -> str:
    import pycolmap
    from gsplat import csrc

    if not pycolmap.has_cuda:
        raise RuntimeError("pycolmap was built without CUDA (the CPU wheel came back?)")
    return f"pycolmap with CUDA, gsplat kernels at {csrc.__file__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pip-check", action="store_true", help="also run pip check")
    parser.add_argument("--allow-missing", action="append", default=[], metavar="DIST", help="see above; repeatable")
    parser.add_argument("--cuda", action="store_true", help="also require pycolmap with CUDA and gsplat's kernels")
    args = parser.parse_args(argv)
    checks: list[tuple[str, Callable[[], str]]] = [
        ("node", check_node),
        ("glTF-Validator", check_validator),
        ("imports", check_imports),
        ("pymeshlab plugins", check_meshlab_plugins),
    ]
    if args.pip_check:
        checks.append(("pip check", lambda: check_pip(args.allow_missing)))
    if args.cuda:
        checks.append(("CUDA", check_cuda))
    for name, check in checks:
        try:
            print(f"image check: {name}: {check()}", flush=True)
        except Exception as exc:  # any failure is the answer: report it
            print(f"image check: {name} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
