"""bench/splat_bundle.py: a bundle packed on the CPU side trains where only torch, gsplat and plyfile exist.

The GPU machines have no open3d, pycolmap, pymeshlab, prefect, pydantic or skimage; the train
side runs here with those made unimportable, on CPU at a tiny size.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "splat_bundle.py"
BLOCKED = ("open3d", "pycolmap", "pymeshlab", "prefect", "pydantic", "skimage")
# A meta_path finder first in line: any import of a blocked top-level package fails, as on the GPU machine.
BLOCKER = """
import runpy, sys
BLOCKED = {blocked!r}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not installed on the GPU machine (blocked by the test)")
        return None

sys.meta_path.insert(0, Blocker())
sys.argv = [{bench!r}, *{argv!r}]
try:
    runpy.run_path({bench!r}, run_name="__main__")
finally:
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("blocked modules loaded:", leaked)
"""


def _run(argv: list[str], blocked: bool = False) -> subprocess.CompletedProcess[str]:
    if blocked:
        command = [sys.executable, "-c", BLOCKER.format(blocked=BLOCKED, bench=str(BENCH), argv=argv)]
    else:
        command = [sys.executable, str(BENCH), *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)


@pytest.fixture(scope="module")
def bundle(dense_run: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("bundle") / "synthetic.tar"
    depth, fusion = str(dense_run["depth"].dir), str(dense_run["fusion"].dir)
    run = _run(["pack", "--depth", depth, "--fusion", fusion, "--max-size", "320", "--out", str(out)])
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return out, run.stdout


def test_pack_writes_a_small_self_contained_bundle(bundle: tuple[Path, str]) -> None:
    path, stdout = bundle
    size = re.search(r"bundle size ([\d.]+) MiB", stdout)
    assert size is not None, stdout
    assert float(size.group(1)) < 64 and path.stat().st_size < 64 * 2**20
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        cameras = json.loads(tar.extractfile("cameras.json").read())  # type: ignore[union-attr]
    assert {"manifest.json", "cameras.json", "points.ply"} <= names
    # 20 synthetic views, every 8th held out (0, 8, 16), as the splat stage splits them
    assert (manifest["train_views"], manifest["test_views"]) == (len(cameras["train"]), len(cameras["test"]))
    assert manifest["test_views"] == 3 and manifest["train_views"] >= 10
    assert all(cam["name"] in names for cam in cameras["train"] + cameras["test"])
    assert max(manifest["resolution"]) == 320 and manifest["points"] > 1000 and manifest["scene_scale"] > 0


def test_train_runs_with_only_torch_gsplat_and_splatting(bundle: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = bundle
    out = tmp_path / "run"
    argv = ["train", "--bundle", str(path), "--out", str(out), "--device", "cpu", "--steps", "30"]
    argv += ["--max-size", "64", "--max-gaussians", "2000", "--sh-degree", "0", "--eval-every", "0"]
    argv += ["--lr-scale", "4", "--background", "0.16", "0.16", "0.16", "--comparisons", "2"]
    run = _run(argv, blocked=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "blocked modules loaded: []" in run.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["device"] == "cpu" and result["steps"] == 30
    assert 5 < result["psnr"] < 60 and result["gaussians"] > 0
    assert result["gaussians_in_ply"] == result["gaussians"]
    assert result["bundle_mib"] < 64
    assert len(list((out / "comparisons").glob("*.png"))) == 2

    from photoforge.splatting.ply import read_splat_ply

    assert len(read_splat_ply(out / "splats.ply")) == result["gaussians"]


def test_train_refuses_a_gpu_sized_run_on_cpu(bundle: tuple[Path, str], tmp_path: Path) -> None:
    run = _run(["train", "--bundle", str(bundle[0]), "--out", str(tmp_path), "--device", "cpu", "--steps", "7000"])
    assert run.returncode == 2
    assert "--steps 7000 > 2000" in run.stdout and not (tmp_path / "splats.ply").exists()
