"""Unique, stable working-frame names for the sources of one capture.

Frames share one folder tree and COLMAP keys images by name, so two sources with one frame name
overwrite each other and abort SfM (`X.png` and `X.png.jpg` both give `X.png.jpg`). Names are
compared as a case-insensitive filesystem would (letter case and Unicode normal form ignored), and
no name may be the folder of another (a video's frames folder, a folder named like a photo's frame).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

JPEG_SUFFIXES = (".jpg", ".jpeg")


@dataclass(frozen=True)
class FrameNames:
    photos: dict[str, str]  # photo's relative path -> its frame file
    videos: dict[str, str]  # video's relative path -> the folder of its frames

    def renamed(self) -> list[tuple[str, str]]:
        """(source, frame name) for every source whose frame is not named after it."""
        moved = [(s, n) for s, n in self.photos.items() if n != natural_photo_name(s)]
        return moved + [(s, n) for s, n in self.videos.items() if n != s]


def natural_photo_name(relative: str) -> str:
    """A JPEG keeps its relative path; any other photo gets `.jpg` appended (frames are JPEG)."""
    return relative if relative.lower().endswith(JPEG_SUFFIXES) else f"{relative}.jpg"


def assign_frame_names(photos: Sequence[str], videos: Sequence[str]) -> FrameNames:
    """Frame names from the sources' relative paths, made unique the same way for the same input.

    Every source first tries its natural name (JPEGs first, then other photos, then videos, each
    in the order given); those that conflict then get `~2`, `~3`... before the extension, so a
    JPEG that keeps its own name is never renamed because of another file.
    """
    claims = _Claims()
    wanted: list[tuple[str, str, bool]] = [(p, natural_photo_name(p), False) for p in photos]
    wanted.sort(key=lambda item: item[1] != item[0])  # stable: JPEGs first, order kept otherwise
    wanted += [(v, v, True) for v in videos]
    chosen: dict[tuple[str, bool], str] = {}
    for source, name, is_video in wanted:
        if claims.free(name):
            claims.claim(name)
            chosen[source, is_video] = name
    for source, name, is_video in wanted:
        if (source, is_video) in chosen:
            continue
        n = 2
        while not claims.free(candidate := _numbered(name, n, is_video)):
            n += 1
        claims.claim(candidate)
        chosen[source, is_video] = candidate
    return FrameNames(
        photos={p: chosen[p, False] for p in photos},
        videos={v: chosen[v, True] for v in videos},
    )


def _numbered(name: str, n: int, is_folder: bool) -> str:
    if is_folder:
        return f"{name}~{n}"
    path = PurePosixPath(name)
    return str(path.with_name(f"{path.stem}~{n}{path.suffix}"))


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


class _Claims:
    """Names taken so far: two names conflict when equal or one is a folder of the other."""

    def __init__(self) -> None:
        self._names: set[str] = set()
        self._folders: set[str] = set()

    def free(self, name: str) -> bool:
        key = _fold(name)
        if key in self._names or key in self._folders:
            return False
        return not any(folder in self._names for folder in _folders_of(key))

    def claim(self, name: str) -> None:
        key = _fold(name)
        self._names.add(key)
        self._folders.update(_folders_of(key))


def _folders_of(key: str) -> list[str]:
    parts = key.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
