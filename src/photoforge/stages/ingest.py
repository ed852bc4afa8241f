"""Stage ingest: photos and video frames in, upright working frames plus a manifest out.

Each source gets a record (file, time in video, sharpness, kept or rejected and why) and
each kept frame an intrinsics prior (K.txt, else EXIF) that the poses stage starts from.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from photoforge.camera.calibration import Intrinsics, intrinsics_from_k, read_k_matrix
from photoforge.errors import StageError
from photoforge.hashing import file_digest
from photoforge.io.capture_files import CaptureFiles, scan_capture
from photoforge.io.frame_names import FrameNames, assign_frame_names
from photoforge.io.images import load_photo, resize_longest, save_frame, sharpness, thumbnail_signature
from photoforge.io.video_frames import select_sharp_frames
from photoforge.stage import Progress, Stage, StageParams, StageResult, no_progress
from photoforge.store import ArtefactStore, write_json

STAGE = Stage(
    "ingest",
    version="2",
    libraries=("pillow", "pillow-heif", "rawpy", "opencv-python-headless", "imageio-ffmpeg", "numpy"),
)
FRAMES_DIR = "frames"
FRAMES_JSON = "frames.json"
SKIP_HINT = "--set ingest.on_corrupt=skip skips such files"

log = logging.getLogger("photoforge")


class IngestParams(StageParams):
    max_size: int = Field(1600, ge=0, description="longest side of the working frames in px; 0 keeps it")
    jpeg_quality: int = Field(95, ge=50, le=100, description="JPEG quality of the working frames")
    blur_ratio: float = Field(
        0.2, ge=0.0, lt=1.0, description="reject a frame whose sharpness is below this fraction of its set's median"
    )
    duplicate_similarity: float = Field(
        0.995, gt=0.0, le=1.0, description="reject a frame this similar (thumbnail correlation) to a sharper one"
    )
    video_frames: int = Field(60, ge=2, description="frames to pick per video, spread over the clip")
    on_corrupt: Literal["error", "skip"] = Field(
        "error", description="a corrupt photo or video fails the stage, or is skipped with a warning"
    )


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

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("signature", "set_name")}
        data["sharpness"] = round(self.sharpness, 2)
        if self.time is not None:
            data["time"] = round(self.time, 3)
        return data


def key_inputs(capture: Path | str) -> dict[str, Any]:
    """Content digests of every file ingest reads (relative names kept: they name the frames)."""
    files = scan_capture(Path(capture), warn=False)
    sources = [*files.photos, *files.videos]
    if files.calibration is not None:
        sources.append(files.calibration)
    return {"files": {files.relative(p): file_digest(p) for p in sources}}


def execute(store: ArtefactStore, capture: Path, params: IngestParams, progress: Progress = no_progress) -> StageResult:
    return STAGE.execute(store, params, key_inputs(capture), lambda out: run(capture, out, params, progress))


def run(capture: Path, out: Path, params: IngestParams, progress: Progress = no_progress) -> dict[str, Any]:
    files = scan_capture(capture)
    k_matrix = read_k_matrix(files.calibration) if files.calibration else None
    frames_dir = out / FRAMES_DIR
    names = _frame_names(files)
    records: list[FrameRecord] = []
    total = len(files.photos) + len(files.videos)
    for done, photo_path in enumerate(files.photos):
        name = names.photos[files.relative(photo_path)]
        records.append(
            _ingest_photo(files, photo_path, frames_dir=frames_dir, name=name, params=params, k_matrix=k_matrix)
        )
        progress(done + 1, total, f"photo {files.relative(photo_path)}")
    for done, video_path in enumerate(files.videos, start=len(files.photos)):
        folder = names.videos[files.relative(video_path)]
        records.extend(_ingest_video(files, video_path, frames_dir=frames_dir, folder=folder, params=params))
        progress(done + 1, total, f"video {files.relative(video_path)}")

    _reject_blurred(records, params.blur_ratio)
    _warn_blurred(records, params.blur_ratio)
    _reject_duplicates(records, params.duplicate_similarity)
    for record in records:
        if not record.kept and record.frame:
            (frames_dir / record.frame).unlink(missing_ok=True)
            record.frame = None

    kept = [r for r in records if r.kept]
    if not kept:
        reasons = "; ".join(f"{r.source}: {r.reason}" for r in records[:10])
        raise StageError("ingest", f"every frame was rejected ({reasons})", capture)
    write_json(out / FRAMES_JSON, {"frames": [r.as_json() for r in records], "skipped": _skipped(files)})
    rejected_blur = sum(r.reason.startswith("blurred") for r in records)
    rejected_dup = sum(r.reason.startswith("near-duplicate") for r in records)
    return {
        "photos": len(files.photos),
        "videos": len(files.videos),
        "frames_considered": len(records),
        "frames_kept": len(kept),
        "rejected_blurred": rejected_blur,
        "rejected_duplicate": rejected_dup,
        "rejected_corrupt": sum(r.reason.startswith("corrupt") for r in records),
        "skipped_files": len(files.skipped),
        "calibration": "K.txt" if k_matrix is not None else "exif-or-none",
        "summary": f"{len(kept)}/{len(records)} frames kept",
    }


def _skipped(files: CaptureFiles) -> list[str]:
    return [files.relative(p) for p in files.skipped]


def _frame_names(files: CaptureFiles) -> FrameNames:
    """Unique frame names, fixed before decoding so that they depend on the file names alone."""
    names = assign_frame_names([files.relative(p) for p in files.photos], [files.relative(v) for v in files.videos])
    renamed = names.renamed()
    if renamed:
        shown = ", ".join(f"{source} -> {name}" for source, name in renamed[:5])
        more = f" (+{len(renamed) - 5} more)" if len(renamed) > 5 else ""
        log.info("ingest: %d source(s) renamed to keep frame names unique: %s%s", len(renamed), shown, more)
    return names


def _skip_or_raise(exc: StageError, params: IngestParams) -> str:
    """Under on_corrupt=skip: warn and return the reason to record; else raise, saying how to skip."""
    if params.on_corrupt == "error":
        raise StageError(exc.stage, f"{exc.cause} ({SKIP_HINT})", exc.path) from exc
    log.warning("ingest: skipping %s: %s", exc.path, exc.cause)
    return f"corrupt: {exc.cause}"


def _ingest_photo(
    files: CaptureFiles,
    path: Path,
    *,
    frames_dir: Path,
    name: str,
    params: IngestParams,
    k_matrix: np.ndarray | None,
) -> FrameRecord:
    relative = files.relative(path)
    try:
        photo = load_photo(path)
    except StageError as exc:
        return FrameRecord(relative, "photo", 0.0, kept=False, reason=_skip_or_raise(exc, params))
    source_h, source_w = photo.rgb.shape[:2]
    rgb = resize_longest(photo.rgb, params.max_size)
    height, width = rgb.shape[:2]
    prior: Intrinsics | None
    if k_matrix is not None:
        prior = intrinsics_from_k(k_matrix, source_w, source_h, "K.txt")
        camera = "K.txt"
    else:
        prior = photo.exif_prior
        focal = f"|f{prior.fx:.0f}" if prior else ""
        camera = f"{photo.camera_model or 'unknown camera'}|{source_w}x{source_h}{focal}"
    save_frame(rgb, frames_dir / name, params.jpeg_quality)
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
    )


def _ingest_video(
    files: CaptureFiles, path: Path, *, frames_dir: Path, folder: str, params: IngestParams
) -> list[FrameRecord]:
    relative = files.relative(path)
    try:
        picks, info = select_sharp_frames(path, params.video_frames, params.max_size)
    except StageError as exc:
        return [FrameRecord(relative, "video", 0.0, kept=False, reason=_skip_or_raise(exc, params))]
    source_w, source_h = info["size"]
    records = []
    for pick in picks:
        name = f"{folder}/{pick.index:06d}.jpg"
        save_frame(pick.rgb, frames_dir / name, params.jpeg_quality)
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


def _reject_blurred(records: list[FrameRecord], ratio: float) -> None:
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


def _warn_blurred(records: list[FrameRecord], ratio: float) -> None:
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


def _reject_duplicates(records: list[FrameRecord], threshold: float) -> None:
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
