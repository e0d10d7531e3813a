"""`i2s edit / crossover / expression / directions`: photos or latents in, edited images out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from i2s.cli import build_parser, main
from i2s.io import load_latent

FACES = sorted((REPO / "data" / "i2s-eval" / "faces").glob("*.jpg"))[:2]
PAIR = sorted((REPO / "data" / "i2s-eval" / "expressions").glob("*"))[:2]


@pytest.fixture(scope="module")
def gen(tiny_generator_file) -> Path:
    return tiny_generator_file


def _run(cmd: str, gen: Path, out: Path, *args) -> int:
    return main([cmd, *map(str, args), "--model", str(gen), "--device", "cpu", "--out", str(out)])


def test_edit_from_photos_then_from_latents_reuses_the_cache(gen, tmp_path, capsys):
    out = tmp_path / "a"
    assert _run("edit", gen, out, *FACES, "--steps", "2", "--vgg", "random", "--strengths=-2,0,2") == 0
    assert (out / "grid.png").is_file() and len(list(out.glob("*.png"))) == 7 and len(list(out.glob("*.latent.pt"))) == 6
    assert "0 of 2 embeddings reused" in capsys.readouterr().out
    assert _run("edit", gen, tmp_path / "b", *FACES, "--steps", "2", "--vgg", "random", "--strengths=-2,0,2") == 0
    assert "2 of 2 embeddings reused" in capsys.readouterr().out  # the second run: from the cache
    w0, meta = load_latent(next(out.glob("*_sefa0_+0.latent.pt")))
    w2, _ = load_latent(next(out.glob("*_sefa0_+2.latent.pt")))
    assert meta["edit"] == "direction" and not torch.equal(w0, w2)
    lat = next(out.glob("*_sefa0_+0.latent.pt"))
    assert _run("edit", gen, tmp_path / "c", lat, "--method", "ganspace", "--direction", "1", "--strengths", "1") == 0


@pytest.mark.slow
def test_crossover_and_expression(gen, tmp_path):
    out = tmp_path / "x"
    assert _run("crossover", gen, out, *FACES, "--style", PAIR[0], "--steps", "2", "--vgg", "random") == 0
    assert len(list(out.glob("*_x_*.png"))) == 2
    _, grid = _grid(out)  # the style's photo and G(w) above its column, one row per content
    assert [c["label"] for c in grid["cells"] if c["col"] == 2] == [
        f"input {PAIR[0].name} (centre-cropped)", f"style {PAIR[0].stem}: G(w)",
        *[f"split layer 4: style {PAIR[0].stem}"] * 2]
    assert grid["row_labels"] == ["styles", "styles: G(w)", *[f.stem for f in FACES]]
    out = tmp_path / "e"
    assert _run("expression", gen, out, FACES[0], "--neutral", PAIR[0], "--expressive", PAIR[1],
                "--steps", "2", "--vgg", "random", "--strengths", "0,3") == 0
    a, _ = load_latent(next(out.glob("*_expr+0.latent.pt")))
    b, meta = load_latent(next(out.glob("*_expr+3.latent.pt")))
    assert meta["relative"] is True and not torch.equal(a, b)  # the relative threshold moved it
    _, grid = _grid(out)  # the source pair first, then the target's photo, G(w) and each λ
    assert [c["label"].split(":")[0] for c in grid["cells"] if c["row"] == 0] == ["neutral w2"] * 2 + ["expressive w3"] * 2
    assert [c["label"] for c in grid["cells"] if c["row"] == 1][1:] == ["reconstruction G(w)", "λ = 0", "λ = 3"]


def test_inputs_are_checked_before_any_network_loads(gen, tmp_path, monkeypatch, capsys):
    import i2s.cli_common as C

    monkeypatch.setattr(C, "load_generator_or_report", lambda *a: pytest.fail("loaded the generator first"))
    assert _run("edit", gen, tmp_path, "nope.jpg") == 2
    assert "no such file: nope.jpg" in capsys.readouterr().err


def test_every_option_has_help_and_a_shown_default():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in ("edit", "crossover", "expression", "directions"):
        for action in sub.choices[name]._actions:
            if action.dest in ("help",) or not action.option_strings:
                continue
            assert action.help, (name, action.dest)


def _grid(out: Path) -> tuple[np.ndarray, dict]:
    """grid.png as uint8 pixels and the cells its PNG text chunk records."""
    img = Image.open(out / "grid.png")
    return np.asarray(img.convert("RGB")), json.loads(img.text["i2s-grid"])


def _cell(pixels: np.ndarray, cell: dict) -> np.ndarray:
    left, top, right, bottom = cell["box"]
    return pixels[top:bottom, left:right].astype(int)


def _enlarged(png: Path | Image.Image, size: int) -> np.ndarray:
    img = png if isinstance(png, Image.Image) else Image.open(png)
    return np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.NEAREST), dtype=int)


def test_edit_grid_shows_the_photo_its_reconstruction_and_labelled_outputs(gen, tmp_path, capsys):
    from i2s.data import load_target
    from i2s.io import tensor_to_pil

    out = tmp_path / "a"
    assert _run("edit", gen, out, FACES[0], "--steps", "2", "--vgg", "random", "--strengths=-2,0,2") == 0
    pixels, grid = _grid(out)
    cells = grid["cells"]
    stem = FACES[0].stem
    assert [c["label"] for c in cells] == [f"input {FACES[0].name} (centre-cropped)", "reconstruction G(w)",
                                           "strength -2", "strength +0", "strength +2"]
    size = cells[0]["box"][2] - cells[0]["box"][0]
    assert size == 256 and "32 x 32 px each, shown 8x (256 px) with nearest-neighbour" in grid["shown"]
    assert pixels.shape[1] >= 5 * size and pixels.shape[0] > size  # five cells in a row, labels under them
    assert "tiny-cli" in grid["caption"] and f"inputs: {FACES[0].name}" in grid["caption"]
    # the first cell is the photo as the generator saw it, the others the saved images, 8x nearest
    photo = tensor_to_pil(load_target(FACES[0], 32, align=False))
    assert np.array_equal(_cell(pixels, cells[0]), _enlarged(photo, size))
    assert np.abs(_cell(pixels, cells[1]) - _enlarged(out / f"{stem}_sefa0_+0.png", size)).max() <= 1  # G(w)
    for cell, s in zip(cells[2:], ("-2", "+0", "+2")):
        assert np.array_equal(_cell(pixels, cell), _enlarged(out / f"{stem}_sefa0_{s}.png", size))
    assert not any(c["flagged"] for c in cells)
    assert "face check skipped" in capsys.readouterr().out  # random weights: no face framing measured

    # a latent file has no photo: a labelled placeholder, then its reconstruction
    assert _run("edit", gen, tmp_path / "b", out / f"{stem}_sefa0_+2.latent.pt", "--strengths", "1") == 0
    _, grid = _grid(tmp_path / "b")
    first = grid["cells"][0]
    assert not first["image"] and "a latent file, no photo" in first["label"]
    assert "latent files, no photo" in grid["caption"]


def test_edit_warns_when_an_output_is_no_longer_a_face(tmp_path, capsys):
    """mini (a face generator, framing measured): strength 30 along direction 0 is noise; the
    reconstruction of a real face (strength 0 and G(w)) is still a face."""
    out = tmp_path / "m"
    assert main(["edit", str(FACES[0]), "--align", "--model", "mini", "--device", "cpu", "--steps", "20",
                 "--vgg", "random", "--strengths=0,30", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warning = [ln for ln in err.splitlines() if "no longer a face" in ln]
    assert len(warning) == 1 and f"{FACES[0].stem}_sefa0_+30" in warning[0]
    assert "_sefa0_+0" not in warning[0] and "reconstruction" not in warning[0]
    _, grid = _grid(out)
    assert [(c["label"], c["flagged"]) for c in grid["cells"][1:]] == [
        ("reconstruction G(w)", False), ("strength +0", False), ("strength +30", True)]
    assert "64 x 64 px each, shown 4x (256 px)" in grid["shown"] and "embedded tier" in grid["caption"]
