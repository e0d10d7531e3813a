"""The decision rules of the benchmark scripts, on synthetic outcomes with known answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from i2s.stats import paired_comparison

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_perceptual_choice_rule():
    pc = _load("perceptual_choice")
    rng = np.random.default_rng(0)
    base = rng.normal(25, 2, 30)
    better = paired_comparison(base + 1 + rng.normal(0, 0.1, 30), base, "greater").as_dict()
    worse = paired_comparison(base - 1 + rng.normal(0, 0.1, 30), base, "greater").as_dict()
    tie = paired_comparison(base + rng.normal(0, 0.5, 30), base, "greater").as_dict()
    assert (better["verdict"], worse["verdict"], tie["verdict"]) == ("agrees", "disagrees", "inconclusive")
    assert pc.decide({"psnr_db": better, "ssim": tie})[0] == "efficientnet-lite0-imagenet"
    assert pc.decide({"psnr_db": better, "ssim": worse}) == ("vgg16-random", "EfficientNet worse by ssim")
    assert pc.decide({"psnr_db": tie, "ssim": tie}) == ("vgg16-random", "no judge tells them apart")
