"""Working frames from a capture's sources: a record per photo or picked video frame, blur and duplicates.

Each source gets a record (file, time in video, sharpness, kept or rejected and why) and each
kept photo an intrinsics prior (K.txt, else EXIF) that the poses stage starts from.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from photoforge.camera.calibration import Intrinsics, intrinsics_from_k
from photoforge.errors import StageError
from photoforge.io.capture_files import CaptureFiles
from photoforge.io.frame_names import FrameNames, assign_frame_names
from photoforge.io.images import load_photo, resize_longest, save_frame, sharpness, thumbnail_signature
from photoforge.io.video_frames import select_sharp_frames

SKIP_HINT = "--set ingest.on_corrupt=skip skips such files"

log = logging.getLogger("photoforge")


@dataclass(frozen=True)
class FrameSettings:
    """The ingest params that shape each working frame."""

    max_size: int  # longest side in px; 0 keeps it
    jpeg_quality: int
    video_frames: int  # frames to pick per video
    on_corrupt: Literal["error", "skip"]


@dataclass
class FrameRecord:
    source: str
    kind: Literal["photo", "video"]
    sharpness: float
    frame: str | None = None
    time: float | None = None
    width: int = 0
    height: int = 0
    source_width: int = 0
    source_height: int = 0
    camera: str = ""
    intrinsics: dict[str, Any] | None = None
    kept: bool = True
    reason: str = ""
    set_name: str = ""
    signature: np.ndarray | None = field(default=None, repr=False)
    orientation: int = 1  # the photo's EXIF orientation: a mask may come in its stored (unturned) layout
    mask: str | None = None  # the user's mask at the working size, relative to the artefact

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("signature", "set_name", "orientation")}
        data["sharpness"] = round(self.sharpness, 2)
        if self.time is not None:
            data["time"] = round(self.time, 3)
        return data


def frame_names(files: CaptureFiles) -> FrameNames:
    """Unique frame names, fixed before decoding so that they depend on the file names alone."""
    names = assign_frame_names([files.relative(p) for p in files.photos], [files.relative(v) for v in files.videos])
    renamed = names.renamed()
    if renamed:
        shown = ", ".join(f"{source} -> {name}" for source, name in renamed[:5])
        more = f" (+{len(renamed) - 5} more)" if len(renamed) > 5 else ""
        log.info("ingest: %d source(s) renamed to keep frame names unique: %s%s", len(renamed), shown, more)
    return names


def _skip_or_raise(exc: StageError, settings: FrameSettings) -> str:
    """Under on_corrupt=skip: warn and return the reason to record; else raise, saying how to skip."""
    if settings.on_corrupt == "error":
        raise StageError(exc.stage, f"{exc.cause} ({SKIP_HINT})", exc.path) from exc
    log.warning("ingest: skipping %s: %s", exc.path, exc.cause)
    return f"corrupt: {exc.cause}"


def ingest_photo(
    files: CaptureFiles,
    path: Path,
    *,
    frames_dir: Path,
    name: str,
    settings: FrameSettings,
    k_matrix: np.ndarray | None,
) -> FrameRecord:
    """One photo decoded upright, resized and saved as frame `name`, with its intrinsics prior."""
    relative = files.relative(path)
    try:
        photo = load_photo(path)
    except StageError as exc:
        return FrameRecord(relative, "photo", 0.0, kept=False, reason=_skip_or_raise(exc, settings))
    source_h, source_w = photo.rgb.shape[:2]
    rgb = resize_longest(photo.rgb, settings.max_size)
    height, width = rgb.shape[:2]
    prior: Intrinsics | None
    if k_matrix is not None:
        prior = intrinsics_from_k(k_matrix, source_w, source_h, "K.txt")
        camera = "K.txt"
    else:
        prior = photo.exif_prior
        focal = f"|f{prior.fx:.0f}" if prior else ""
        camera = f"{photo.camera_model or 'unknown camera'}|{source_w}x{source_h}{focal}"
    save_frame(rgb, frames_dir / name, settings.jpeg_quality)
    return FrameRecord(
        source=relative,
        kind="photo",
        sharpness=sharpness(rgb),
        frame=name,
        width=width,
        height=height,
        source_width=source_w,
        source_height=source_h,
        camera=camera,
        intrinsics=prior.scaled(width, height).as_dict() if prior else None,
        set_name="photos",
        signature=thumbnail_signature(rgb),
        orientation=photo.orientation,
    )


def ingest_video(
    files: CaptureFiles, path: Path, *, frames_dir: Path, folder: str, settings: FrameSettings
) -> list[FrameRecord]:
    """The sharpest frames spread over one video, saved under `folder`."""
    relative = files.relative(path)
    try:
        picks, info = select_sharp_frames(path, settings.video_frames, settings.max_size)
    except StageError as exc:
        return [FrameRecord(relative, "video", 0.0, kept=False, reason=_skip_or_raise(exc, settings))]
    source_w, source_h = info["size"]
    records = []
    for pick in picks:
        name = f"{folder}/{pick.index:06d}.jpg"
        save_frame(pick.rgb, frames_dir / name, settings.jpeg_quality)
        height, width = pick.rgb.shape[:2]
        records.append(
            FrameRecord(
                source=relative,
                kind="video",
                sharpness=pick.sharpness,
                frame=name,
                time=pick.time,
                width=width,
                height=height,
                source_width=source_w,
                source_height=source_h,
                camera=f"video:{relative}",
                set_name=f"video:{relative}",
                signature=thumbnail_signature(pick.rgb),
            )
        )
    return records


def reject_blurred(records: list[FrameRecord], ratio: float) -> None:
    """Reject frames much blurrier than their own set (the photos, or one video's frames)."""
    sets: dict[str, list[FrameRecord]] = {}
    for record in records:
        if record.kept:
            sets.setdefault(record.set_name, []).append(record)
    for members in sets.values():
        if len(members) < 3:
            continue  # too few to tell blur from content
        median = statistics.median(r.sharpness for r in members)
        for record in members:
            if record.sharpness < ratio * median:
                record.kept = False
                record.reason = f"blurred: sharpness {record.sharpness:.1f} < {ratio:g} x median {median:.1f}"


def warn_blurred(records: list[FrameRecord], ratio: float) -> None:
    """Say which frames blur rejected: a photo misread (too dark, flat) looks blurred too."""
    blurred = [r for r in records if r.reason.startswith("blurred")]
    if not blurred:
        return
    names = [r.source if r.time is None else f"{r.source} at {r.time:.1f} s" for r in blurred]
    shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
    log.warning(
        "ingest: rejected %d frame(s) as blurred (sharpness < %g x their set's median): %s; "
        "if they look sharp, lower ingest.blur_ratio",
        len(blurred),
        ratio,
        shown,
    )


def reject_duplicates(records: list[FrameRecord], threshold: float) -> None:
    """Greedy from the sharpest: a frame too like one already kept is a near-duplicate."""
    candidates = sorted((r for r in records if r.kept), key=lambda r: -r.sharpness)
    kept_sigs: list[np.ndarray] = []
    kept_names: list[str] = []
    for record in candidates:
        assert record.signature is not None
        if kept_sigs:
            sims = np.stack(kept_sigs) @ record.signature
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                record.kept = False
                record.reason = f"near-duplicate of {kept_names[best]} (similarity {sims[best]:.4f})"
                continue
        kept_sigs.append(record.signature)
        kept_names.append(record.frame or record.source)
