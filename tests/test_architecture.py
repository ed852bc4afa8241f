"""Rules of the code's shape, checked on the source text: each rule names what it keeps single.

- Only `photoforge.render` casts rays: no other module builds an open3d RaycastingScene or calls
  cast_rays (the synthetic test captures render through it too).
- One camera type: `photoforge.camera.model.Camera` (with its pose, `Rigid3`). No other class
  stores intrinsics together with a rotation or pose.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "src" / "photoforge"
SYNTHETIC = sorted((LIBRARY / "synthetic").glob("*.py"))  # the synthetic captures render through it too


def _library_files() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- one ray caster --------------------------------------------------------------------------------

RAY_CASTING = ("RaycastingScene", "cast_rays")


def test_only_render_casts_rays() -> None:
    render = LIBRARY / "render"
    offenders = [
        f"{_name(path)}: {word}"
        for path in [*_library_files(), *SYNTHETIC]
        if render not in path.parents
        for word in RAY_CASTING
        if word in path.read_text()
    ]
    assert not offenders, f"cast rays through photoforge.render.raycast.MeshScene instead: {offenders}"


def test_render_does_cast_rays() -> None:
    """The rule above is not vacuous: the renderer is where the words are."""
    assert all(word in (LIBRARY / "render" / "raycast.py").read_text() for word in RAY_CASTING)


# --- one camera type -------------------------------------------------------------------------------

# Stored attributes that make a class a camera: intrinsics, and a rotation or pose (any name of the
# b_from_a / a_to_b kind included: cam_from_world, r_cam_to_world, world_to_camera, ...).
INTRINSICS = re.compile(r"^(k|K|intrinsics?|calibration|camera_matrix|focal|fx)$")
POSE = re.compile(r"^(r|R|rotation|pose|extrinsics?|viewmat|view|centre|center)$|_(from|to)_")
CAMERA_TYPES = {("src/photoforge/camera/model.py", "Camera"), ("src/photoforge/camera/model.py", "Rigid3")}


def _stored_attributes(cls: ast.ClassDef) -> set[str]:
    """Names a class stores: fields in its body, and `self.x = ...` in its methods (properties excluded)."""
    names: set[str] = set()
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                targets = (
                    sub.targets
                    if isinstance(sub, ast.Assign)
                    else [sub.target]
                    if isinstance(sub, ast.AnnAssign)
                    else []
                )
                names.update(
                    t.attr
                    for t in targets
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
                )
    return names


def camera_like_classes(source: str) -> list[str]:
    """Classes that store both intrinsics and a rotation or pose, with the attributes that make them so."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            names = _stored_attributes(node)
            intrinsics = sorted(n for n in names if INTRINSICS.search(n))
            pose = sorted(n for n in names if POSE.search(n))
            if intrinsics and pose:
                found.append(f"{node.name} ({', '.join(intrinsics + pose)})")
    return found


def test_the_camera_check_recognises_cameras() -> None:
    """The shapes camera-like types had before photoforge.camera.model, and the Camera itself."""
    before = """
class View:
    index: int
    k: np.ndarray
    rotation: np.ndarray  # world-to-camera
    translation: np.ndarray

class GroundTruthCamera:
    k: np.ndarray
    r_cam_to_world: np.ndarray
    centre: np.ndarray

class TrainView:
    view: torch.Tensor  # 4x4 world-to-camera
    k: torch.Tensor

class Scene:
    def __init__(self, k, pose):
        self.K = k
        self.cam_from_world = pose

class Intrinsics:  # a prior, not posed
    fx: float
    fy: float

class RegisteredView:  # holds a camera
    index: int
    camera: Camera
"""
    found = [name.split(" ")[0] for name in camera_like_classes(before)]
    assert found == ["View", "GroundTruthCamera", "TrainView", "Scene"]
    model = (LIBRARY / "camera" / "model.py").read_text()
    assert [name.split(" ")[0] for name in camera_like_classes(model)] == ["Camera"]


def test_one_camera_type() -> None:
    offenders = [
        f"{_name(path)}: {name}"
        for path in [*_library_files(), *SYNTHETIC]
        for name in camera_like_classes(path.read_text())
        if (_name(path), name.split(" ")[0]) not in CAMERA_TYPES
    ]
    assert not offenders, f"hold a photoforge.camera.model.Camera instead of intrinsics and a pose: {offenders}"
