"""Does bf16 autocast change Algorithm 1's result by more than float32 changes itself?

Decides whether bf16 autocast may become the CPU default (issue 14). On the held-out faces and
every class of the evaluation set, the paper's protocol (W+, w̄, 5000 Adam steps by default) runs

* ``fp32``: float32, the images in one batch;
* ``fp32-b<k>``: float32 again in batches of ``--spread-batch`` (default 1: each image alone): the
  same maths with other float rounding (other batch shapes), i.e. float32's own run-to-run spread; Adam amplifies the
  rounding over thousands of steps, so this is the yardstick (with w̄ init the seed draws nothing);
* ``fp32-u<s>``: float32 from U[-1, 1] with seeds 1..``--seeds`` (seed-to-seed spread);
* ``bf16``: bf16 autocast, one batch.

Per image it reports the final loss, ‖w* − w̄‖ and PSNR of each run, and per metric the
|fp32-b<k> − fp32| (float32's spread) beside |bf16 − fp32|. The rule: bf16 may be the
default when, for every metric, the mean |bf16 − fp32| over the images is within the mean
float32 spread (and no image is worse than twice its float32 spread). Writes
``benchmarks/results/bf16_quality.json``; resumes through the embedding cache::

    python benchmarks/bf16_quality.py                       # 5000 steps, 8 hold-out faces + 1 per class
    python benchmarks/bf16_quality.py --steps 500 --per-class 1 --holdout 2   # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from i2s import precision as P  # noqa: E402
from i2s.runner import cached_embed  # noqa: E402
from i2s.data import benchmark_set  # noqa: E402
from i2s.io import atomic_write_text  # noqa: E402
from i2s.loss import EmbeddingLoss  # noqa: E402
from i2s.models import load_generator  # noqa: E402
from i2s.weights.fetch import i2s_home  # noqa: E402

METRICS = ("loss", "dist_to_w_avg", "psnr")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mini")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--holdout", type=int, default=8, help="held-out training faces (mini)")
    ap.add_argument("--per-class", type=int, default=1, help="evaluation images per class")
    ap.add_argument("--spread-batch", type=int, default=1,
                    help="batch of the second float32 run, whose difference is float32's rounding spread (default 1)")
    ap.add_argument("--spread-images", type=int, default=None,
                    help="run the spread (and compare) on the first K images only (default: all)")
    ap.add_argument("--seeds", type=int, default=2, help="uniform-init seeds for the seed-to-seed spread")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", default=str(HERE / "results" / "bf16_quality.json"))
    a = ap.parse_args(argv)
    G = load_generator(a.model)
    loss_fn = EmbeddingLoss()
    names, x = benchmark_set(G, a.holdout, a.per_class)
    print(f"{len(names)} images; {P.describe('bf16', 'cpu')} available: {P.bf16_supported('cpu')}")
    runs = {"fp32": dict(precision="float32"), "bf16": dict(precision="bf16")}
    res = {k: cached_embed(G, x, loss_fn=loss_fn, steps=a.steps, batch_size=a.batch, desc=k, **kw) for k, kw in runs.items()}
    spread_run = f"fp32-b{a.spread_batch}"
    k = len(names) if a.spread_images is None else min(a.spread_images, len(names))
    res[spread_run] = cached_embed(G, x[:k], loss_fn=loss_fn, steps=a.steps, batch_size=a.spread_batch, desc=spread_run,
                               precision="float32", cache_dir=i2s_home() / (
                                   "embeddings-single" if a.spread_batch == 1 else f"embeddings-b{a.spread_batch}"))
    for s in range(1, a.seeds + 1):
        res[f"fp32-u{s}"] = cached_embed(G, x, loss_fn=loss_fn, steps=a.steps, batch_size=a.batch, init="uniform",
                                         seed=s, precision="float32", desc=f"u{s}")
    per = {k: {m: getattr(r, m).tolist() for m in METRICS} for k, r in res.items()}
    summary = {}
    for m in METRICS:
        base = np.array(per["fp32"][m])[:k]
        spread = np.abs(np.array(per[spread_run][m]) - base)
        bf = np.abs(np.array(per["bf16"][m])[:k] - base)
        summary[m] = {"mean_fp32_spread": float(spread.mean()), "mean_bf16_diff": float(bf.mean()),
                      "images_over_2x_spread": int((bf > 2 * np.maximum(spread, 1e-12)).sum())}
    ok = all(v["mean_bf16_diff"] <= v["mean_fp32_spread"] and v["images_over_2x_spread"] == 0 for v in summary.values())
    print(f"compared on {k} of {len(names)} images ({', '.join(names[:k])})")
    print(f"{'metric':<14} {'fp32 spread':>12} {'|bf16-fp32|':>12} {'> 2x':>5}")
    for m, v in summary.items():
        print(f"{m:<14} {v['mean_fp32_spread']:>12.4g} {v['mean_bf16_diff']:>12.4g} {v['images_over_2x_spread']:>5}")
    print(f"verdict: bf16 {'within' if ok else 'outside'} float32's own spread after {a.steps} steps "
          f"-> {'may be the CPU default' if ok else 'stays opt-in'}")
    atomic_write_text(a.out, json.dumps({"model": G.name, "steps": a.steps, "images": names, "compared_images": names[:k],
                                         "spread_run": spread_run, "runs": per,
                                         "summary": summary, "bf16_within_spread": ok,
                                         "device": P.describe("bf16", "cpu")}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
