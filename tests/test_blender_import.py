"""The delivered GLBs in Blender's own glTF importer: what an artist who hands the asset to Blender gets."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from photoforge.qa import blender_import
from photoforge.stage import StageResult

pytestmark = pytest.mark.skipif(
    blender_import.unavailable_reason() is not None, reason=f"{blender_import.unavailable_reason()}"
)


def test_blender_imports_every_level_with_its_maps(with_lod: StageResult) -> None:
    for level in with_lod.metrics["levels"]:
        path = with_lod.dir / level["file"]
        made = blender_import.import_glb(path)
        assert made.meshes == 1 and made.faces == level["faces"], (level["file"], made)
        assert "ShaderNodeNormalMap" in made.nodes, f"Blender did not wire {level['file']}'s normal map: {made.nodes}"
        sizes = {(w, h) for _, w, h in made.images}
        assert len(made.images) == len(level["maps"]) and sizes == {(level["texture_size"],) * 2}, made.images
        x, y, z = next(iter(trimesh.load(path).geometry.values())).extents
        np.testing.assert_allclose(made.dimensions[0], [x, z, y], rtol=1e-3)  # +Y up turned +Z up, same size
