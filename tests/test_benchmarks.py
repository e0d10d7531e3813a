"""The decision rules of the benchmark scripts, on synthetic outcomes with known answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

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


def test_train_precision_rule():
    tp = _load("train_precision")
    fd = {("float32", 0): 0.20, ("float32", 1): 0.24, ("bf16", 0): 0.21, ("bf16", 1): 0.25}
    ok = tp.decide(fd, [0, 1])
    assert ok["bf16_keeps_quality"] and np.allclose(ok["paired_diff"], [0.01, 0.01])
    assert np.isclose(ok["float32_seed_spread"], 0.04)
    worse = tp.decide({**fd, ("bf16", 0): 0.30, ("bf16", 1): 0.31}, [0, 1])
    assert not worse["bf16_keeps_quality"]          # +0.085 on average against a spread of 0.04
    better = tp.decide({**fd, ("bf16", 0): 0.10, ("bf16", 1): 0.12}, [0, 1])
    assert better["bf16_keeps_quality"]             # lower FD is never a loss
    assert not tp.decide({("float32", 0): 0.2, ("bf16", 0): 0.1}, [0])["bf16_keeps_quality"]  # one seed: no spread


def test_train_precision_resumes_and_transfers(tmp_path):
    tp = _load("train_precision")
    run = tmp_path / "run"
    fresh = tp.run_command(run, Path("start.pt"), Path("faces.npy"), "bf16", 3, 64.0, 1)
    assert "--transfer" in fresh and fresh[fresh.index("--precision") + 1] == "bf16"
    assert fresh[fresh.index("--seed") + 1] == "3"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"")
    again = tp.run_command(run, Path("start.pt"), Path("faces.npy"), "bf16", 3, 64.0, 1)
    assert "--resume" in again and "--transfer" not in again


@pytest.mark.slow
def test_run_pool_logs_each_run_and_stops_on_a_failure_with_one_line(tmp_path):
    import sys

    import pytest

    tp = _load("train_precision")
    ok = [(tmp_path / f"ok{i}", [sys.executable, "-c", f"print('run {i}')"]) for i in range(3)]
    tp.run_pool(ok, parallel=2, threads=1, what="test")
    assert [(tmp_path / f"ok{i}" / "train.out").read_text().strip() for i in range(3)] == ["run 0", "run 1", "run 2"]
    bad = [(tmp_path / "bad", [sys.executable, "-c", "raise SystemExit(3)"])]
    with pytest.raises(SystemExit, match=r"exit 3\); see .*bad/train.out"):
        tp.run_pool(bad, parallel=1, threads=1, what="test")


def test_encoder_schedules_variants_and_target_rule():
    es = _load("encoder_schedules")
    v = es.parse_variants("lr=0.3,eps=0.3; lr=0.1,beta2=0.99 ;schedule=paper,lr=0.01,steps=1000", 500)
    assert v == [{"schedule": "fast", "steps": 500, "lr": 0.3, "eps": 0.3},
                 {"schedule": "fast", "steps": 500, "lr": 0.1, "betas": (0.9, 0.99)},
                 {"schedule": "paper", "steps": 1000, "lr": 0.01}]
    for bad, word in (("lr=0.1,momentum=0.9", "momentum"), ("lr=fast", "not a number"), ("lr", "not one of")):
        try:
            es.parse_variants(bad, 500)
        except ValueError as e:
            assert word in str(e) and "\n" not in str(e)
        else:
            raise AssertionError(f"{bad!r} was accepted")
    assert es.start_steps("paper:1000") == 1000
    for bad in ("paper", "paper:0", "paper:x", "encoder:5"):
        try:
            es.start_steps(bad)
        except ValueError as e:
            assert "paper:K" in str(e)
        else:
            raise AssertionError(f"--start {bad!r} was accepted")
    assert es.verdict([400, 499], 52.0, 47.4, 500)["meets_target"]
    assert es.verdict([400, None], 47.0, 47.4, 500) == {"every_face_reaches": False, "dist_within_tolerance": True,
                                                        "meets_target": False}
    assert es.verdict([400, 300], 52.2, 47.4, 500)["dist_within_tolerance"] is False  # 52.2 > 1.1 x 47.4
