"""The CLI's failure paths: one line on stderr, one exit code each, never a traceback (issue 15)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import REPO, make_generator
from i2s.cli import EXIT_NO_INPUT, EXIT_PARTIAL, EXIT_REFUSED, EXIT_USAGE, main, safe_stem
from i2s.io import save_latent

FACE = sorted((REPO / "data" / "i2s-eval" / "faces").glob("*.jpg"))[0]


@pytest.fixture(scope="module")
def gen(tiny_generator_file) -> Path:
    return tiny_generator_file


def _embed(gen, out, *images, extra=()):
    return main(["embed", *map(str, images), "--model", str(gen), "--vgg", "random", "--loss", "mse",
                 "--steps", "2", "--device", "cpu", "--out", str(out), *extra])


@pytest.mark.parametrize("argv, message", [
    (["generate", "--seeds", "abc", "--out", "x"], "want seeds like"),
    (["embed", "a.jpg", "--batch", "0", "--out", "x"], "want a whole number >= 1"),
    (["embed", "a.jpg", "--steps", "-5", "--out", "x"], "want a whole number >= 0"),
    (["morph", "a", "b", "--frames", "0", "--out", "x"], "want a whole number >= 1"),
    (["embed", "nope.jpg", "--out", "{tmp}"], "no such file: nope.jpg"),
])
def test_usage_errors(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_device_without_a_gpu_and_a_bad_vgg(gen, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    assert _embed(gen, tmp_path, FACE, extra=("--device", "cuda")) == EXIT_USAGE
    assert "no CUDA GPU" in capsys.readouterr().err
    assert main(["embed", str(FACE), "--model", str(gen), "--vgg", str(tmp_path / "none.pth"), "--out", str(tmp_path)]) == EXIT_USAGE
    assert "no such file" in capsys.readouterr().err
    hostile = tmp_path / "vgg.pth"
    hostile.write_bytes(b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    assert main(["embed", str(FACE), "--model", str(gen), "--vgg", str(hostile), "--out", str(tmp_path / "o")]) == EXIT_REFUSED
    err = capsys.readouterr().err
    assert "cannot load the perceptual network" in err and "weights_only=False" not in err and "Traceback" not in err


def test_read_only_out_is_found_before_any_work(gen, tmp_path, capsys, monkeypatch):
    import i2s.cli_common as C

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root ignores permissions: simulate the failing write instead
        real_open = open

        def fail(path, *a, **k):
            if ".i2s-write-test" in str(path):
                raise OSError(30, "Read-only file system")
            return real_open(path, *a, **k)

        monkeypatch.setattr("builtins.open", fail)
    monkeypatch.setattr(C, "load_generator_or_report", lambda *a: pytest.fail("loaded the generator first"))
    assert _embed(gen, ro, FACE) == EXIT_USAGE
    assert "cannot write there" in capsys.readouterr().err


def test_another_runs_checkpoint_names_the_file_and_the_option(gen, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    ck = out / f".checkpoint-{FACE.stem}.0-1.pt"  # where this run's checkpoint goes: another run's is there
    torch.save({"key": "someone else's run", "step": 1}, ck)
    assert _embed(gen, out, FACE) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "belongs to a different run" in err and str(ck) in err and "--checkpoint PATH" in err
    assert _embed(gen, out, FACE, extra=("--checkpoint", str(tmp_path / "mine.pt"))) == 0


def test_long_names_and_colliding_outputs(gen, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    long = src / ("x" * 240 + ".png")
    Image.open(FACE).convert("RGB").resize((48, 48)).save(long)
    Image.open(FACE).convert("RGB").resize((48, 48)).save(src / "a.png")
    Image.open(FACE).convert("RGB").resize((40, 40)).save(src / "a-target.png")
    out = tmp_path / "out"
    assert _embed(gen, out, long, src / "a.png", src / "a-target.png") == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert len(names) == 6 and all(len(n.encode()) < 255 for n in names)  # 3 images x (NAME, NAME-target)
    assert len(safe_stem("x" * 240)) <= 120 and safe_stem("x" * 240) != safe_stem("x" * 239)
    rows = (out / "embeddings.csv").read_text().splitlines()
    assert len(rows) == 4
    # a second run in the same folder keeps the first run's rows
    Image.open(FACE).convert("RGB").resize((48, 48)).save(src / "b.png")
    assert _embed(gen, out, src / "b.png") == 0
    assert len((out / "embeddings.csv").read_text().splitlines()) == 5


def test_partial_batch_and_no_input_exit_codes(gen, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert _embed(gen, tmp_path / "o1", FACE, bad) == EXIT_PARTIAL
    assert _embed(gen, tmp_path / "o2", bad) == EXIT_NO_INPUT


def test_morph_malformed_latents(gen, tmp_path, capsys):
    good = tmp_path / "a.latent.pt"
    G = make_generator(32, seed=2)
    save_latent(good, G.w_avg.expand(G.num_layers, -1).clone(), {"model": "tiny-fail"})
    (tmp_path / "junk.latent.pt").write_bytes(os.urandom(300))
    (tmp_path / "half.latent.pt").write_bytes(good.read_bytes()[:200])
    for bad in ("missing.latent.pt", "junk.latent.pt", "half.latent.pt"):
        rc = main(["morph", str(good), str(tmp_path / bad), "--model", str(gen), "--device", "cpu", "--out", str(tmp_path / "m")])
        err = capsys.readouterr().err
        assert rc == EXIT_USAGE and "Traceback" not in err and err.count("\n") <= 2, (bad, err)


def test_ctrl_c_while_importing_is_a_clean_exit(tmp_path):
    """SIGINT while `i2s` is still importing torch: exit 130 and one line, no traceback."""
    code = ("import signal, os, threading, sys\n"
            "threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
            "from i2s.cli import main\n"
            "sys.exit(main(['generate', '--model', 'random-mini', '--seeds', '0', '--device', 'cpu', "
            f"'--out', {str(tmp_path)!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode == 0:
        pytest.skip("finished before the signal came (a fast machine)")
    assert proc.returncode in (130, -signal.SIGINT) and "Traceback" not in proc.stderr, proc.stderr[-500:]


def test_one_warning_line_per_cause(gen, tmp_path, capsys):
    """The random-VGG fallback warning: one `[i2s] WARNING:` line, no source line, not twice."""
    assert main(["embed", str(FACE), str(FACE), "--model", str(gen), "--steps", "1", "--device", "cpu",
                 "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "vgg16-random" in ln]
    assert len(lines) == 1 and lines[0].startswith("[i2s] WARNING:") and "warnings.warn" not in err
