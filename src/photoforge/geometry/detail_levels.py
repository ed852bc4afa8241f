"""Detail levels: the face budget and texture size of each deliverable, in Apple Object Capture's terms.

A level names a low-poly decimated from the cleaned high-res mesh, with its own atlas and maps
(albedo from the photos, normal and occlusion from the high-res surface). `asset.glb` is the
`export.detail` level; `export.lods` adds lighter ones. Light on purpose: presets and keys read it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

LevelName = Literal["preview", "reduced", "medium", "full", "raw"]

# name -> (face budget, None: the cleaned mesh as it is; default texture size in px)
LEVELS: dict[str, tuple[int | None, int]] = {
    "preview": (25_000, 1024),
    "reduced": (50_000, 2048),
    "medium": (100_000, 2048),
    "full": (250_000, 4096),
    "raw": (None, 4096),
}


MAX_LODS = 9  # asset_lod1.glb .. asset_lod9.glb


class DetailLevel(BaseModel):
    """What the uv stage builds for one deliverable (a plain input value: its JSON enters the key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str  # a LevelName, or "custom" for an explicit face budget
    faces: int | None  # face budget; None: keep the cleaned mesh's faces
    texture_size: int


def detail_levels(
    *, detail: LevelName, faces: int, lods: list[LevelName | int], texture_size: int | None
) -> list[DetailLevel]:
    """The main level (asset.glb) then each LOD in order.

    `faces` > 0 replaces the main level's budget (named "custom"); `texture_size` replaces its
    texture size. A LOD is a level's name or a face budget; its texture is its level's default
    (a budget's: the nearest level's at or above it), never larger than the main one's.
    """
    budget, default_size = LEVELS[detail]
    main_size = texture_size or default_size
    main = DetailLevel(
        name="custom" if faces > 0 else detail, faces=faces if faces > 0 else budget, texture_size=main_size
    )
    return [main] + [_lod(lod, main_size) for lod in lods]


def heavier_lods(*, detail: LevelName, faces: int, lods: list[LevelName | int]) -> list[str]:
    """The LODs not lighter than asset.glb's level (a LOD is a lighter version: these are mistakes)."""
    main = faces if faces > 0 else LEVELS[detail][0]
    heavier = []
    for lod in lods:
        budget = lod if isinstance(lod, int) else LEVELS[lod][0]
        if budget is None or (main is not None and budget >= main):
            heavier.append(str(lod))
    return heavier


def _lod(lod: LevelName | int, main_size: int) -> DetailLevel:
    if isinstance(lod, int):
        size = next(size for budget, size in LEVELS.values() if budget is None or budget >= lod)
        return DetailLevel(name="custom", faces=lod, texture_size=min(size, main_size))
    budget, size = LEVELS[lod]
    return DetailLevel(name=lod, faces=budget, texture_size=min(size, main_size))
