"""Robustness: awkward input images, untrusted weight files, interrupted and failing runs.

Every case of the "what happens when" table (docs/what-happens-when.md) has a test here:

* inputs, through ``load_rgb`` / ``pil_to_tensor`` and through ``i2s embed`` (a bad file in a
  batch is reported by name and skipped, the others are embedded);
* weight files: truncated, wrong hash, wrong model, code-executing pickles (nothing runs);
* Ctrl-C / SIGTERM / SIGKILL and resume (in-process and through the CLI in subprocesses),
  atomic outputs, NaN/inf losses, determinism, and the out-of-memory fallback of
  ``i2s.runner.embed_in_batches`` (on the CPU, with an injected OOM).

The embedding tests use the MSE-only loss (``--loss mse``): building even the random-weight
VGG-16 costs ~8 s per process, and none of these behaviours depends on the perceptual network.
"""

from __future__ import annotations

import copy
import csv
import io
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

import i2s
from i2s import align as A
from i2s.runner import chunk_checkpoints, embed_in_batches, is_out_of_memory
from i2s.cli import main
from i2s.runner import embed
from i2s.io import atomic_torch_save as _atomic_torch_save
from i2s.io import load_latent, pil_to_tensor, save_latent, save_png, write_csv
from i2s.loss import EmbeddingLoss, LossSettings
from i2s.models import converted_ffhq_path
from i2s.weights import UnsafePickleError, WeightsFormatError, import_file, verify
from i2s.weights.converted import UnsafeWeightsError, load_converted, save_converted
from i2s.weights.fetch import HashMismatch
from i2s.weights.tf_pickle import load_tf_pickle
from conftest import REPO, make_generator

try:
    from fixtures_tf import Network, fake_dnnlib, make_gs_pickle
except ImportError:  # tests/ imported as a package
    from tests.fixtures_tf import Network, fake_dnnlib, make_gs_pickle


# ================================================================== helpers


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes = b"") -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB, nor lie about its size)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(rows))
            + _png_chunk(b"IEND", b""))


def _rgb16_png(arr: np.ndarray) -> bytes:
    """[H, W, 3] uint16 -> 16-bit RGB PNG bytes."""
    h, w, _ = arr.shape
    be = arr.astype(">u2")
    return _png(w, h, 16, 2, b"".join(b"\x00" + be[y].tobytes() for y in range(h)))


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _jpeg_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def _bad_inputs(d: Path) -> dict[str, tuple[Path, str]]:
    """Files ``load_rgb``/``pil_to_tensor`` must refuse: name -> (path, words the message must contain)."""
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    (d / "notes.jpg").write_text("shopping list: milk, eggs\n")
    out["not an image"] = (d / "notes.jpg", "not an image file")
    (d / "page.png").write_text("<!DOCTYPE html><html><title>Quota exceeded</title></html>")
    out["HTML page"] = (d / "page.png", "HTML")
    (d / "iphone.jpg").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200))
    out["HEIC photo"] = (d / "iphone.jpg", "HEIC")
    full = _jpeg_bytes(_noise(64, 80))
    (d / "cut.jpg").write_bytes(full[: len(full) // 2])
    out["truncated JPEG"] = (d / "cut.jpg", "truncated")
    (d / "empty.png").write_bytes(b"")
    out["zero-byte file"] = (d / "empty.png", "empty (0 bytes)")
    (d / "bomb.png").write_bytes(_png(30_000, 30_000, 8, 0, b"\x00" * 16))  # 900 MP declared, 100 bytes
    out["decompression bomb"] = (d / "bomb.png", "decompression bomb")
    (d / "a_folder.jpg").mkdir()
    out["directory"] = (d / "a_folder.jpg", "is a directory")
    Image.fromarray(_noise(20, 40)).save(d / "thumb.png")
    out["tiny image"] = (d / "thumb.png", "at least 32 px")
    return out


# ================================================================== inputs: converted


def test_16bit_pngs_are_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 40 * 36 * 3).astype(np.uint16).reshape(36, 40, 3)
    (tmp_path / "rgb16.png").write_bytes(_rgb16_png(ramp))
    assert Image.open(tmp_path / "rgb16.png").mode == "RGB"  # Pillow's own 16 -> 8 bit reduction
    out = np.asarray(A.load_rgb(tmp_path / "rgb16.png"), dtype=int)
    want = np.rint(ramp / 257.0).astype(int)
    assert out.shape == (36, 40, 3) and np.abs(out - want).max() <= 1 and out.max() == 255
    grey = np.linspace(0, 65535, 40 * 36).astype(np.uint16).reshape(36, 40)
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    out = np.asarray(A.load_rgb(tmp_path / "grey16.png"), dtype=int)
    assert np.abs(out[..., 0] - np.rint(grey / 257.0)).max() <= 1 and out[-1, -1, 0] == 255
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_alpha_cmyk_palette_grey_are_converted(tmp_path):
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[..., :3] = (0, 255, 0)  # transparent pixels store green ...
    rgba[:, 25:] = (200, 10, 10, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = np.asarray(A.load_rgb(tmp_path / "rgba.png"))
    assert (out[:, :25] == A.DEFAULT_BACKGROUND).all() and (out[:, 25:] == (200, 10, 10)).all()  # ... shown grey

    Image.new("RGB", (48, 40), (30, 120, 200)).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    out = np.asarray(A.load_rgb(tmp_path / "cmyk.jpg"), dtype=int)
    assert out.shape == (40, 48, 3) and np.abs(out - (30, 120, 200)).max() <= 8

    src = Image.fromarray(_noise(40, 48, seed=1))
    pal = src.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "p.png")
    assert np.array_equal(np.asarray(A.load_rgb(tmp_path / "p.png")), np.asarray(pal.convert("RGB")))
    pal.save(tmp_path / "p_t.png", transparency=int(np.asarray(pal)[0, 0]))
    out = np.asarray(A.load_rgb(tmp_path / "p_t.png"))
    assert (out[0, 0] == A.DEFAULT_BACKGROUND).all()

    src.convert("L").save(tmp_path / "l.png")
    out = np.asarray(A.load_rgb(tmp_path / "l.png"))
    assert out.shape == (40, 48, 3) and (out[..., 0] == np.asarray(src.convert("L"))).all()
    assert (out[..., 0] == out[..., 2]).all()


def test_exif_rotated_photo_comes_out_upright(tmp_path):
    upright = np.zeros((48, 64, 3), np.uint8)  # landscape, red block top-left
    upright[:16, :16] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": stored rotated 90 CCW (portrait)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert Image.open(tmp_path / "phone.jpg").size == (48, 64)
    img = A.load_rgb(tmp_path / "phone.jpg")
    assert img.size == (64, 48)
    arr = np.asarray(img, dtype=int)
    assert arr[4, 4, 0] > 200 and arr[4, 4, 1] < 60 and arr[40, 56].max() < 60


def test_non_square_is_centre_cropped(tmp_path):
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :10] = (255, 0, 0)
    arr[:, 50:] = (0, 0, 255)
    arr[:, 10:50] = (0, 255, 0)
    Image.fromarray(arr).save(tmp_path / "wide.png")
    img = A.load_rgb(tmp_path / "wide.png")
    assert img.size == (60, 40)  # load_rgb keeps the whole picture
    t = pil_to_tensor(img, 32)
    assert t.shape == (1, 3, 32, 32)
    assert torch.allclose(t[0, 1], torch.ones(32, 32), atol=1e-6) and t[0, 0].max() < -0.99  # only the green middle


def test_tiny_image_is_refused_as_a_target(tmp_path):
    Image.fromarray(_noise(20, 40)).save(tmp_path / "thumb.png")
    img = A.load_rgb(tmp_path / "thumb.png")  # reading it is fine ...
    with pytest.raises(A.ImageTooSmallError) as exc:
        pil_to_tensor(img, 64)  # ... embedding it is not
    msg = str(exc.value)
    assert "thumb.png" in msg and "40 x 20" in msg and "at least 32 px" in msg and "larger image" in msg
    with pytest.raises(A.ImageTooSmallError, match="thumb.png"):
        A.load_rgb(tmp_path / "thumb.png", min_size=32)
    Image.fromarray(_noise(32, 40)).save(tmp_path / "ok.png")
    assert pil_to_tensor(A.load_rgb(tmp_path / "ok.png"), 64).shape == (1, 3, 64, 64)  # 32 px is enough


# ================================================================== inputs: refused


@pytest.mark.parametrize("case", ["not an image", "HTML page", "HEIC photo", "truncated JPEG", "zero-byte file",
                                  "decompression bomb", "directory"])
def test_bad_file_is_refused_with_its_name_and_a_fix(tmp_path, case):
    path, words = _bad_inputs(tmp_path)[case]
    with pytest.raises(A.ImageReadError) as exc:
        A.load_rgb(path)
    msg = str(exc.value)
    assert str(path) in msg and words in msg, msg
    assert isinstance(exc.value, ValueError)
    fixes = ("convert", "re-download", "again", "downscale", "pass the image files", "PNG", "JPEG")
    assert any(f in msg for f in fixes), msg


def test_truncated_jpeg_is_refused_even_if_someone_enabled_load_truncated(tmp_path, monkeypatch):
    full = _jpeg_bytes(_noise(64, 80))
    for cut in (200, len(full) // 2, len(full) - 40):
        (tmp_path / "cut.jpg").write_bytes(full[:cut])
        with pytest.raises(A.ImageReadError, match="truncated"):
            A.load_rgb(tmp_path / "cut.jpg")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # another library's global choice
    with pytest.raises(A.ImageReadError, match="truncated"):
        A.load_rgb(tmp_path / "cut.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored
    (tmp_path / "full.jpg").write_bytes(full)
    assert A.load_rgb(tmp_path / "full.jpg").size == (80, 64)


def test_decompression_bomb_limit(tmp_path, monkeypatch):
    (tmp_path / "big.png").write_bytes(_png(10_000, 10_000, 8, 0, b"\x00"))  # 100 MP: Pillow only warns
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(A.ImageTooLargeError) as exc:
        A.load_rgb(tmp_path / "big.png")
    assert "10000 x 10000 = 100,000,000 pixels" in str(exc.value) and "downscale" in str(exc.value)
    Image.fromarray(_noise(50, 60)).save(tmp_path / "ok.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the limit is Pillow's, adjustable
    with pytest.raises(A.ImageTooLargeError, match="ok.png"):
        A.load_rgb(tmp_path / "ok.png")
    assert A.load_rgb(tmp_path / "ok.png", max_pixels=None).size == (60, 50)


# ================================================================== inputs: through the CLI



@pytest.fixture(autouse=True)
def _sigint_as_at_a_terminal():
    """Ctrl-C raises KeyboardInterrupt here as at a terminal, also when the suite was started in the
    background (`make test &`), where the shell leaves SIGINT ignored."""
    old = signal.getsignal(signal.SIGINT)
    if old == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)

@pytest.fixture(scope="module")
def gen_file(tmp_path_factory) -> Path:
    G = make_generator(32, seed=2)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_converted(path, G.cfg, G.state_dict(), {"name": "tiny-robust", "tier": "random"})
    return path


def _embed_args(gen_file: Path, out: Path, *images, steps: int = 3, extra: tuple[str, ...] = ()) -> list[str]:
    return ["embed", *map(str, images), "--model", str(gen_file), "--vgg", "random", "--loss", "mse",
            "--steps", str(steps), "--device", "cpu", "--out", str(out), *extra]


def test_cli_batch_skips_every_bad_file_and_embeds_the_rest(gen_file, tmp_path, capsys):
    good = tmp_path / "good"
    good.mkdir()
    Image.fromarray(_noise(40, 50)).save(good / "plain.png")
    Image.fromarray(_noise(36, 90, seed=3)).save(good / "wide.jpg")
    rgba = np.dstack([_noise(40, 40, seed=4), np.full((40, 40), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(good / "alpha.png")
    (good / "deep.png").write_bytes(_rgb16_png(np.full((40, 40, 3), 40000, np.uint16)))
    Image.fromarray(_noise(40, 48, seed=5)).convert("CMYK").save(good / "print.jpg")
    bad = _bad_inputs(tmp_path / "bad")
    order = [good / "plain.png", bad["not an image"][0], good / "wide.jpg", bad["truncated JPEG"][0],
             bad["zero-byte file"][0], good / "alpha.png", bad["tiny image"][0], bad["decompression bomb"][0],
             bad["directory"][0], good / "deep.png", bad["HEIC photo"][0], good / "print.jpg"]
    out = tmp_path / "out"
    rc = main(_embed_args(gen_file, out, *order, extra=("--batch", "3")))
    err = capsys.readouterr().err
    assert rc == 3
    for name, (path, words) in bad.items():
        if path in order:
            assert f"skipped {path}" in err and words in err, (name, err)
    rows = list(csv.DictReader(open(out / "embeddings.csv")))
    assert [r["image"] for r in rows] == ["plain", "wide", "alpha", "deep", "print"]
    for r in rows:
        w, meta = load_latent(out / f"{r['image']}.latent.pt")
        assert torch.isfinite(w).all() and meta["steps"] == 3
        assert Image.open(out / f"{r['image']}.png").size == (32, 32)
    assert not list(out.glob("notes*")) and not list(out.glob("thumb*")) and not list(out.glob("*.tmp"))


def test_cli_with_only_bad_files_embeds_nothing(gen_file, tmp_path, capsys):
    bad = _bad_inputs(tmp_path / "bad")
    rc = main(_embed_args(gen_file, tmp_path / "out", bad["zero-byte file"][0], bad["directory"][0]))
    assert rc == 1 and "no image could be read" in capsys.readouterr().err
    assert not (tmp_path / "out" / "embeddings.csv").exists()


# ================================================================== weight files


class _WouldRun:
    """Unpickling this runs ``os.system('touch MARKER')``: a loader must never get that far."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_truncated_weight_files_are_refused(gen_file, tmp_path):
    pkl = tmp_path / "gs.pkl"
    make_gs_pickle(pkl, 8, fmap_base=64, fmap_max=16)
    (tmp_path / "cut.pkl").write_bytes(pkl.read_bytes()[: pkl.stat().st_size // 2])
    with pytest.raises(WeightsFormatError, match="truncated") as exc:
        i2s.load_generator(tmp_path / "cut.pkl", verbose=False)
    assert "cut.pkl" in str(exc.value) and "--force" in str(exc.value)
    data = gen_file.read_bytes()
    for cut in (20, 1000, len(data) // 2, len(data) - 30):
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        with pytest.raises(WeightsFormatError, match="truncated or corrupt") as exc:
            i2s.load_generator(tmp_path / "cut.pt", verbose=False)
        assert "cut.pt" in str(exc.value) and "again" in str(exc.value)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(WeightsFormatError, match="empty"):
        load_converted(tmp_path / "empty.pt")


def test_cached_pickle_with_the_wrong_hash_is_refused(tmp_path):
    """fetch/import refuse a mismatching download (tests/test_fetch.py); here a cached copy that
    changed after it was recorded is refused when the generator is loaded, before unpickling."""
    first, other = tmp_path / "first.pkl", tmp_path / "other.pkl"
    make_gs_pickle(first, 8, fmap_base=64, fmap_max=16, seed=1)
    make_gs_pickle(other, 8, fmap_base=64, fmap_max=16, seed=2)
    cached = import_file("stylegan1-ffhq-1024", first)  # records its sha256 in hashes.json
    assert i2s.load_generator("ffhq", verbose=False).resolution == 8  # the recorded file converts
    converted = converted_ffhq_path()  # keyed by the recorded sha256
    converted.unlink()
    cached.write_bytes(other.read_bytes())  # a different file lands under the cached name
    with pytest.raises(HashMismatch) as exc:
        i2s.load_generator("ffhq", verbose=False)
    msg = str(exc.value)
    assert str(cached) in msg and "differs from the value recorded" in msg and "--force" in msg
    assert not converted.exists()
    assert verify("stylegan1-ffhq-1024")[0][1] == "mismatch"


def _pickle_gs_is(path: Path, gs_kind: str) -> None:
    """An official-format (G, D, Gs) pickle whose Gs is the discriminator."""
    kw = {"num_channels": 3, "resolution": 8, "label_size": 0}
    D = Network("D", "D_basic", kw, variables=[("lod", np.float32(0)), ("FromRGB_lod0/bias", np.zeros(4, np.float32))])
    G = Network("G", "G_style", kw, variables=[("lod", np.float32(0))])
    with fake_dnnlib(), open(path, "wb") as f:
        pickle.dump((G, D, D if gs_kind == "D" else G), f, protocol=4)


def test_pickle_of_the_wrong_model_is_refused(tmp_path):
    sg2 = tmp_path / "stylegan2-ffhq-config-f.pkl"
    make_gs_pickle(sg2, 8, fmap_base=64, fmap_max=16, version=4)
    with pytest.raises(WeightsFormatError, match="StyleGAN2"):
        i2s.load_generator(sg2, verbose=False)
    disc = tmp_path / "d.pkl"
    _pickle_gs_is(disc, "D")
    with pytest.raises(WeightsFormatError, match="D_basic.*expected 'G_style'"):
        i2s.load_generator(disc, verbose=False)
    ada = tmp_path / "ffhq-ada.pkl"  # a malformed StyleGAN2-ADA-style pickle: the ADA reader (issue 35) refuses it
    ada.write_bytes(b"\x80\x02ctorch_utils.persistence\n_reconstruct_persistent_obj\n)R.")
    with pytest.raises(WeightsFormatError, match="truncated or corrupt"):
        i2s.load_generator(ada, verbose=False)
    with pytest.raises(UnsafePickleError, match="StyleGAN2-ADA") as exc:  # the v1 reader still names its globals
        load_tf_pickle(ada)
    assert "torch_utils" not in sys.modules and "nothing was imported or executed" in str(exc.value)


def test_torch_file_of_the_wrong_kind_is_refused(gen_file, tmp_path):
    save_latent(tmp_path / "face.latent.pt", torch.zeros(8, 64), {"model": "x"})
    with pytest.raises(WeightsFormatError, match="i2s latent file.*--model"):
        i2s.load_generator(tmp_path / "face.latent.pt", verbose=False)
    torch.save(make_generator(32).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(WeightsFormatError, match="bare state dict .* tensors"):
        load_converted(tmp_path / "sd.pt")
    torch.save({"format": "stylegan2-ada", "G_ema": {}}, tmp_path / "other.pt")
    with pytest.raises(WeightsFormatError, match="'stylegan2-ada'"):
        load_converted(tmp_path / "other.pt")
    pkl = tmp_path / "renamed.pt"  # NVIDIA's pickle under a .pt name: pointed at the converter, not unpickled
    make_gs_pickle(pkl, 8, fmap_base=64, fmap_max=16)
    with pytest.raises(WeightsFormatError, match="TensorFlow network pickle"):
        i2s.load_generator(pkl, verbose=False)
    (tmp_path / "page.pt").write_text("<html><title>Sign in</title></html>")
    with pytest.raises(WeightsFormatError, match="HTML"):
        load_converted(tmp_path / "page.pt")


def test_code_executing_weight_files_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "PWNED"
    evil_pkl = tmp_path / "evil.pkl"  # NVIDIA's format with an os.system in Gs.static_kwargs
    make_gs_pickle(evil_pkl, 8, fmap_base=64, fmap_max=16, foreign="os.system", marker=marker)
    with pytest.raises(UnsafePickleError, match="system"):
        i2s.load_generator(evil_pkl, verbose=False)
    with pytest.raises(UnsafePickleError):
        load_tf_pickle(evil_pkl)

    payload = {"format": "i2s-stylegan1", "format_version": 1, "config": {}, "state_dict": {}, "x": _WouldRun(marker)}
    torch.save(payload, tmp_path / "evil_zip.pt")
    torch.save(payload, tmp_path / "evil_legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("evil_zip.pt", "evil_legacy.pt"):
        with pytest.raises(UnsafeWeightsError) as exc:
            i2s.load_generator(tmp_path / name, verbose=False)
        msg = str(exc.value)
        assert name in msg and "system" in msg and "nothing was executed" in msg
        assert "weights_only=False" in msg and "do not" in msg  # never the advice to turn the check off
    (tmp_path / "raw.pt").write_bytes(pickle.dumps(_WouldRun(marker)))
    with pytest.raises(WeightsFormatError, match="raw Python pickle.*not unpickled"):
        load_converted(tmp_path / "raw.pt")
    assert not marker.exists()
    assert not list((Path(os.environ["I2S_HOME"]) / "converted").glob("evil*"))


# ================================================================== atomic outputs


class _DiskFull(OSError):
    pass


def _half_then_fail(monkeypatch) -> None:
    """Make writes through ``os.fdopen`` (i2s.io, i2s.weights.converted) stop half-way with an
    OSError, as on a full disk."""
    real_fdopen = os.fdopen

    class Half(io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def writable(self):
            return True

        def write(self, data):
            data = bytes(data)
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise _DiskFull("No space left on device")

        def fileno(self):
            return self.f.fileno()

        def close(self):
            self.f.close()
            super().close()

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Half(real_fdopen(fd, *a, **k)))


def test_outputs_are_never_partial_under_their_final_name(tmp_path, monkeypatch):
    save_latent(tmp_path / "a.latent.pt", torch.ones(8, 64), {"v": 1})
    save_png(torch.zeros(3, 8, 8), tmp_path / "a.png")
    write_csv(tmp_path / "e.csv", [{"image": "a", "loss": 1}])
    G = make_generator(32)
    save_converted(tmp_path / "g.pt", G.cfg, G.state_dict(), {"name": "g"})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    _half_then_fail(monkeypatch)
    writes = {
        "a.latent.pt": lambda p: save_latent(p, torch.zeros(8, 64), {"v": 2}),
        "a.png": lambda p: save_png(torch.ones(3, 8, 8), p),
        "e.csv": lambda p: write_csv(p, [{"image": "b", "loss": 2}]),
        "g.pt": lambda p: save_converted(p, G.cfg, G.state_dict(), {"name": "h"}),
    }
    for name, write in writes.items():
        with pytest.raises(_DiskFull):
            write(tmp_path / name)  # over an existing file: the old one stays, complete
        with pytest.raises(_DiskFull):
            write(tmp_path / f"new-{name}")  # a new file: nothing appears under its name
        assert not (tmp_path / f"new-{name}").exists()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no temp files left, old files intact
    monkeypatch.undo()
    assert load_latent(tmp_path / "a.latent.pt")[1]["v"] == 1


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    ck = tmp_path / "run.ckpt"
    _atomic_torch_save({"step": 1, "x": torch.ones(3)}, ck)
    real_save = torch.save

    def crash(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        f.truncate(f.tell() // 2)
        raise _DiskFull("No space left on device")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(_DiskFull):
        _atomic_torch_save({"step": 2, "x": torch.zeros(3)}, ck)
    monkeypatch.undo()
    assert torch.load(ck, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]
    (tmp_path / ".run.ckpt.999999999.tmp").write_bytes(b"half")  # left by a SIGKILLed process
    _atomic_torch_save({"step": 3}, ck)
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"] and torch.load(ck, weights_only=True)["step"] == 3


# ================================================================== interruptions (in-process)


@pytest.fixture(scope="module")
def G():
    return make_generator(32, seed=1)


@pytest.fixture(scope="module")
def mse():
    return EmbeddingLoss(LossSettings(variant="mse"))


def _targets(G, n=2, seed=0):
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.synthesis(G.mapping(z) + 0.3)  # a little off the model's own outputs


class _Wrapped(torch.nn.Module):
    """A loss that does something on its ``at``-th call: send signals to this process, or make
    some images' losses non-finite from then on."""

    def __init__(self, inner, at, signals=(), bad=None, value=float("inf")):
        super().__init__()
        self.inner, self.at, self.signals, self.bad, self.value, self.calls = inner, at, signals, bad, value, 0
        self.settings, self.perceptual_net = inner.settings, inner.perceptual_net

    def target(self, img):
        return self.inner.target(img)

    def forward(self, x, t):
        self.calls += 1
        out = self.inner(x, t)
        if self.calls == self.at:
            for s in self.signals:
                os.kill(os.getpid(), s)
        if self.bad is not None and self.calls >= self.at:
            out = out.clone()
            out[self.bad] = self.value
        return out


def test_ctrl_c_finishes_the_step_saves_and_resumes_exactly(G, mse, tmp_path, capfd):
    img = _targets(G, seed=8)
    ref = embed(G, img, steps=12, loss_fn=mse, progress=False)
    ck = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):  # SIGINT during step 6 (0-based 5): that step completes
        embed(G, img, steps=12, loss_fn=_Wrapped(mse, 6, [signal.SIGINT]), checkpoint=ck, checkpoint_every=100,
              progress=False)
    assert torch.load(ck, weights_only=True)["step"] == 6
    err = capfd.readouterr().err
    assert "interrupted; state after step 6/12 saved in" in err and "again to resume" in err
    res = embed(G, img, steps=12, loss_fn=mse, checkpoint=ck, checkpoint_every=100, progress=False)
    assert "resuming from checkpoint" in capfd.readouterr().err and res.resumed_from == 6
    assert torch.equal(res.w_plus, ref.w_plus) and torch.equal(res.loss_curve, ref.loss_curve)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_second_ctrl_c_interrupts_at_once_and_sigterm_saves(G, mse, tmp_path):
    img = _targets(G, seed=8)
    ref = embed(G, img, steps=12, loss_fn=mse, progress=False)
    ck = tmp_path / "twice.ckpt"
    with pytest.raises(KeyboardInterrupt):  # two Ctrl-C inside step 5: no wait for the step to end
        embed(G, img, steps=12, loss_fn=_Wrapped(mse, 5, [signal.SIGINT, signal.SIGINT]), checkpoint=ck,
              checkpoint_every=100, progress=False)
    assert torch.load(ck, weights_only=True)["step"] == 4  # the state before that step, consistent
    ck2 = tmp_path / "term.ckpt"
    with pytest.raises(SystemExit) as exc:
        embed(G, img, steps=12, loss_fn=_Wrapped(mse, 9, [signal.SIGTERM]), checkpoint=ck2, checkpoint_every=4,
              progress=False)
    assert exc.value.code == 143 and torch.load(ck2, weights_only=True)["step"] == 9
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    for path in (ck, ck2):
        res = embed(G, img, steps=12, loss_fn=mse, checkpoint=path, checkpoint_every=4, progress=False)
        assert torch.equal(res.w_plus, ref.w_plus)


# ================================================================== NaN / inf


def test_infinite_loss_stops_that_image_and_keeps_its_last_good_latent(G, mse):
    img = _targets(G, seed=9)
    ref = embed(G, img, steps=10, loss_fn=mse, progress=False)
    partial = embed(G, img, steps=3, loss_fn=mse, progress=False)  # latent 4 gives inf: latent 3 is the last good
    res = embed(G, img, steps=10, loss_fn=_Wrapped(mse, 5, bad=0), progress=False)
    assert res.stopped_at.tolist() == [4, -1]
    assert torch.equal(res.w_plus[0], partial.w_plus[0]) and torch.isfinite(res.w_plus).all()
    assert torch.equal(res.w_plus[1], ref.w_plus[1])  # the other image is untouched
    assert res.messages == ["image 0: loss became non-finite (NaN/inf) at step 4; optimisation of this image "
                            "stopped there and its last good latent (that of step 3) is kept"]
    neg = embed(G, img, steps=10, loss_fn=_Wrapped(mse, 5, bad=1, value=float("-inf")), progress=False)
    assert neg.stopped_at.tolist() == [-1, 4] and torch.equal(neg.w_plus[1], partial.w_plus[1])


def test_cli_reports_the_non_finite_loss(gen_file, tmp_path, capsys, monkeypatch):
    for k in range(2):
        Image.fromarray(_noise(40, 40, seed=k)).save(tmp_path / f"img{k}.png")
    real = EmbeddingLoss.forward
    calls = []

    def forward(self, x, t):
        out = real(self, x, t)
        calls.append(1)
        if len(calls) >= 3 and x.shape[0] == 2:
            out = out.clone()
            out[1] = float("inf")
        return out

    monkeypatch.setattr(EmbeddingLoss, "forward", forward)
    out = tmp_path / "out"
    rc = main(_embed_args(gen_file, out, tmp_path / "img0.png", tmp_path / "img1.png", steps=6))
    assert rc == 0
    err = capsys.readouterr().err
    assert "image 1: loss became non-finite (NaN/inf) at step 2" in err
    rows = {r["image"]: r for r in csv.DictReader(open(out / "embeddings.csv"))}
    assert rows["img0"]["stopped_at"] == "-1" and rows["img1"]["stopped_at"] == "2"
    assert torch.isfinite(load_latent(out / "img1.latent.pt")[0]).all()


# ================================================================== determinism


def test_same_seed_same_cpu_identical_latents(G, mse):
    img = _targets(G, seed=10)
    for init in ("mean", "uniform"):
        a = embed(G, img, steps=8, init=init, seed=3, loss_fn=mse, progress=False)
        b = embed(G, img, steps=8, init=init, seed=3, loss_fn=mse, progress=False)
        assert torch.equal(a.w_plus, b.w_plus) and torch.equal(a.loss_curve, b.loss_curve), init
    c = embed(G, img, steps=8, init="uniform", seed=4, loss_fn=mse, progress=False)
    assert not torch.equal(a.w_plus, c.w_plus)  # the seed matters


# ================================================================== kill + resume through the CLI (subprocesses)

_CHILD = textwrap.dedent('''
    """Runs `i2s embed`; each loss evaluation first sleeps I2S_TEST_DELAY s (a slow run to interrupt)."""
    import os, sys, time
    import torch
    torch.set_num_threads(1)
    from i2s.loss import EmbeddingLoss
    delay = float(os.environ.get("I2S_TEST_DELAY", "0"))
    real = EmbeddingLoss.forward
    def slow(self, x, t):
        time.sleep(delay)
        return real(self, x, t)
    EmbeddingLoss.forward = slow
    from i2s.cli import main
    sys.exit(main(sys.argv[1:]))
''')


def _spawn(script: Path, args: list[str], delay: float) -> subprocess.Popen:
    env = {**os.environ, "I2S_TEST_DELAY": str(delay), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    # Ctrl-C as a terminal delivers it: a suite started in the background (`make test &`) has
    # SIGINT ignored, and an ignored signal stays ignored in every child
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    return subprocess.Popen([sys.executable, str(script), *args], env=env, cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore)


def _wait_for_step(proc: subprocess.Popen, ck: Path, at_least: int, timeout: float = 60.0) -> int:
    """Poll the checkpoint while the run writes it: every read must be a complete file."""
    t0 = time.monotonic()
    reads = 0
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        if ck.exists():
            try:
                step = int(torch.load(ck, weights_only=True)["step"])
            except FileNotFoundError:
                continue  # replaced between exists() and open(): fine
            reads += 1
            if step >= at_least:
                return step
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"no checkpoint with step >= {at_least} after {timeout} s")


@pytest.mark.slow
def test_sigint_and_sigkill_then_resume_gives_the_uninterrupted_result(gen_file, tmp_path, capsys, monkeypatch):
    """`i2s embed --checkpoint-every 4` in a fresh process: Ctrl-C, run again, SIGKILL, run again.

    The interrupted runs are subprocesses; the last resume and the uninterrupted reference run in
    this process (a child costs ~10 s of imports on a busy 2-core machine). The steps computed in
    the two children and here must chain to bit-identical latents: resume is exact, and the same
    seed on the same CPU gives the same numbers in a fresh process.
    """
    Image.fromarray(_noise(48, 40, seed=11)).save(tmp_path / "face.png")
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    steps, every = 40, 4

    def args(out: Path) -> list[str]:
        return _embed_args(gen_file, out, tmp_path / "face.png", steps=steps, extra=("--checkpoint-every", str(every)))

    out = tmp_path / "out"
    ck = out / ".checkpoint-face.0-1.pt"  # embed_in_batches: one checkpoint per chunk (images 0-1)
    proc = _spawn(script, args(out), delay=0.08)
    # While the child starts: the uninterrupted reference run, in this process, with an embedding
    # cache of its own (the CLI embeds through the cache: a shared one would hand its result over).
    with monkeypatch.context() as m:
        m.setenv("I2S_CACHE_DIR", str(tmp_path / "ref-cache"))
        assert main(args(tmp_path / "ref")) == 0
    capsys.readouterr()
    ref, _ = load_latent(tmp_path / "ref" / "face.latent.pt")

    # 1. Ctrl-C once the first checkpoint exists: the step in progress completes and is saved.
    _wait_for_step(proc, ck, every)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "[i2s] interrupted" in err
    assert "interrupted; state after step" in err and "again to resume" in err
    k1 = int(torch.load(ck, weights_only=True)["step"])
    assert every <= k1 < steps and f"step {k1}/{steps} saved" in err
    assert not (out / "face.latent.pt").exists() and not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    # 2. Run again: resumes at k1; SIGKILL it after a later checkpoint. The file read at any moment
    #    is a complete checkpoint (the previous or the new one), never a partial one.
    proc = _spawn(script, args(out), delay=0.08)
    k2 = _wait_for_step(proc, ck, k1 + 2 * every)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert f"resuming from checkpoint {ck} at step {k1}/{steps}" in err
    state = torch.load(ck, weights_only=True)
    assert state["step"] >= k2 and state["step"] % every == 0 and torch.isfinite(state["latent"]).all()
    assert not (out / "face.latent.pt").exists() and not (out / "embeddings.csv").exists()

    # 3. Run again: resumes from the SIGKILL checkpoint and ends with the uninterrupted latents.
    assert main(args(out)) == 0
    assert f"at step {int(state['step'])}/{steps}" in capsys.readouterr().err
    w, meta = load_latent(out / "face.latent.pt")
    assert torch.equal(w, ref) and meta["steps"] == steps
    assert not ck.exists() and not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# ================================================================== GPU out of memory -> smaller batches


def _oom_above(k: int, error: type[BaseException] = torch.cuda.OutOfMemoryError, calls: list | None = None):
    def fake_embed(G, images, **kw):
        if calls is not None:
            calls.append(images.shape[0])
        if images.shape[0] > k:
            raise error("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total capacity)")
        return embed(G, images, **kw)

    return fake_embed


@pytest.mark.slow
def test_out_of_memory_falls_back_to_smaller_batches(G, mse, tmp_path, monkeypatch):
    import i2s.runner as B

    img = _targets(G, n=5, seed=12)
    singles = [embed(G, img[i:i + 1], steps=6, loss_fn=mse, progress=False) for i in range(5)]
    calls, lines = [], []
    monkeypatch.setattr(B, "embed", _oom_above(1, calls=calls))
    res = embed_in_batches(G, img, 4, steps=6, loss_fn=mse, progress=False, log=lines.append)
    assert calls == [4, 2, 1, 1, 1, 1, 1]  # 4 fails, 2 fails, then one at a time
    assert lines == ["[i2s] out of memory embedding images 1-4 of 5 in one batch of 4; retrying with batches of 2",
                     "[i2s] out of memory embedding images 1-2 of 5 in one batch of 2; retrying with batches of 1"]
    assert res.w_plus.shape == (5, G.num_layers, G.w_dim) and res.loss_curve.shape == (6, 5)
    for i, s in enumerate(singles):  # complete, in order, and what embedding each image alone gives
        assert torch.equal(res.w_plus[i], s.w_plus[0]) and torch.equal(res.loss_curve[:, i], s.loss_curve[:, 0])

    # A RuntimeError saying "out of memory" (older torch, MPS) counts too: sizes 4 -> 2, 2, 1. The
    # result equals one direct batch; checked in float64, where batched and single convolutions
    # round alike (see tests/test_embed.py::test_batch_equals_single_runs).
    calls.clear()
    G64, mse64, img64 = copy.deepcopy(G).double(), copy.deepcopy(mse).double(), img.double()
    ck = tmp_path / "ck.pt"
    monkeypatch.setattr(B, "embed", _oom_above(2, RuntimeError, calls))
    res2 = embed_in_batches(G64, img64, 4, steps=6, loss_fn=mse64, progress=False, log=lines.append, checkpoint=ck)
    assert calls == [4, 2, 2, 1] and not list(tmp_path.iterdir())  # chunk checkpoints cleaned up
    calls.clear()
    again = embed_in_batches(G64, img64, 4, steps=6, loss_fn=mse64, progress=False, log=lines.append,
                             checkpoint=ck, keep_checkpoints=True)
    assert [p.name for p in chunk_checkpoints(ck)] == ["ck.0-2.pt", "ck.2-4.pt", "ck.4-5.pt"]
    assert torch.equal(again.w_plus, res2.w_plus)
    resumed = embed_in_batches(G64, img64, 4, steps=6, loss_fn=mse64, progress=False, log=lines.append,
                               checkpoint=ck)  # every chunk is restored from its finished checkpoint
    assert resumed.resumed_from == 6 and torch.equal(resumed.w_plus, res2.w_plus) and not chunk_checkpoints(ck)
    direct = embed(G64, img64, steps=6, loss_fn=mse64, progress=False)
    assert torch.allclose(res2.w_plus, direct.w_plus, rtol=0, atol=1e-9)
    assert torch.allclose(res2.loss_curve, direct.loss_curve, rtol=1e-9)


def test_out_of_memory_on_one_image_and_other_errors_are_raised(G, mse, monkeypatch):
    import i2s.runner as B

    img = _targets(G, n=2, seed=13)
    monkeypatch.setattr(B, "embed", _oom_above(0))
    with pytest.raises(RuntimeError, match="single image.*--device cpu"):
        embed_in_batches(G, img, 2, steps=2, loss_fn=mse, progress=False, log=lambda m: None)

    def broken(G, images, **kw):
        raise ValueError("images must be [N, 3, 32, 32]")

    monkeypatch.setattr(B, "embed", broken)
    with pytest.raises(ValueError, match="images must be"):
        embed_in_batches(G, img, 2, steps=2, loss_fn=mse, progress=False)
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("x"))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch")) and not is_out_of_memory(MemoryError())


def test_batched_result_keeps_image_numbers_in_messages(G, mse):
    img = _targets(G, n=3, seed=14)
    # Chunk 1 (images 0-1) makes loss calls 1-7 (6 steps + the final evaluation), chunk 2 (image 2)
    # calls 8-14: from call 10 on (its step 2) image 0 of that chunk, image 2 of the batch, is inf.
    res = embed_in_batches(G, img, 2, steps=6, loss_fn=_Wrapped(mse, 10, bad=0), progress=False)
    assert res.stopped_at.tolist() == [-1, -1, 2] and res.messages[0].startswith("image 2:")


def test_fifo_and_device_files_are_named_as_such(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(A.ImageReadError, match="named pipe"):
        A.load_rgb(fifo)
    with pytest.raises(A.ImageReadError, match="character device"):
        A.load_rgb("/dev/null")


def test_eps_is_not_handed_to_ghostscript(tmp_path):
    eps = tmp_path / "x.jpg"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(A.ImageReadError, match="not an image file Pillow can read"):
        A.load_rgb(eps)
