"""Photo formats beyond 8-bit RGB: each one written here, then decoded to the pixels it holds."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import rawpy
import tifffile
from conftest import textured_rgb, write_jpeg
from PIL import Image

from photoforge.errors import StageError
from photoforge.io.images import load_photo
from photoforge.io.photo_formats import BACKGROUND
from photoforge.layout import FRAMES_JSON
from photoforge.stage import no_progress
from photoforge.stages import ingest
from photoforge.stages.ingest import IngestInputs, IngestParams

GRADIENT = (np.arange(64 * 256).reshape(64, 256) * 4 + 1).astype(np.uint16)  # every 16-bit level band


def _rgb16() -> np.ndarray:
    return np.stack([GRADIENT, GRADIENT[::-1], np.full_like(GRADIENT, 40_000)], axis=-1)


def test_16bit_grey_png_keeps_its_top_byte(tmp_path: Path) -> None:
    path = tmp_path / "grey16.png"
    Image.fromarray(GRADIENT).save(path)  # Pillow writes I;16 as a 16-bit greyscale PNG
    assert Image.open(path).mode == "I;16"
    rgb = load_photo(path).rgb
    assert rgb.shape == (64, 256, 3) and rgb.dtype == np.uint8
    expected = (GRADIENT >> 8).astype(int)
    for channel in range(3):
        assert np.abs(rgb[..., channel].astype(int) - expected).max() <= 1
    assert rgb.min() == 0 and rgb.max() == 255  # the full range, not clipped to white


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_16bit_rgb_and_grey_tiff_and_png(tmp_path: Path, suffix: str) -> None:
    rgb16 = _rgb16()
    cv2.imwrite(str(tmp_path / f"rgb{suffix}"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / f"grey{suffix}"), GRADIENT)
    rgb = load_photo(tmp_path / f"rgb{suffix}").rgb
    assert np.abs(rgb.astype(int) - (rgb16 >> 8)).max() <= 1
    grey = load_photo(tmp_path / f"grey{suffix}").rgb
    assert np.abs(grey[..., 1].astype(int) - (GRADIENT >> 8)).max() <= 1


def test_float_tiff_grey_and_rgb(tmp_path: Path) -> None:
    grey = (GRADIENT / 65535).astype(np.float32)
    Image.fromarray(grey, mode="F").save(tmp_path / "grey.tif")
    rgb_float = (_rgb16() / 65535).astype(np.float32)
    cv2.imwrite(str(tmp_path / "rgb.tif"), cv2.cvtColor(rgb_float, cv2.COLOR_RGB2BGR))  # Pillow cannot open this
    decoded = load_photo(tmp_path / "grey.tif").rgb
    assert np.abs(decoded[..., 0].astype(int) - np.round(grey * 255)).max() <= 1
    decoded = load_photo(tmp_path / "rgb.tif").rgb
    assert np.abs(decoded.astype(int) - np.round(rgb_float * 255)).max() <= 1


def test_cmyk_jpeg_becomes_rgb_close_to_the_source(tmp_path: Path) -> None:
    source = textured_rgb(4, 128, 96)
    Image.fromarray(source).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    rgb = load_photo(tmp_path / "cmyk.jpg").rgb
    assert rgb.shape == source.shape
    assert np.abs(rgb.astype(float) - source).mean() < 6  # JPEG noise only


def test_palette_png_with_and_without_transparency(tmp_path: Path) -> None:
    index = np.zeros((8, 8), np.uint8)
    index[:, 4:] = 1
    index[4:, :] = 2
    palette = [200, 10, 10, 10, 200, 10, 10, 10, 200] + [0] * 759
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette)
    image.save(tmp_path / "opaque.png")
    image.save(tmp_path / "holes.png", transparency=2)  # index 2 (blue) fully transparent
    opaque = load_photo(tmp_path / "opaque.png").rgb
    assert opaque[0, 0].tolist() == [200, 10, 10] and opaque[0, 7].tolist() == [10, 200, 10]
    assert opaque[7, 0].tolist() == [10, 10, 200]
    holes = load_photo(tmp_path / "holes.png").rgb
    assert holes[0, 0].tolist() == [200, 10, 10]
    assert holes[7, 0].tolist() == [BACKGROUND] * 3


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_over_grey(tmp_path: Path, mode: str) -> None:
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = 240
    rgba[:, :2, 3] = 255  # opaque
    rgba[:, 2:4, 3] = 0  # transparent
    rgba[:, 4:, 3] = 128  # half
    image = Image.fromarray(rgba, mode="RGBA")
    (image if mode == "RGBA" else image.convert("LA")).save(tmp_path / "alpha.png")
    rgb = load_photo(tmp_path / "alpha.png").rgb
    assert rgb[0, 0].tolist() == [240] * 3
    assert rgb[0, 2].tolist() == [BACKGROUND] * 3
    assert np.abs(rgb[0, 4].astype(int) - (240 * 128 + BACKGROUND * 127) / 255).max() <= 1


def test_heic_orientation_and_focal_prior(tmp_path: Path) -> None:
    rgb = np.zeros((240, 320, 3), np.uint8)
    rgb[:, :160] = (220, 40, 40)
    rgb[:120] = (40, 40, 220)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 15"
    exif.get_ifd(0x8769)[0xA405] = 26  # 35 mm-equivalent focal length
    path = tmp_path / "IMG_0001.HEIC"
    Image.fromarray(rgb).save(path, format="HEIF", exif=exif.tobytes(), quality=95)
    photo = load_photo(path)
    assert photo.rgb.shape == (320, 240, 3)
    upright = np.rot90(rgb, k=-1)
    assert np.abs(photo.rgb.astype(float) - upright).mean() < 8
    assert photo.camera_model == "Apple iPhone 15"
    assert photo.exif_prior is not None
    assert photo.exif_prior.fx == pytest.approx(26 / math.hypot(36, 24) * math.hypot(240, 320))


def _write_dng(path: Path, rgb: np.ndarray, *, orientation: int, focal_35: int) -> None:
    """A Bayer (RGGB) DNG as cameras write it: IFD0 a small preview with the tags, the raw in a SubIFD."""
    h, w = rgb.shape[:2]
    cfa = np.empty((h, w), np.uint16)
    cfa[0::2, 0::2] = rgb[0::2, 0::2, 0] * 4095
    cfa[0::2, 1::2] = rgb[0::2, 1::2, 1] * 4095
    cfa[1::2, 0::2] = rgb[1::2, 0::2, 1] * 4095
    cfa[1::2, 1::2] = rgb[1::2, 1::2, 2] * 4095
    xyz_to_srgb = [3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570]
    color_matrix = tuple(v for x in xyz_to_srgb for v in (round(x * 10000), 10000))
    main_tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "Acme RawCam", True),  # UniqueCameraModel
        (271, "s", 0, "Acme", True),
        (272, "s", 0, "RawCam", True),
        (274, "H", 1, orientation, True),
        (41989, "H", 1, focal_35, True),  # FocalLengthIn35mmFilm (TIFF/EP: in IFD0)
        (50721, "2i", 9, color_matrix, True),  # ColorMatrix1: XYZ to camera (= linear sRGB)
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral
    ]
    raw_tags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
        (50717, "I", 1, 4095, True),  # WhiteLevel
        (50714, "H", 1, 0, True),  # BlackLevel
    ]
    preview = (rgb[::4, ::4] * 255).astype(np.uint8)
    with tifffile.TiffWriter(path) as tif:
        tif.write(preview, photometric="rgb", subfiletype=1, subifds=1, extratags=main_tags)
        tif.write(cfa, photometric=32803, subfiletype=0, extratags=raw_tags)


@pytest.mark.parametrize("name", ["shot.dng", "shot.NEF"])
def test_camera_raw_is_demosaiced_upright_with_its_exif_prior(tmp_path: Path, name: str) -> None:
    scene = np.zeros((64, 96, 3))
    scene[:, :48] = (0.6, 0.2, 0.1)  # left half red
    scene[:, 48:] = (0.1, 0.2, 0.6)  # right half blue
    _write_dng(tmp_path / name, scene, orientation=6, focal_35=50)  # LibRaw reads a DNG by content
    photo = load_photo(tmp_path / name)
    assert photo.rgb.shape == (96, 64, 3)  # turned upright: the left half is now on top
    top, bottom = photo.rgb[:40].reshape(-1, 3).mean(0), photo.rgb[56:].reshape(-1, 3).mean(0)
    assert top[0] > top[2] + 60 and bottom[2] > bottom[0] + 60
    assert photo.camera_model == "Acme RawCam"
    assert photo.exif_prior is not None
    assert photo.exif_prior.fx == pytest.approx(50 / math.hypot(36, 24) * math.hypot(64, 96))


def test_raw_without_reachable_exif_has_no_prior(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A RAW Pillow cannot parse (CR3, RAF...) and without an embedded JPEG: decoded, no prior."""
    developed = textured_rgb(5, 90, 60)

    class FakeRaw:
        def __enter__(self) -> FakeRaw:
            return self

        def __exit__(self, *args: object) -> None:
            return None

        def postprocess(self, **kwargs: object) -> np.ndarray:
            assert kwargs == {"use_camera_wb": True, "output_bps": 8}
            return developed

        def extract_thumb(self) -> None:
            raise rawpy.LibRawNoThumbnailError(b"No thumbnail in file")

    monkeypatch.setattr(rawpy, "imread", lambda path: FakeRaw())
    path = tmp_path / "IMG_0001.CR3"
    path.write_bytes(b"\x00\x00\x00\x18ftypcrx " + bytes(64))
    photo = load_photo(path)
    assert np.array_equal(photo.rgb, developed)
    assert photo.exif_prior is None and photo.camera_model == ""


def test_corrupt_raw_fails_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.ARW"
    path.write_bytes(b"not a raw file at all" * 20)
    with pytest.raises(StageError, match="camera RAW") as info:
        load_photo(path)
    assert info.value.path == str(path) and "b'" not in info.value.cause


def test_ingest_takes_every_format_and_none_is_rejected_as_blurred(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Misdecoded photos (16-bit read as white) used to be dropped as 'blurred' without a word."""
    capture = tmp_path / "cap"
    for seed in range(3):
        write_jpeg(capture / f"p{seed}.jpg", textured_rgb(seed))
    texture16 = textured_rgb(10)[..., 0].astype(np.uint16) * 257
    Image.fromarray(texture16).save(capture / "grey16.png")
    Image.fromarray(textured_rgb(11)).save(capture / "phone.heic", quality=90)
    _write_dng(capture / "raw.dng", textured_rgb(12, 320, 240) / 255.0, orientation=1, focal_35=35)
    out = tmp_path / "out"
    out.mkdir()
    with caplog.at_level(logging.WARNING, logger="photoforge"):
        metrics = ingest.run(
            IngestInputs(capture=capture), out=out, params=IngestParams(duplicate_similarity=1.0), progress=no_progress
        )
    records = {r["source"]: r for r in json.loads((out / FRAMES_JSON).read_text())["frames"]}
    assert metrics.frames_kept == 6, {s: r["reason"] for s, r in records.items()}
    assert records["raw.dng"]["intrinsics"]["source"] == "exif"
    assert "blurred" not in caplog.text
