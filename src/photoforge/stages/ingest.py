"""Stage ingest: photos and video frames in, upright working frames plus a manifest out.

Each source gets a record (file, time in video, sharpness, kept or rejected and why) and
each kept frame an intrinsics prior (K.txt, else EXIF) that the poses stage starts from.
The user's masks (capture masks/) are fitted to the kept photos' frames for every later stage, and
markers.yaml is copied for the scale stage. The per-photo and per-video work is photoforge.io.frame_records,
the masks photoforge.io.masks.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field

from photoforge.camera.calibration import read_k_matrix
from photoforge.errors import StageError
from photoforge.io.capture_files import CaptureFolder, scan_capture
from photoforge.layout import FRAMES_DIR, FRAMES_JSON, MARKERS_YAML
from photoforge.metrics import IngestMetrics
from photoforge.stage import Progress, Stage, StageInputs, StageParams
from photoforge.store import write_json


class IngestParams(StageParams):
    max_size: int = Field(1600, ge=0, description="longest side of the working frames in px; 0 keeps it")
    jpeg_quality: int = Field(95, ge=50, le=100, description="JPEG quality of the working frames")
    blur_ratio: float = Field(
        0.2, ge=0.0, lt=1.0, description="reject a frame whose sharpness is below this fraction of its set's median"
    )
    duplicate_similarity: float = Field(
        0.995, gt=0.0, le=1.0, description="reject a frame this similar (thumbnail correlation) to a sharper one"
    )
    video_frames: int = Field(80, ge=2, description="frames to pick per video, spread over the clip")
    on_corrupt: Literal["error", "skip"] = Field(
        "error", description="a corrupt photo or video fails the stage, or is skipped with a warning"
    )


class IngestInputs(StageInputs):
    capture: CaptureFolder  # keyed by the content of the files ingest reads (masks and markers.yaml too)


def run(inputs: IngestInputs, *, out: Path, params: IngestParams, progress: Progress) -> IngestMetrics:
    from photoforge.io import frame_records as fr  # the decoders (OpenCV, rawpy, ffmpeg) load when it runs
    from photoforge.io.masks import attach_masks

    capture = inputs.capture.root
    files = scan_capture(capture)
    k_matrix = read_k_matrix(files.calibration) if files.calibration else None
    frames_dir = out / FRAMES_DIR
    names = fr.frame_names(files)
    settings = fr.FrameSettings(params.max_size, params.jpeg_quality, params.video_frames, params.on_corrupt)
    records: list[fr.FrameRecord] = []
    total = len(files.photos) + len(files.videos)
    for done, photo_path in enumerate(files.photos):
        name = names.photos[files.relative(photo_path)]
        records.append(
            fr.ingest_photo(files, photo_path, frames_dir=frames_dir, name=name, settings=settings, k_matrix=k_matrix)
        )
        progress(done + 1, total, f"photo {files.relative(photo_path)}")
    for done, video_path in enumerate(files.videos, start=len(files.photos)):
        folder = names.videos[files.relative(video_path)]
        records.extend(fr.ingest_video(files, video_path, frames_dir=frames_dir, folder=folder, settings=settings))
        progress(done + 1, total, f"video {files.relative(video_path)}")

    fr.reject_blurred(records, params.blur_ratio)
    fr.warn_blurred(records, params.blur_ratio)
    fr.reject_duplicates(records, params.duplicate_similarity)
    for record in records:
        if not record.kept and record.frame:
            (frames_dir / record.frame).unlink(missing_ok=True)
            record.frame = None

    kept = [r for r in records if r.kept]
    if not kept:
        reasons = "; ".join(f"{r.source}: {r.reason}" for r in records[:10])
        raise StageError("ingest", f"every frame was rejected ({reasons})", capture)
    masks = attach_masks(files, records, out=out)
    if files.markers is not None:
        shutil.copyfile(files.markers, out / MARKERS_YAML)
    skipped = [files.relative(p) for p in files.skipped]
    write_json(out / FRAMES_JSON, {"frames": [r.as_json() for r in records], "skipped": skipped})
    return IngestMetrics(
        photos=len(files.photos),
        videos=len(files.videos),
        frames_considered=len(records),
        frames_kept=len(kept),
        rejected_blurred=sum(r.reason.startswith("blurred") for r in records),
        rejected_duplicate=sum(r.reason.startswith("near-duplicate") for r in records),
        rejected_corrupt=sum(r.reason.startswith("corrupt") for r in records),
        skipped_files=len(files.skipped),
        calibration="K.txt" if k_matrix is not None else "exif-or-none",
        summary=f"{len(kept)}/{len(records)} frames kept{masks.describe()}",
    )


STAGE = Stage("ingest", inputs=IngestInputs, params=IngestParams, metrics=IngestMetrics, run=run)
