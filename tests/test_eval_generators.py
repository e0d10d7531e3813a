"""scripts/eval_generators.py: the Fréchet distance and KID it reports are right on known cases."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import REPO

_spec = importlib.util.spec_from_file_location("eval_generators", REPO / "scripts" / "eval_generators.py")
ev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ev)


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 4))
    b = rng.normal(0, 1, (20000, 4)) + np.array([1.0, 0, 0, 0])
    assert ev.frechet_distance(a, b) == pytest.approx(1.0, abs=0.05)  # mean shift only: |mu_a - mu_b|^2
    c = rng.normal(0, 2, (20000, 4))  # same mean, std 2: 4 * (1 + 4 - 2*2) = 4
    assert ev.frechet_distance(a, c) == pytest.approx(4.0, rel=0.05)
    assert ev.frechet_distance(a, rng.normal(0, 1, (20000, 4))) < 0.01


def test_fd_parts_add_up_and_see_a_narrow_generator():
    """The mean and covariance terms add up to the FD; a generator half as spread as the photos
    scores spread 0.25 (variances), along every principal axis too; a shifted one only a mean term."""
    rng = np.random.default_rng(2)
    real = rng.normal(0, 1, (20000, 4)) * np.array([3.0, 2.0, 1.0, 1.0])
    narrow = rng.normal(0, 1, (20000, 4)) * np.array([3.0, 2.0, 1.0, 1.0]) * 0.5
    p = ev.fd_parts(narrow, real)
    assert p["mean"] + p["cov"] == pytest.approx(ev.frechet_distance(narrow, real))
    assert p["spread"] == pytest.approx(0.25, rel=0.05)
    assert p["spread_along_axes"] == pytest.approx([0.25, 0.25, 0.25], rel=0.08)
    shifted = ev.fd_parts(rng.normal(0, 1, (20000, 4)) * np.array([3.0, 2.0, 1.0, 1.0]) + 1.0, real)
    assert shifted["mean"] == pytest.approx(4.0, rel=0.05) and abs(shifted["cov"]) < 0.05
    assert shifted["spread"] == pytest.approx(1.0, rel=0.05)


def test_kid_is_unbiased_near_zero_and_grows_with_the_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, (3000, 8)), rng.normal(0, 1, (3000, 8))
    k0, s0 = ev.kid(a, b, subsets=20, size=500)
    assert abs(k0) < 3 * s0 + 1e-3  # same distribution: zero within its spread (unbiased, may be negative)
    k1, _ = ev.kid(a, b + 0.5, subsets=20, size=500)
    k2, _ = ev.kid(a, b + 1.0, subsets=20, size=500)
    assert 0 < k1 < k2
    # sets smaller than --kid-size: subsets of half of them, so the spread is a spread
    _, s_small = ev.kid(a[:300], b[:300], subsets=10, size=1000)
    assert s_small > 1e-8  # not rounding noise (whole-set subsets gave ~1e-16)


def test_samples_repeat_for_a_seed_and_differ_between_seeds(tiny_generator_file):
    G = ev.load_any(str(tiny_generator_file))
    a, b, c = ev.sample(G, 3), ev.sample(G, 3), ev.sample(G, 3, first=3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_a_bad_generator_file_is_one_line_before_any_work(tmp_path, monkeypatch):
    """A damaged --model file stops the script with one line naming it, before the real photos'
    descriptors (minutes) are computed."""
    bad = tmp_path / "v2.pt"
    bad.write_bytes(b"PK\x03\x04 not really")
    monkeypatch.setattr(ev, "real_descriptors", lambda *a: pytest.fail("descriptors computed before the models loaded"))
    with pytest.raises(SystemExit) as e:
        ev.main(["--model", f"v2={bad}", "--out", str(tmp_path / "out.json")])
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out.json").exists()


def test_the_script_prints_and_writes_the_layer_structure_of_each_generator(tmp_path, tiny_generator_file, capsys):
    """End to end on a tiny random generator and random 'photos': FD, KID and the layer-structure
    measures with their targets land in the JSON, and the table names every row."""
    import json

    data = tmp_path / "faces.npy"
    np.save(data, np.random.default_rng(0).integers(0, 256, (24, 32, 32, 3), dtype=np.uint8))
    out = tmp_path / "eval.json"
    assert ev.main(["--model", f"tiny={tiny_generator_file}", "--data", str(data), "--n", "8", "--structure-n", "4",
                    "--kid-subsets", "2", "--kid-size", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "layer structure" in printed and "real photos" in printed and "tiny" in printed
    result = json.loads(out.read_text())
    st = result["rows"][1]["structure"]
    assert st["n"] == 4 and set(st["meets"]) == {"coarse_over_fine", "truncation_share", "landmarks", "no_corner_patch",
                                                 "no_fixed_patch"}
    # photos and generator are both 32 px: the fixed-patch measure ran against the photos
    assert st["fixed"]["floor"] > 0 and st["meets"]["no_fixed_patch"] == (not st["fixed"]["patch"])
    assert "fixed (floor)" in printed
    assert st["meets"]["coarse_over_fine"] == (st["coarse_over_fine"] >= ev.TARGETS["coarse_over_fine"])
    assert result["structure_targets"] == ev.TARGETS and "bottom_right" in result["real_corner"]
    # the ratios' intervals over the pairs, and each target decided on them
    assert set(st["decided"]) == set(ev.TARGETS) and set(st["decided"].values()) <= {"met", "missed", "undecided"}
    lo, hi = st["intervals"]["coarse_over_fine"]
    assert lo <= hi and "95 % intervals over the pairs" in printed and st["fine_landmark_floor"] >= 0
    assert "spread" in printed and set(result["rows"][1]["fd_parts"]) == {"mean", "cov", "spread", "spread_along_axes"}
