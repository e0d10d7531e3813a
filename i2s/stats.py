"""Deciding the paper's claims from numbers with their n and spread.

Every claim of the paper that the report checks is a comparison of two conditions measured on
the same images (and seeds): "W+ embeds better than W", "faces converge faster than cars", ...
:func:`paired_comparison` takes the paired measurements, the direction the paper claims and a
practical margin, and returns the mean paired difference with a 95 % bootstrap interval and a
verdict by one stated rule:

* **agrees** — the whole interval lies on the paper's side of ``margin``;
* **disagrees** — the whole interval lies on the other side of ``-margin``;
* **inconclusive** — anything else (the interval reaches into ``[-margin, margin]``): the data
  cannot tell the conditions apart at this n.

The bootstrap resamples *images* (clusters), with all seeds of an image kept together, so that
several seeds of one image are not counted as independent evidence (percentile interval,
``n_boot`` resamples, a fixed seed: the report is reproducible).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, Sequence

import numpy as np

__all__ = ["Comparison", "paired_comparison", "unpaired_comparison", "against", "equivalence", "both", "RULE",
           "EQUIVALENCE_RULE", "MIN_N", "ratio_interval", "target_verdict"]

Direction = Literal["greater", "less", "equal"]
Verdict = Literal["agrees", "disagrees", "inconclusive"]

MIN_N = 3  # fewer images than this on either side: inconclusive whatever the interval says

RULE = ("95 % bootstrap interval of the mean paired difference (resampling images): agrees if it lies "
        "entirely on the paper's side of the margin, disagrees if entirely on the other side, else inconclusive; "
        f"fewer than {MIN_N} images on a side: inconclusive")


@dataclass(frozen=True)
class Comparison:
    """The outcome of one paired comparison (``effect`` = mean of ``a - b``)."""

    n_images: int
    n_pairs: int
    effect: float
    low: float
    high: float
    direction: Direction
    margin: float
    verdict: Verdict
    wins: int  # pairs on the paper's side (for "equal": pairs within the margin)

    def as_dict(self) -> dict:
        return asdict(self)

    def interval(self, fmt: str = "{:.4g}") -> str:
        return f"[{fmt.format(self.low)}, {fmt.format(self.high)}]"


def paired_comparison(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                      direction: Direction, *, groups: Sequence | None = None, margin: float = 0.0,
                      n_boot: int = 10_000, level: float = 0.95, seed: int = 0) -> Comparison:
    """Is ``a`` ``direction`` than ``b``, pair by pair? ``a[i]`` and ``b[i]`` are one image (and
    seed) under the two conditions; ``groups[i]`` names the image (default: every pair its own).

    ``direction="greater"``: the paper claims a > b (e.g. PSNR of W+ over W); ``"less"``: a < b
    (e.g. loss, steps to converge). ``margin`` (>= 0, in the units of a - b) is the smallest
    difference that counts."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"want two 1-d arrays of equal, non-zero length, got {a.shape} and {b.shape}")
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}")
    if margin < 0:
        raise ValueError("margin must be >= 0")
    d = a - b
    keys = np.asarray(list(range(len(d))) if groups is None else list(groups), dtype=object)
    if len(keys) != len(d):
        raise ValueError("groups must name every pair")
    uniq = list(dict.fromkeys(keys.tolist()))
    sums = np.array([d[keys == g].sum() for g in uniq])
    counts = np.array([(keys == g).sum() for g in uniq], dtype=float)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))
    boot = sums[pick].sum(1) / counts[pick].sum(1)  # mean difference of each resample (by pairs)
    alpha = (1 - level) / 2
    low, high = (float(v) for v in np.quantile(boot, [alpha, 1 - alpha]))
    effect = float(d.mean())
    sign = 1.0 if direction == "greater" else -1.0
    return Comparison(n_images=len(uniq), n_pairs=len(d), effect=effect, low=low, high=high,
                      direction=direction, margin=float(margin),
                      verdict=_verdict(low, high, sign, margin, len(uniq)), wins=int((sign * d > 0).sum()))


def _verdict(low: float, high: float, sign: float, margin: float, n: int) -> Verdict:
    lo_s, hi_s = sorted((sign * low, sign * high))  # the interval with the paper's side positive
    if n < MIN_N:
        return "inconclusive"
    return "agrees" if lo_s > margin else ("disagrees" if hi_s < -margin else "inconclusive")


def unpaired_comparison(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, direction: Direction, *,
                        margin: float = 0.0, n_boot: int = 10_000, level: float = 0.95, seed: int = 0) -> Comparison:
    """Is the mean of ``a`` ``direction`` than the mean of ``b``, for two sets of *different*
    images (e.g. faces vs cars)? Each set is resampled on its own; ``effect`` = mean(a) - mean(b);
    ``wins`` counts the pairs (x in a, y in b) on the paper's side."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or b.ndim != 1 or not len(a) or not len(b):
        raise ValueError("want two non-empty 1-d arrays")
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}")
    rng = np.random.default_rng(seed)
    boot = (a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1) - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1))
    alpha = (1 - level) / 2
    low, high = (float(v) for v in np.quantile(boot, [alpha, 1 - alpha]))
    sign = 1.0 if direction == "greater" else -1.0
    wins = int((sign * (a[:, None] - b[None, :]) > 0).sum())
    return Comparison(n_images=min(len(a), len(b)), n_pairs=len(a) * len(b), effect=float(a.mean() - b.mean()),
                      low=low, high=high, direction=direction, margin=float(margin),
                      verdict=_verdict(low, high, sign, margin, min(len(a), len(b))), wins=wins)


def against(values: Sequence[float] | np.ndarray, threshold: float, direction: Direction, *,
            groups: Sequence | None = None, n_boot: int = 10_000, seed: int = 0) -> Comparison:
    """Is the mean of ``values`` ``direction`` than a fixed ``threshold``? (e.g. "more than half of
    the crossovers keep the content's face": 0/1 values against 0.5). :func:`paired_comparison`
    with the threshold on the other side of every pair, resampling ``groups``."""
    v = np.asarray(values, dtype=float)
    return paired_comparison(v, np.full_like(v, threshold), direction, groups=groups, n_boot=n_boot, seed=seed)


EQUIVALENCE_RULE = ("equivalence: agrees if the whole 95 % interval of the mean paired difference lies inside "
                    "±margin, disagrees if it lies wholly outside, else inconclusive")


def equivalence(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, margin: float, *,
                groups: Sequence | None = None, n_boot: int = 10_000, level: float = 0.95,
                seed: int = 0) -> Comparison:
    """Are ``a`` and ``b`` the same within ``margin``, pair by pair? (a claim of "no difference",
    e.g. Table 2's distances of random and w̄ starts). The interval is :func:`paired_comparison`'s;
    the verdict follows :data:`EQUIVALENCE_RULE`."""
    if margin <= 0:
        raise ValueError("an equivalence needs a margin > 0")
    c = paired_comparison(a, b, "greater", groups=groups, n_boot=n_boot, level=level, seed=seed)
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if c.n_images < MIN_N:
        verdict: Verdict = "inconclusive"
    elif -margin < c.low and c.high < margin:
        verdict = "agrees"
    elif c.low >= margin or c.high <= -margin:
        verdict = "disagrees"
    else:
        verdict = "inconclusive"
    return Comparison(n_images=c.n_images, n_pairs=c.n_pairs, effect=c.effect, low=c.low, high=c.high,
                      direction="equal", margin=float(margin), verdict=verdict,
                      wins=int((np.abs(d) < margin).sum()))


def both(*verdicts: str) -> str:
    """The verdict of a claim with several halves (an edit does what the paper says *and* keeps
    the face): agrees when every half agrees, disagrees when any half disagrees, else inconclusive
    (a half that was not run leaves the claim not run)."""
    if not verdicts or "not run" in verdicts:
        return "not run"
    if "disagrees" in verdicts:
        return "disagrees"
    return "agrees" if all(v == "agrees" for v in verdicts) else "inconclusive"


def ratio_interval(num: Sequence[float] | np.ndarray, den: Sequence[float] | np.ndarray, *, n_boot: int = 10_000,
                   level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``mean(num) / mean(den)`` with its percentile bootstrap interval, resampling the units
    (``num[i]`` and ``den[i]`` are measured on one unit, e.g. one sample pair, and stay together).
    Returns ``(ratio, low, high)``."""
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"want two 1-d arrays of equal, non-zero length, got {a.shape} and {b.shape}")
    pick = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    alpha = (1 - level) / 2
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero denominator: inf / nan, as the ratio is
        boot = a[pick].mean(1) / b[pick].mean(1)
        ratio = float(a.mean() / b.mean())
        low, high = (float(v) for v in np.quantile(boot, [alpha, 1 - alpha]))
    return ratio, low, high


def target_verdict(low: float, high: float, threshold: float, direction: Direction) -> str:
    """Whether a measure's interval meets a target (``direction`` "greater": the measure is to be
    at least ``threshold``; "less": below it): ``met`` when the whole interval is on the target's
    side, ``missed`` when the whole interval is on the other side, else ``undecided`` at this n."""
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}")
    if not (np.isfinite(low) and np.isfinite(high)):
        return "undecided"
    good, bad = (low >= threshold, high < threshold) if direction == "greater" else (high < threshold, low >= threshold)
    return "met" if good else ("missed" if bad else "undecided")
