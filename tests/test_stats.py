"""i2s.stats: the claim rule on synthetic data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from i2s.stats import paired_comparison


def _pairs(shift: float, n: int = 30, noise: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.normal(10, 3, n)  # images differ a lot; the pairing removes that
    return base + shift + rng.normal(0, noise, n), base


def test_clear_effects_agree_or_disagree():
    a, b = _pairs(+2.0)
    c = paired_comparison(a, b, "greater")
    assert c.verdict == "agrees" and c.low > 0 and c.n_pairs == 30 and c.effect == pytest.approx((a - b).mean())
    assert paired_comparison(a, b, "less").verdict == "disagrees"
    a, b = _pairs(-2.0)
    assert paired_comparison(a, b, "less").verdict == "agrees"


def test_no_effect_is_inconclusive():
    a, b = _pairs(0.0, seed=3)
    c = paired_comparison(a, b, "greater")
    assert c.verdict == "inconclusive" and c.low < 0 < c.high


def test_margin_turns_a_tiny_effect_inconclusive():
    a, b = _pairs(0.05, n=400, noise=0.05, seed=1)  # tiny but certain
    assert paired_comparison(a, b, "greater").verdict == "agrees"
    assert paired_comparison(a, b, "greater", margin=0.1).verdict == "inconclusive"


def test_interval_covers_the_true_shift_about_95_percent():
    hits = 0
    for s in range(200):
        a, b = _pairs(1.0, n=25, seed=100 + s)
        c = paired_comparison(a, b, "greater", n_boot=2000, seed=s)
        hits += c.low <= 1.0 <= c.high
    assert 0.88 <= hits / 200 <= 0.99  # percentile bootstrap at n=25: close to nominal


def test_seeds_of_one_image_are_not_independent_evidence():
    """Three seeds that repeat one image's difference must not narrow the interval 3x."""
    a, b = _pairs(0.4, n=8, seed=5)
    one = paired_comparison(a, b, "greater")
    rep = paired_comparison(np.repeat(a, 3), np.repeat(b, 3), "greater", groups=np.repeat(np.arange(8), 3))
    naive = paired_comparison(np.repeat(a, 3), np.repeat(b, 3), "greater")
    assert rep.n_images == 8 and rep.n_pairs == 24
    assert (rep.high - rep.low) == pytest.approx(one.high - one.low, rel=0.15)
    assert (naive.high - naive.low) < 0.75 * (one.high - one.low)


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        paired_comparison([1, 2], [1], "greater")
    with pytest.raises(ValueError):
        paired_comparison([1, 2], [1, 2], "bigger")
    with pytest.raises(ValueError):
        paired_comparison([], [], "less")


def test_unpaired_and_the_minimum_n():
    from i2s.stats import unpaired_comparison

    rng = np.random.default_rng(2)
    faces, cars = rng.normal(10, 1, 12), rng.normal(14, 1, 20)
    assert unpaired_comparison(faces, cars, "less").verdict == "agrees"
    assert unpaired_comparison(faces, cars, "greater").verdict == "disagrees"
    assert unpaired_comparison(faces, rng.normal(10, 1, 20), "less").verdict == "inconclusive"
    # one run per class (the old Fig. 10 verdict): never decided by a single number
    assert unpaired_comparison([115.0], [109.0, 120.0, 130.0], "less").verdict == "inconclusive"
    a, b = _pairs(3.0, n=2)
    assert paired_comparison(a, b, "greater").verdict == "inconclusive"  # n = 2 < MIN_N


def test_against_a_threshold_decides_a_share():
    from i2s.stats import against

    kept = np.array([1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1], dtype=float)
    assert against(kept, 0.5, "greater").verdict == "agrees"
    assert against(1 - kept, 0.5, "greater").verdict == "disagrees"
    assert against(np.array([1, 0] * 6, dtype=float), 0.5, "greater").verdict == "inconclusive"


def test_equivalence_needs_the_whole_interval_inside_the_margin():
    from i2s.stats import equivalence

    rng = np.random.default_rng(0)
    a = rng.normal(100, 5, 30)
    near = equivalence(a + rng.normal(0, 0.3, 30), a, margin=1.0)
    assert near.verdict == "agrees" and near.direction == "equal" and near.wins > 25
    far = equivalence(a + 5 + rng.normal(0, 0.3, 30), a, margin=1.0)
    assert far.verdict == "disagrees"
    noisy = equivalence(a + rng.normal(0, 5, 30), a, margin=1.0)  # cannot tell: the interval spans the margin
    assert noisy.verdict == "inconclusive"
    with pytest.raises(ValueError):
        equivalence(a, a, margin=0)


def test_both_halves_must_agree():
    from i2s.stats import both

    assert both("agrees", "agrees") == "agrees"
    assert both("agrees", "disagrees") == "disagrees"  # the edit works, the face is lost: not agrees
    assert both("agrees", "inconclusive") == "inconclusive"
    assert both("agrees", "not run") == "not run"


def test_ratio_interval_covers_the_true_ratio_and_narrows_with_n():
    """Pairs (num, den) with num = 0.5 den + noise: the ratio of means is near 0.5, its interval holds
    0.5, and four times the pairs halve the interval's width (roughly)."""
    from i2s.stats import ratio_interval

    rng = np.random.default_rng(1)
    den = rng.uniform(1, 3, 4000)
    num = 0.5 * den + rng.normal(0, 0.3, 4000)
    r, lo, hi = ratio_interval(num[:250], den[:250], n_boot=2000)
    assert lo < 0.5 < hi and lo < r < hi
    _, lo4, hi4 = ratio_interval(num[:1000], den[:1000], n_boot=2000)
    assert 0.35 < (hi4 - lo4) / (hi - lo) < 0.7
    with pytest.raises(ValueError):
        ratio_interval(num[:3], den[:4])


def test_target_verdict_needs_the_whole_interval_on_one_side():
    from i2s.stats import target_verdict

    assert target_verdict(0.62, 0.80, 0.6, "greater") == "met"
    assert target_verdict(0.40, 0.59, 0.6, "greater") == "missed"
    assert target_verdict(0.55, 0.65, 0.6, "greater") == "undecided"
    assert target_verdict(0.30, 0.49, 0.5, "less") == "met"
    assert target_verdict(0.45, 0.58, 0.5, "less") == "undecided"
    assert target_verdict(0.50, 0.58, 0.5, "less") == "missed"
    assert target_verdict(float("nan"), 0.4, 0.5, "less") == "undecided"
