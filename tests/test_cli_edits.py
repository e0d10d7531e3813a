"""`i2s edit / crossover / expression / directions`: photos or latents in, edited images out."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

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
    out = tmp_path / "e"
    assert _run("expression", gen, out, FACES[0], "--neutral", PAIR[0], "--expressive", PAIR[1],
                "--steps", "2", "--vgg", "random", "--strengths", "0,3") == 0
    a, _ = load_latent(next(out.glob("*_expr+0.latent.pt")))
    b, meta = load_latent(next(out.glob("*_expr+3.latent.pt")))
    assert meta["relative"] is True and not torch.equal(a, b)  # the relative threshold moved it


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
