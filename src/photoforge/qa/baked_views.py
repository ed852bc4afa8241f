"""The bake's honest numbers: the textured mesh rendered where photos were taken, scored against them.

Left-out views (not used for the bake) and a few used ones are rendered; PSNR and SSIM are measured
inside the silhouette (and inside the user's mask of the view, when it has one: the background the
mesh may cover is not the object). Each scored view also gets its coverage: the share of what its depth map saw
that the mesh covers, so a view the mesh misses fails rather than dropping out of the mean (a view the
mesh does not reach at all is scored over the whole image).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from photoforge.camera.model import Camera, camera_in_frame
from photoforge.geometry.mvs.depthmaps import load_view
from photoforge.geometry.mvs.view_masks import view_mask
from photoforge.layout import EVAL_DIR, UNDISTORTED
from photoforge.qa.image_scores import masked_psnr, masked_ssim
from photoforge.render.raycast import sample_texture

if TYPE_CHECKING:
    from photoforge.layout import DepthViewRecord
    from photoforge.render.raycast import MeshScene

MIN_VIEW_COVERAGE = 0.5  # a scored view whose depth-seen pixels the mesh covers less than this is not covered
MAX_PSNR = 100.0  # dB, for identical images: keeps every score finite (JSON, means)


def score_baked_views(
    chosen: list[tuple[int, bool]],
    records: list[DepthViewRecord],
    depth_dir: Path,
    world_to_asset: np.ndarray,
    scene: MeshScene,
    face_uvs: np.ndarray,
    texture: np.ndarray,
    out: Path,
) -> list[dict[str, Any]]:
    """Render the textured mesh from each chosen (view index, left out) of the depth artefact's usable
    views; PSNR/SSIM inside the silhouette and the view's user mask, coverage, and a photo-beside-render
    picture in out/eval.

    Coverage is the share of the view's depth-valid pixels (what the depth stage reconstructed there)
    that the mesh covers; with no valid depth, 1 when the mesh shows at all, else 0. A view the mesh
    does not reach is scored over the whole image (its render is black): never left out of the means.
    """
    (out / EVAL_DIR).mkdir(exist_ok=True)

    def score(choice: tuple[int, bool]) -> dict[str, Any]:
        i, is_left_out = choice
        record = records[i]
        assert record.camera is not None and record.map is not None  # a usable view has both
        camera = Camera.from_json(record.camera)
        hits = scene.cast(camera_in_frame(camera, world_to_asset))
        maps = load_view(depth_dir / record.map)
        photo = maps["color"]
        render = sample_texture(hits, face_uvs, texture)
        seen = maps["depth"] > 0
        coverage = float((hits.mask & seen).sum() / seen.sum()) if seen.any() else float(hits.mask.any())
        user = view_mask(depth_dir / UNDISTORTED, record.name, photo.shape[1], photo.shape[0])
        mask = hits.mask if hits.mask.any() else np.ones_like(hits.mask)
        if user is not None and (mask & user).any():
            mask = mask & user
        side = np.concatenate([photo, render], axis=1)
        name = f"{i:04d}.jpg"
        cv2.imwrite(str(out / EVAL_DIR / name), cv2.cvtColor(side, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
        return {
            "name": record.name,
            "left_out": is_left_out,
            "psnr": round(min(masked_psnr(photo, render, mask), MAX_PSNR), 3),
            "ssim": round(_finite(masked_ssim(photo, render, mask)), 4),
            "silhouette_fraction": round(float(hits.mask.mean()), 4),
            "coverage": round(coverage, 4),
            "side_by_side": f"{EVAL_DIR}/{name}",
        }

    # two views at a time: one's numpy (sampling, SSIM) runs while the other's rays are cast
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(score, chosen))


def mean_score(rows: list[dict[str, Any]], key: str) -> float | None:
    """The mean of a score over rows, rounded (None: no rows)."""
    values = [r[key] for r in rows]
    return round(float(np.mean(values)), 3) if values else None


def _finite(value: float) -> float:
    """SSIM is NaN when the eroded silhouette is empty (a sliver of mesh): that scores as 0, not as missing."""
    return value if np.isfinite(value) else 0.0
