"""The i2s command end to end on a small generator: embed (with a bad file), generate, morph."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from i2s.cli import main
from i2s.io import load_latent


@pytest.fixture(scope="module")
def gen_file(tiny_generator_file):
    return tiny_generator_file


def test_embed_generate_morph(gen_file, tmp_path, capsys):
    rng = np.random.default_rng(0)
    for k in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / f"img{k}.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    rc = main(["embed", str(tmp_path / "img0.png"), str(tmp_path / "broken.jpg"), str(tmp_path / "img1.png"),
               "--model", str(gen_file), "--vgg", "random", "--steps", "6", "--batch", "2", "--device", "cpu",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 3 and "skipped" in err and "broken.jpg" in err  # reported, others embedded
    rows = list(csv.DictReader(open(out / "embeddings.csv")))
    assert [r["image"] for r in rows] == ["img0", "img1"]
    assert all(float(r["loss"]) > 0 and r["perceptual_net"] == "vgg16-random" for r in rows)
    w, meta = load_latent(out / "img0.latent.pt")
    assert w.shape == (8, 64)
    for key in ("model", "perceptual_net", "loss", "steps", "seed", "noise_mode", "versions", "lr"):
        assert key in meta
    assert meta["steps"] == 6 and meta["model"] == "tiny-cli" and "torch" in meta["versions"]
    assert Image.open(out / "img0.png").size == (32, 32)

    rc = main(["generate", "--model", str(gen_file), "--seeds", "0-2", "--device", "cpu", "--out", str(tmp_path / "gen")])
    assert rc == 0 and (tmp_path / "gen" / "grid.png").exists() and (tmp_path / "gen" / "seed0002.png").exists()

    rc = main(["morph", str(out / "img0.latent.pt"), str(out / "img1.latent.pt"), "--frames", "4",
               "--model", str(gen_file), "--device", "cpu", "--out", str(tmp_path / "morph")])
    strip = json.loads(Image.open(tmp_path / "morph" / "morph-strip.png").text["i2s-grid"])  # labelled, 4 frames
    assert rc == 0 and [c["label"][:8] for c in strip["cells"]] == ["λ = 1.00", "λ = 0.67", "λ = 0.33", "λ = 0.00"]
    # the first frame is image A's reconstruction
    a = np.asarray(Image.open(tmp_path / "morph" / "morph00.png"), dtype=int)
    assert np.abs(a - np.asarray(Image.open(out / "img0.png"), dtype=int)).max() <= 1


def test_embed_fast_schedule_is_opt_in_and_recorded(gen_file, tmp_path):
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    common = ["--model", str(gen_file), "--vgg", "random", "--steps", "5", "--device", "cpu"]
    assert main(["embed", str(tmp_path / "a.png"), *common, "--out", str(tmp_path / "paper")]) == 0
    assert main(["embed", str(tmp_path / "a.png"), *common, "--schedule", "fast", "--out", str(tmp_path / "fast")]) == 0
    (paper,) = csv.DictReader(open(tmp_path / "paper" / "embeddings.csv"))
    (fast,) = csv.DictReader(open(tmp_path / "fast" / "embeddings.csv"))
    assert (paper["schedule"], fast["schedule"]) == ("paper", "fast") and fast["steps"] == "5"
    assert "schedule" not in load_latent(tmp_path / "paper" / "a.latent.pt")[1]  # the default leaves no trace
    assert load_latent(tmp_path / "fast" / "a.latent.pt")[1]["schedule"] == "fast"
    assert paper["loss"] != fast["loss"]


def test_load_latent_rejects_other_files(tmp_path):
    p = tmp_path / "x.latent.pt"
    torch.save({"w": torch.zeros(2)}, p)
    with pytest.raises(ValueError, match="not an i2s latent file"):
        load_latent(p)
    p.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="i2s embed"):
        load_latent(p)
