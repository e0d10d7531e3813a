"""Which offline perceptual network makes the better embeddings: vgg16-random or EfficientNet-Lite0?

Issue 17: offline the paper's ImageNet VGG-16 is missing, and the kit's perceptual loss falls back
to a fixed-seed random-weight VGG-16 (``vgg16-random``). The ImageNet EfficientNet-Lite0 of a PyPI
wheel, sliced at VGG's conv1_1 / conv1_2 / conv3_2 / conv4_2 depths and strides
(:data:`i2s.loss.EFFICIENTNET_LAYERS`), is the other candidate. This embeds the benchmark images
(:func:`i2s.data.benchmark_set`: held-out faces and every evaluation class) with the paper's
protocol under each, then judges the reconstructions by measures neither loss optimised:

* PSNR and SSIM (pixels; higher is better), on every image;
* dlib's face-descriptor distance to the photo (lower is better), on faces.

(Each network's own perceptual distance would favour the loss that optimised it, so it is printed
but does not decide.) Each judge is a paired comparison per image (:func:`i2s.stats.paired_comparison`,
95 % bootstrap interval). The rule: EfficientNet-Lite0 becomes the offline default when at least one
judge says it is better and none says it is worse; otherwise ``vgg16-random`` stays. Writes
``benchmarks/results/perceptual_choice.json``; resumes through the embedding cache::

    python benchmarks/perceptual_choice.py                  # 1000 steps, 8 held-out faces + all 25
    python benchmarks/perceptual_choice.py --steps 200 --holdout 4 --per-class 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from i2s import precision as P  # noqa: E402
from i2s.runner import cached_embed  # noqa: E402
from i2s.data import benchmark_set  # noqa: E402
from i2s.data import is_face  # noqa: E402
from i2s.io import atomic_write_text  # noqa: E402
from i2s.loss import EFFICIENTNET, EmbeddingLoss, LossSettings  # noqa: E402
from i2s.metrics import ImageMetrics, psnr  # noqa: E402
from i2s.models import load_generator  # noqa: E402
from i2s.stats import RULE, paired_comparison  # noqa: E402

CANDIDATES = {"vgg16-random": "random", "efficientnet-lite0-imagenet": EFFICIENTNET}
#: judge -> (direction the better loss moves it, images it applies to)
SAYS = {"agrees": "better", "disagrees": "worse", "inconclusive": "inconclusive"}  # of EfficientNet
JUDGES = {"psnr_db": ("greater", "all"), "ssim": ("greater", "all"), "identity_distance": ("less", "faces")}


def measure(G, label: str, recon: torch.Tensor, x: torch.Tensor, faces: np.ndarray) -> dict[str, list]:
    """PSNR and the kit's per-image metrics (:class:`i2s.metrics.ImageMetrics`) of one run."""
    m = ImageMetrics(label, float(G.info.get("align_zoom", 0.7)))(recon, x, faces.tolist())
    return {"psnr_db": psnr(recon, x).tolist(), **m}


def decide(comparisons: dict[str, dict]) -> tuple[str, str]:
    """(the default network, why) by the rule of the module docstring."""
    better = [j for j, c in comparisons.items() if c["verdict"] == "agrees"]
    worse = [j for j, c in comparisons.items() if c["verdict"] == "disagrees"]
    if better and not worse:
        return "efficientnet-lite0-imagenet", f"better by {', '.join(better)}, worse by none"
    return "vgg16-random", (f"EfficientNet worse by {', '.join(worse)}" if worse else "no judge tells them apart")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mini")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--holdout", type=int, default=8, help="held-out training faces (mini)")
    ap.add_argument("--per-class", type=int, default=5, help="evaluation images per class (5: all)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", default=str(HERE / "results" / "perceptual_choice.json"))
    a = ap.parse_args(argv)
    G = load_generator(a.model)
    names, x = benchmark_set(G, a.holdout, a.per_class)
    faces = np.array([is_face(n) for n in names])
    print(f"{G.name}: {len(names)} images ({faces.sum()} faces), {a.steps} steps; {P.describe('float32', G.device)}")
    per: dict[str, dict[str, list]] = {}
    for label, perceptual in CANDIDATES.items():
        loss_fn = EmbeddingLoss(LossSettings(), perceptual)
        assert loss_fn.perceptual_net == label, loss_fn.perceptual_net
        res = cached_embed(G, x, loss_fn=loss_fn, steps=a.steps, batch_size=a.batch, precision="float32", desc=label)
        per[label] = measure(G, label, res.images, x, faces)
    a_, b_ = per["efficientnet-lite0-imagenet"], per["vgg16-random"]
    comparisons = {}
    print(f"\nEfficientNet-Lite0 minus vgg16-random, per image ({RULE})")
    print(f"{'judge':<18} {'n':>3} {'effect':>9} {'95 % interval':>22} {'verdict':>13}")
    for judge, (direction, which) in JUDGES.items():
        idx = np.flatnonzero(faces) if which == "faces" else np.arange(len(names))
        ea, eb = np.array(a_[judge], float)[idx], np.array(b_[judge], float)[idx]
        ok = np.isfinite(ea) & np.isfinite(eb)
        c = paired_comparison(ea[ok], eb[ok], direction)
        comparisons[judge] = c.as_dict()
        print(f"{judge:<18} {c.n_images:>3} {c.effect:>+9.4f} {c.interval():>22} {SAYS[c.verdict]:>13}")
    default, why = decide(comparisons)
    print(f"\noffline default by this measurement: {default} ({why})")
    atomic_write_text(a.out, json.dumps({"model": G.name, "steps": a.steps, "images": names, "per_image": per,
                                         "comparisons": comparisons, "rule": RULE, "default": default, "why": why,
                                         "device": P.describe("float32", G.device)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
