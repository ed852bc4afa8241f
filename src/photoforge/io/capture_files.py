"""Which files a capture holds: photos, videos, a calibration, masks and markers, and what to skip."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from photoforge.errors import StageError
from photoforge.hashing import file_digest
from photoforge.layout import CAPTURE_MASKS_DIR, MARKERS_YAML

log = logging.getLogger("photoforge")

RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2"})  # decoded by rawpy
HEIF_EXTENSIONS = frozenset({".heic", ".heif"})  # iPhone photos, decoded by pillow-heif
PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"}) | HEIF_EXTENSIONS | RAW_EXTENSIONS
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm"})
CALIBRATION_NAME = "K.txt"


@dataclass(frozen=True)
class CaptureFiles:
    root: Path
    photos: tuple[Path, ...]
    videos: tuple[Path, ...]
    calibration: Path | None
    skipped: tuple[Path, ...]
    masks: tuple[Path, ...] = ()  # PNGs under CAPTURE_MASKS_DIR: white = object (never photos themselves)
    markers: Path | None = None  # MARKERS_YAML beside the photos, for the scale stage

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


class CaptureFolder(BaseModel):
    """A capture folder as a stage input: keyed by the content of the files ingest reads, not by its path."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, value: Any) -> Any:
        """A bare path (the task's `capture` parameter) is a capture folder."""
        return {"path": str(value)} if isinstance(value, str | Path) else value

    @property
    def root(self) -> Path:
        return Path(self.path)

    def cache_key(self) -> dict[str, Any]:
        """Content digests of every file ingest reads (relative names kept: they name the frames)."""
        files = scan_capture(self.root, warn=False)
        sources = [*files.photos, *files.videos, *files.masks]
        sources += [p for p in (files.calibration, files.markers) if p is not None]
        return {"files": {files.relative(p): file_digest(p) for p in sources}}


def scan_capture(root: Path, stage: str = "ingest", warn: bool = True) -> CaptureFiles:
    """List a capture folder (nested folders too), or fail naming the folder and the cause."""
    root = Path(root)
    if not root.exists():
        raise StageError(stage, "no such file or folder", root)
    if not root.is_dir():
        raise StageError(stage, "not a folder (give the folder that holds the photos or videos)", root)
    photos: list[Path] = []
    videos: list[Path] = []
    skipped: list[Path] = []
    calibration: Path | None = None
    markers: Path | None = None
    masks: list[Path] = []
    entries = sorted(p for p in root.rglob("*") if p.is_file() and not _hidden(p.relative_to(root)))
    if not entries:
        raise StageError(stage, "the folder is empty: add photos (JPEG, PNG, TIFF, HEIC, camera RAW) or videos", root)
    for path in entries:
        suffix = path.suffix.lower()
        if _in_masks_folder(path.relative_to(root)):
            (masks if suffix == ".png" else skipped).append(path)
        elif suffix in PHOTO_EXTENSIONS:
            photos.append(path)
        elif suffix in VIDEO_EXTENSIONS:
            videos.append(path)
        elif path.name == CALIBRATION_NAME and path.parent == root:
            calibration = path
        elif path.name == MARKERS_YAML and path.parent == root:
            markers = path
        else:
            skipped.append(path)
    if not photos and not videos:
        raise StageError(
            stage,
            f"no supported files among {len(entries)}: photos need "
            f"{', '.join(sorted(PHOTO_EXTENSIONS))}, videos {', '.join(sorted(VIDEO_EXTENSIONS))}",
            root,
        )
    if skipped and warn:
        names = [p.relative_to(root).as_posix() for p in skipped]
        shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
        log.warning("ingest: skipping %d file(s) that are not photos or videos in %s: %s", len(names), root, shown)
    return CaptureFiles(root, tuple(photos), tuple(videos), calibration, tuple(skipped), tuple(masks), markers)


def _in_masks_folder(rel: Path) -> bool:
    """Under the capture's masks folder: its PNGs are masks of photos, never photos."""
    return len(rel.parts) > 1 and rel.parts[0] == CAPTURE_MASKS_DIR


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)
