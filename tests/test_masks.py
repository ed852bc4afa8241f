"""The user's object masks (capture masks/): ingest fits them to the frames, poses extracts no feature
outside them, depth keeps no depth outside them; the bake keeps background colour off the texture."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
import pycolmap
import pytest
import xatlas
from conftest import textured_rgb, write_jpeg
from PIL import Image

from photoforge.camera import sfm
from photoforge.camera.model import Camera
from photoforge.geometry.mvs.depthmaps import load_view
from photoforge.geometry.mvs.view_masks import view_mask, warp_mask
from photoforge.io.capture_files import CaptureFolder
from photoforge.io.images import sharpness
from photoforge.layout import FRAMES_JSON, MARKERS_YAML, MASKS_DIR, DepthViews, Frames, UVMesh
from photoforge.qa.baked_views import score_baked_views
from photoforge.qa.image_scores import masked_psnr
from photoforge.qa.pose_errors import read_strecha_dir
from photoforge.render.raycast import MeshScene
from photoforge.stage import no_progress
from photoforge.stages import depth, ingest, poses
from photoforge.store import ArtefactStore
from photoforge.texturing.atlas import rasterise
from photoforge.texturing.bake import BakeSettings, bake_texture, photo_sources
from photoforge.texturing.object_masks import BAND, INSIDE, OUTSIDE, object_levels
from photoforge.texturing.sources import PhotoSource
from photoforge.texturing.tangents import vertex_normals, vertex_tangents

try:  # the synthetic captures are moving from tests/ into the library
    from photoforge.synthetic import ring_cameras  # type: ignore[attr-defined]
except ImportError:
    from support_synthetic import ring_cameras  # type: ignore[no-redef]

RIM_PX = 8  # the test masks leave out this much of the object's rim (where SIFT finds keypoints)


def _ingest(capture: Path, out: Path, **params: object) -> tuple[str, dict[str, dict]]:
    """Stage ingest's run into `out`: its summary, and frames.json's records by source."""
    out.mkdir(parents=True, exist_ok=True)
    inputs = ingest.IngestInputs(capture=capture)
    metrics = ingest.run(inputs, out=out, params=ingest.IngestParams(**params), progress=no_progress)
    records = json.loads((out / FRAMES_JSON).read_text())["frames"]
    return metrics.summary, {r["source"]: r for r in records}


def _grey(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None, path
    return image


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Three 640x480 JPEGs (a.jpg, b.jpg, c.jpg) in a capture folder, no masks yet."""
    capture = tmp_path / "cap"
    for seed, name in enumerate("abc", start=1):
        write_jpeg(capture / f"{name}.jpg", textured_rgb(seed))
    (capture / "masks").mkdir()
    return capture


def test_ingest_fits_masks_to_the_frames(photos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    half = np.zeros((240, 320), np.uint8)  # half the photo's size: the same aspect ratio
    half[:, :100] = 255
    half[:, 100:110] = 128  # grey above 127 is object, 127 is not
    half[:, 110:120] = 127
    cv2.imwrite(str(photos / "masks" / "a.jpg.png"), half)  # COLMAP's name
    cv2.imwrite(str(photos / "masks" / "b.png"), np.full((100, 100), 255, np.uint8))  # another aspect ratio
    (photos / "masks" / "c.png").write_bytes(b"not a png")  # the stem's name, unreadable
    write_jpeg(photos / "d.jpg", textured_rgb(4))  # no mask
    cv2.imwrite(str(photos / "masks" / "e.png"), half)  # no photo
    (photos / "markers.yaml").write_text("size: 0.05 # metres\n")
    with caplog.at_level(logging.WARNING, logger="photoforge"):
        summary, records = _ingest(photos, tmp_path / "out", max_size=320)

    assert set(records) == {"a.jpg", "b.jpg", "c.jpg", "d.jpg"}  # the masks are no photos
    assert summary == "4/4 frames kept, 1 with masks (3 without)"
    assert records["a.jpg"]["mask"] == f"{MASKS_DIR}/a.jpg.png"
    assert records["b.jpg"]["mask"] is None and records["c.jpg"]["mask"] is None
    mask = _grey(tmp_path / "out" / records["a.jpg"]["mask"])
    assert mask.shape == (240, 320)  # the working frame's size
    assert set(np.unique(mask)) == {0, 255}
    assert (mask[:, :110] == 255).all() and (mask[:, 110:] == 0).all()
    assert (tmp_path / "out" / MARKERS_YAML).read_text() == "size: 0.05 # metres\n"
    lines = caplog.text.splitlines()
    assert any(f"[ingest] {photos / 'masks' / 'b.png'}: the mask is 100x100 but its photo 640x480" in x for x in lines)
    assert any(f"[ingest] {photos / 'masks' / 'c.png'}: cannot read the mask" in x for x in lines)
    assert any("1 photo(s) have no mask in masks/" in x for x in lines)
    assert any("1 mask(s) name no photo" in x for x in lines)


def test_a_mask_of_the_stored_layout_turns_with_its_photo(photos: Path, tmp_path: Path) -> None:
    """A phone photo stored 640x480 and shown upright by EXIF: its COLMAP-style mask of the stored pixels fits."""
    stored = textured_rgb(7)
    stored[:, :160] = 255  # a white band on the stored left: the object, for this test
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to display
    write_jpeg(photos / "a.jpg", stored, exif)
    mask = np.zeros((480, 640), np.uint8)
    mask[:, :160] = 255
    cv2.imwrite(str(photos / "masks" / "a.png"), mask)
    _, records = _ingest(photos, tmp_path / "out", max_size=320)

    record = records["a.jpg"]
    assert (record["width"], record["height"]) == (240, 320)
    fitted = _grey(tmp_path / "out" / record["mask"]) > 0
    frame = cv2.imread(str(tmp_path / "out" / "frames" / record["frame"]), cv2.IMREAD_GRAYSCALE)
    assert fitted.shape == frame.shape
    assert (frame[fitted] > 240).mean() > 0.99  # the mask covers the white band where the frame shows it
    assert (frame[~fitted] > 240).mean() < 0.05


def test_masks_and_markers_are_part_of_the_ingest_key(photos: Path) -> None:
    def key() -> str:
        return ingest.STAGE.key(ingest.IngestInputs(capture=CaptureFolder(path=str(photos))), ingest.IngestParams())

    cv2.imwrite(str(photos / "masks" / "a.png"), np.full((480, 640), 255, np.uint8))
    first = key()
    assert key() == first
    edited = np.full((480, 640), 255, np.uint8)
    edited[0, 0] = 0
    cv2.imwrite(str(photos / "masks" / "a.png"), edited)
    second = key()
    assert second != first
    (photos / MARKERS_YAML).write_text("size: 0.05\n")
    assert key() != second


# --- ingest -> poses -> depth on the synthetic blob, its masks leaving out the object's rim ----------------------


@pytest.fixture(scope="module")
def masked_run(synthetic, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[no-untyped-def]
    """The synthetic capture with a mask per photo but the last (the true silhouette less RIM_PX),
    named both ways; ingest, poses and depth (cpu, small) on it."""
    root = tmp_path_factory.mktemp("masked")
    capture = root / "capture"
    shutil.copytree(synthetic.capture, capture)
    mesh = o3d.io.read_triangle_mesh(str(synthetic.mesh))
    scene = MeshScene(np.asarray(mesh.vertices), np.asarray(mesh.triangles))
    rim = np.ones((2 * RIM_PX + 1, 2 * RIM_PX + 1), np.uint8)
    (capture / "masks").mkdir()
    cameras = sorted(read_strecha_dir(synthetic.cameras).items())
    for i, (name, camera) in enumerate(cameras[:-1]):
        mask = cv2.erode(scene.cast(camera).mask.astype(np.uint8) * 255, rim)
        named = f"{name}.png" if i % 2 else f"{Path(name).stem}.png"  # view_001.png.png, view_000.png
        cv2.imwrite(str(capture / "masks" / named), mask)
    store = ArtefactStore(root / "ws", "masked")
    frames = ingest.STAGE.execute(store, ingest.IngestInputs(capture=capture), ingest.IngestParams())
    sparse = poses.STAGE.execute(store, poses.PosesInputs(ingest=frames), poses.PosesParams())
    params = depth.DepthParams(backend="cpu", max_size=120, planes=24, neighbours=2)
    depth_maps = depth.STAGE.execute(store, depth.DepthInputs(ingest=frames, poses=sparse), params)
    return {"ingest": frames, "poses": sparse, "depth": depth_maps, "unmasked": f"images/{cameras[-1][0]}.jpg"}


def test_every_photo_but_one_got_its_mask(masked_run: dict) -> None:
    frames = Frames.read(masked_run["ingest"].dir)
    assert masked_run["ingest"].metrics["summary"] == "20/20 frames kept, 19 with masks (1 without)"
    for frame in frames.kept:
        if frame.frame == masked_run["unmasked"]:
            assert frame.mask is None
            continue
        assert frame.mask == f"{MASKS_DIR}/{frame.frame}.png"  # COLMAP's mask_path layout
        assert _grey(frames.dir / frame.mask).shape == (frame.height, frame.width)


def test_poses_extracts_no_keypoint_outside_the_masks(masked_run: dict, tmp_path: Path) -> None:
    frames = Frames.read(masked_run["ingest"].dir)
    masks = {f.frame: _grey(frames.dir / f.mask) > 0 for f in frames.kept if f.mask}
    assert masked_run["poses"].metrics["registered"] == 20

    def outside(database: Path) -> tuple[int, int]:
        """Keypoints outside the masks, and keypoints in all, over the masked frames."""
        found = total = 0
        with pycolmap.Database.open(database) as db:
            for image in db.read_all_images():
                if image.name in masks:
                    xy = db.read_keypoints(image.image_id)[:, :2].astype(int)  # COLMAP: pixel i covers [i, i+1)
                    found += int((~masks[image.name][xy[:, 1], xy[:, 0]]).sum())
                    total += len(xy)
        return found, total

    found, total = outside(masked_run["poses"].dir / "database.db")
    assert found == 0 and total > 5000
    # the same frames without their masks: SIFT does find keypoints on the left-out rim
    group = sfm.CameraGroup("all", tuple(f.frame for f in frames.kept if f.frame), "SIMPLE_RADIAL", "", False)
    sfm.extract(tmp_path / "unmasked.db", frames.images, [group], 8192)
    assert outside(tmp_path / "unmasked.db")[0] > 500


def test_depth_is_zero_outside_the_masks(masked_run: dict) -> None:
    views = DepthViews.read(masked_run["depth"].dir)
    assert len(views.usable) == 20
    inside = []
    for record in views.usable:
        assert record.map is not None
        d = load_view(views.dir / record.map)["depth"]
        mask = view_mask(views.undistorted, record.name, d.shape[1], d.shape[0])
        if record.name == masked_run["unmasked"]:
            assert mask is None
            continue
        assert mask is not None and mask.any()
        assert not (d[~mask] > 0).any()
        inside.append((d[mask] > 0).mean())
    assert np.mean(inside) > 0.4  # the object keeps its depth


def test_masks_undistort_as_colmap_undistorts_images() -> None:
    camera = pycolmap.Camera(model="SIMPLE_RADIAL", width=320, height=240, params=[300.0, 160.0, 120.0, 0.2])
    mask = np.zeros((240, 320), np.uint8)
    cv2.circle(mask, (200, 90), 70, 255, -1)
    mask[:, :20] = 255
    image, pinhole = pycolmap.undistort_image(
        pycolmap.UndistortCameraOptions(), pycolmap.Bitmap.from_array(mask), camera
    )
    reference = image.to_array() > 127  # COLMAP warps bilinearly
    ours = warp_mask(mask, source=camera, target=pinhole)
    assert ours.shape == reference.shape and set(np.unique(ours)) == {0, 255}
    assert (reference != (ours > 0)).mean() < 0.002  # a few edge pixels
    assert (reference != (mask[: ours.shape[0], : ours.shape[1]] > 0)).mean() > 0.02  # distortion does move it


def test_bake_reads_the_undistorted_user_masks(masked_run: dict) -> None:
    """Each bake view's levels come from its user mask, eroded: no silhouette is cast where one exists."""
    records = DepthViews.read(masked_run["depth"].dir).usable
    far = MeshScene(np.array([[0, 0, 1e6], [1, 0, 1e6], [0, 1, 1e6]], float), np.array([[0, 1, 2]]))
    sources = photo_sources(
        Frames.read(masked_run["ingest"].dir),
        records,
        list(range(len(records))),
        capture=Path("unused"),
        poses_dir=masked_run["poses"].dir,
        depth_dir=masked_run["depth"].dir,
        world_to_asset=np.eye(4),
        full_resolution=False,
        scene=far,  # a silhouette of it would be empty
        erode_px=2,
    )
    undistorted = masked_run["depth"].dir / "undistorted"
    for source in sources:
        height, width = source.image.shape[:2]
        user = view_mask(undistorted, source.name, width, height)
        assert source.mask is not None
        if user is None:  # the photo without a mask: the mesh's silhouette, empty here
            assert (source.mask == OUTSIDE).all()
            continue
        assert np.array_equal(source.mask > OUTSIDE, user)
        assert 0 < (source.mask == BAND).sum() < (source.mask == INSIDE).sum()


def test_left_out_scores_count_only_the_user_mask(masked_run: dict, tmp_path: Path) -> None:
    """A mesh around every camera covers each whole view: the score of a masked view is over its mask alone."""
    records = DepthViews.read(masked_run["depth"].dir).usable
    centres = np.array([Camera.from_json(r.camera or {}).centre for r in records])
    middle = centres.mean(axis=0)
    vertices, faces = _sphere(10 * float(np.linalg.norm(centres - middle, axis=1).max()), 16)
    scene = MeshScene(vertices + middle, faces)
    texture = np.full((4, 4, 3), (200, 120, 60), np.uint8)
    masked = next(i for i, r in enumerate(records) if r.name != masked_run["unmasked"])
    plain = next(i for i, r in enumerate(records) if r.name == masked_run["unmasked"])
    chosen = [(masked, True), (plain, True)]
    face_uvs = np.zeros((len(faces), 3, 2))
    rows = score_baked_views(chosen, records, masked_run["depth"].dir, np.eye(4), scene, face_uvs, texture, tmp_path)
    for row, (i, _) in zip(rows, chosen, strict=True):
        photo = load_view(masked_run["depth"].dir / (records[i].map or ""))["color"]
        flat = np.broadcast_to(texture[0, 0], photo.shape)
        user = view_mask(masked_run["depth"].dir / "undistorted", records[i].name, photo.shape[1], photo.shape[0])
        region = np.ones(photo.shape[:2], bool) if user is None else user
        assert row["silhouette_fraction"] == 1.0
        assert row["psnr"] == pytest.approx(masked_psnr(photo, flat, region), abs=1e-3)
        if user is not None:  # the backdrop would count otherwise
            assert abs(row["psnr"] - masked_psnr(photo, flat, np.ones_like(user))) > 0.5


# --- the bake: a grey ball on pure red, baked onto a mesh a little larger than the ball ---------------------


def _sphere(radius: float, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    mesh = o3d.geometry.TriangleMesh.create_sphere(radius=radius, resolution=resolution)
    return np.asarray(mesh.vertices), np.asarray(mesh.triangles)


@pytest.fixture(scope="module")
def red_backdrop() -> dict:
    """12 views (160x120) of a grey unit ball in front of pure red, its true silhouettes, and an atlas of
    a ball 4% larger (a mesh never fits exactly: its outline shows a sliver of background)."""
    k = np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]])
    cameras = ring_cameras(12, 4.0, k, 160, 120)
    ball = MeshScene(*_sphere(1.0, 60))
    photos, silhouettes = [], []
    for camera in cameras:
        covered = ball.cast(camera, supersample=2).mask[..., None]
        sharp = np.where(covered, np.uint8(128), np.array([255, 0, 0], np.uint8))
        photos.append(cv2.resize(sharp, (160, 120), interpolation=cv2.INTER_AREA))  # edges mix, as in photos
        silhouettes.append(ball.cast(camera).mask)
    vertices, faces = _sphere(1.04, 30)
    mapping, indices, uvs = xatlas.parametrize(vertices.astype(np.float32), faces.astype(np.uint32))
    split, split_faces = vertices[mapping], indices.astype(np.int64)
    normals = vertex_normals(split, split_faces)
    mesh = UVMesh(split, split_faces, uvs, 256, normals, vertex_tangents(split, split_faces, uvs, normals))
    return {"cameras": cameras, "photos": photos, "silhouettes": silhouettes, "mesh": mesh}


def _red_share(backdrop: dict, *, erode_px: int, user_masks: bool) -> float:
    """The share of the baked texels that carry red (red above green by 20 levels)."""
    mesh = backdrop["mesh"]
    mesh_scene = MeshScene(mesh.vertices, mesh.faces)
    texels = rasterise(mesh.vertices, mesh.faces, mesh.uvs, mesh.texture_size)
    sources = []
    for photo, camera, silhouette in zip(backdrop["photos"], backdrop["cameras"], backdrop["silhouettes"], strict=True):
        user = silhouette if user_masks else None
        levels = object_levels(mesh_scene, camera, None, user=user, erode_px=erode_px)
        sources.append(PhotoSource(photo, camera, None, sharpness(photo), levels))
    baked = bake_texture(texels, mesh, mesh_scene, sources, BakeSettings(0.3, 0.15, 0.1, True), no_progress)
    assert baked.coverage > 0.99  # the band never leaves a texel unseen here
    texture = baked.texture[baked.seen].astype(int)
    return float((texture[:, 0] - texture[:, 1] > 20).mean())


def test_the_band_along_the_silhouette_keeps_the_background_off_the_texture(red_backdrop: dict) -> None:
    today = _red_share(red_backdrop, erode_px=0, user_masks=False)  # no mask: what the bake did before
    eroded = _red_share(red_backdrop, erode_px=3, user_masks=False)
    assert today > 0.03, today
    assert eroded < 0.01 and eroded < today / 5, (today, eroded)


def test_user_masks_keep_the_background_off_the_texture(red_backdrop: dict) -> None:
    assert _red_share(red_backdrop, erode_px=3, user_masks=True) < 0.01


def test_silhouette_through_a_lens_matches_the_pinhole_one() -> None:
    """The full-resolution bake casts through the SfM camera: without distortion, as the pinhole camera sees."""
    camera = ring_cameras(1, 4.0, np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]]), 160, 120)[0]
    lens = pycolmap.Camera(model="PINHOLE", width=160, height=120, params=[150.0, 150.0, 80.0, 60.0])
    ball = MeshScene(*_sphere(1.0, 40))
    through_lens = object_levels(ball, camera, lens, user=None, erode_px=1)
    pinhole = object_levels(ball, camera, None, user=None, erode_px=1)
    assert through_lens is not None and pinhole is not None
    assert (through_lens != pinhole).sum() <= 4 and (pinhole == INSIDE).sum() > 1000
