"""The user's object masks: found beside the photos, fitted to the working frames, written as COLMAP reads them.

A mask is white on the object and black where photoforge must ignore the photo (COLMAP's convention).
A photo's mask is `masks/<photo file name>.png` (COLMAP's `IMG_1.jpg.png`) or `masks/<photo stem>.png`;
it is written for the frame as `MASKS_DIR/<frame name>.png` (COLMAP's mask_path layout) with only 0 and 255,
so every later stage reads one binary mask at the frame's size. Masks match the photo as it looks upright;
one that matches the stored pixels of a photo its EXIF turns by 90 degrees is turned the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from PIL import Image

from photoforge.errors import StageError
from photoforge.io.capture_files import CaptureFiles
from photoforge.io.frame_records import FrameRecord
from photoforge.layout import CAPTURE_MASKS_DIR, MASKS_DIR

log = logging.getLogger("photoforge")

OBJECT_ABOVE = 127  # grey above this is object
ASPECT_TOLERANCE = 0.01  # relative: masks saved at another resolution round their sides
# EXIF orientations that turn a photo by 90 degrees, as Pillow's exif_transpose turns them
_QUARTER_TURNS = {
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class MaskCounts:
    """What became of the capture's masks, for the stage's summary."""

    written: int  # kept photos with a mask
    missing: int  # kept photos without one (while the capture has masks)
    skipped: int  # masks unreadable or of another aspect ratio (their photos go without)
    unmatched: int  # mask files that name no photo

    def describe(self) -> str:
        """', 12 with masks (2 without)', or '' when the capture has none."""
        if not (self.written or self.skipped or self.unmatched):
            return ""
        without = self.missing + self.skipped
        return f", {self.written} with masks" + (f" ({without} without)" if without else "")


def attach_masks(files: CaptureFiles, records: list[FrameRecord], *, out: Path) -> MaskCounts:
    """Each kept photo's mask fitted to its frame under out/MASKS_DIR, named in `record.mask`."""
    if not files.masks:
        return MaskCounts(0, 0, 0, 0)
    by_name = {path.name: path for path in files.masks}
    named = {find_mask(by_name, files.relative(photo)) for photo in files.photos}
    written = missing = skipped = 0
    for record in records:
        if not (record.kept and record.kind == "photo" and record.frame):
            continue
        path = find_mask(by_name, record.source)
        if path is None:
            missing += 1
            continue
        try:
            mask = fit_mask(path, record)
        except StageError as exc:
            log.warning("%s (the photo goes without a mask)", exc)
            skipped += 1
            continue
        if not mask.any():
            log.warning("%s", StageError("ingest", "the mask is all black: nothing of the photo is object", path))
        relative = f"{MASKS_DIR}/{record.frame}.png"
        write_mask(out / relative, mask)
        record.mask = relative
        written += 1
    counts = MaskCounts(written, missing, skipped, len(set(files.masks) - named))
    _warn_about(files, counts)
    return counts


def find_mask(masks: dict[str, Path], photo: str) -> Path | None:
    """The mask named after the photo's file name (COLMAP's `IMG_1.jpg.png`), else after its stem (`IMG_1.png`)."""
    name = PurePosixPath(photo)
    return masks.get(f"{name.name}.png") or masks.get(f"{name.stem}.png")


def fit_mask(path: Path, record: FrameRecord) -> np.ndarray:
    """The mask as 0/255 at the frame's size (nearest: no grey edge), or a StageError saying why not."""
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None or grey.size == 0:
        raise StageError("ingest", "cannot read the mask (not a PNG image?)", path)
    upright = (record.source_width, record.source_height)
    height, width = grey.shape
    if not _same_aspect((width, height), upright):
        if record.orientation in _QUARTER_TURNS and _same_aspect((height, width), upright):
            grey = np.asarray(Image.fromarray(grey).transpose(_QUARTER_TURNS[record.orientation]))
        else:
            raise StageError(
                "ingest",
                f"the mask is {width}x{height} but its photo {upright[0]}x{upright[1]}: "
                "another aspect ratio; save the mask at the photo's size",
                path,
            )
    binary = np.where(grey > OBJECT_ABOVE, 255, 0).astype(np.uint8)
    return cv2.resize(binary, (record.width, record.height), interpolation=cv2.INTER_NEAREST)


def write_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), mask):
        raise StageError("ingest", "could not write the mask", path)


def _same_aspect(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return abs(a[0] * b[1] - a[1] * b[0]) <= ASPECT_TOLERANCE * b[0] * a[1]


def _warn_about(files: CaptureFiles, counts: MaskCounts) -> None:
    """One line per kind of gap: photos without a mask, masks without a photo, videos (never masked)."""
    if counts.missing:
        log.warning(
            "ingest: %d photo(s) have no mask in %s/ (named <photo file name>.png or <photo stem>.png): "
            "they go without one",
            counts.missing,
            CAPTURE_MASKS_DIR,
        )
    if counts.unmatched:
        log.warning("ingest: %d mask(s) name no photo of the capture: ignored", counts.unmatched)
    if files.videos:
        log.warning("ingest: masks apply to photos only: the frames of %d video(s) go without", len(files.videos))
