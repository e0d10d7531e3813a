"""Time to quality: how many Adam steps reach the loss of the paper's 5000-step run.

On the mini model (``load_generator("mini")``; ``random-mini`` if it is missing) and the
evaluation faces (``load_class_batch("faces", 64, zoom=0.7)``), this runs

* the paper's protocol (``schedule="paper"``: Adam, lr 0.01, 5000 steps from w̄), whose final
  loss per image is the target ``L_paper``;
* the opt-in ``schedule="fast"`` (and any other step counts / peak learning rates / cosine
  ramp-down fractions asked for);

and prints, per schedule, after how many steps each image's loss first reaches ``L_paper``
(the loss curve holds the loss of the latent after k updates), and its final loss relative to
``L_paper``. Counted in steps, so it does not depend on the machine; every run is cached in
``--cache`` (curves), the summary written to ``--json``.

    python benchmarks/time_to_quality.py                        # paper + fast (1250 steps, lr 0.8)
    python benchmarks/time_to_quality.py --fast 750,1000,1250 --fast-lr 0.05,0.1
    python benchmarks/time_to_quality.py --fast 1000@0.1,1250@0.4,1250@0.8@0.5   # STEPS@LR[@RAMPDOWN]
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from i2s.data import load_class_batch  # noqa: E402
from i2s.embed import FAST_LR, FAST_STEPS, PAPER_LR, PAPER_STEPS, embed  # noqa: E402
from i2s.io import atomic_write_bytes  # noqa: E402
from i2s.loss import EmbeddingLoss  # noqa: E402
from i2s.models import MINI_PATH, load_generator  # noqa: E402

EMBED = importlib.import_module("i2s.embed")  # the module (the package's ``embed`` is the function)


def run(G, faces, loss_fn, cache: Path, schedule: str, steps: int, lr: float,
        distances: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Loss curve [steps + 1, N] (index k: after k updates; the last row is the final loss) and
    ‖w* − w̄‖ per image (None for runs cached before distances were kept, unless ``distances``
    asks to run them again)."""
    # runs with the original ramp-down (0.25) keep their original cache names
    rampdown = "" if schedule == "paper" or EMBED.FAST_RAMPDOWN == 0.25 else f"-down{EMBED.FAST_RAMPDOWN:g}"
    path = cache / f"{G.name}-{loss_fn.perceptual_net}-{schedule}-{steps}-{lr:g}{rampdown}.pt"
    side = path.with_suffix(".latents.pt")
    if path.is_file() and (side.is_file() or not distances):
        dist = torch.load(side, weights_only=True)["dist_to_w_avg"] if side.is_file() else None
        return torch.load(path, weights_only=True), dist
    t = time.perf_counter()
    res = embed(G, faces, schedule=schedule, steps=steps, lr=lr, loss_fn=loss_fn, desc=f"{schedule} {steps} lr {lr:g}")
    curve = torch.cat([res.loss_curve, res.loss[None]])
    print(f"[{schedule} {steps} steps lr {lr:g}: {time.perf_counter() - t:.0f} s]", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    for obj, dest in (({"w_plus": res.w_plus.cpu(), "dist_to_w_avg": res.dist_to_w_avg.cpu()}, side), (curve, path)):
        buf = io.BytesIO()
        torch.save(obj, buf)
        atomic_write_bytes(dest, buf.getvalue())
    return curve, res.dist_to_w_avg.cpu()


def fast_runs(fast: str, fast_lr: str, rampdown: float) -> list[tuple[int, float, float]]:
    """(steps, peak lr, ramp-down fraction) triples: every step count of ``fast`` with every rate
    of ``fast_lr`` and ``rampdown``, and items written ``STEPS@LR`` or ``STEPS@LR@RAMPDOWN`` as
    they are (``--fast 1000@0.1,1250@0.8@0.5``)."""
    lrs = [float(x) for x in fast_lr.split(",")]
    out: list[tuple[int, float, float]] = []
    for item in fast.split(","):
        if "@" in item:
            steps, lr, *down = item.split("@")
            out.append((int(steps), float(lr), float(down[0]) if down else rampdown))
        else:
            out.extend((int(item), lr, rampdown) for lr in lrs)
    return out


def first_reach(curve: torch.Tensor, target: torch.Tensor) -> list[int | None]:
    """Per image, the first k with curve[k] <= target (None if never)."""
    out = []
    for i in range(curve.shape[1]):
        hit = (curve[:, i] <= target[i]).nonzero()
        out.append(int(hit[0]) if len(hit) else None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mini" if MINI_PATH.is_file() else "random-mini")
    ap.add_argument("--fast", default=str(FAST_STEPS), help="step counts for schedule='fast' (comma-separated; STEPS@LR for one pair)")
    ap.add_argument("--fast-lr", default=f"{FAST_LR:g}", help="peak learning rates for schedule='fast'")
    ap.add_argument("--rampdown", type=float, default=EMBED.FAST_RAMPDOWN,
                    help="cosine ramp-down fraction for 'fast' runs given without one (the schedule's constant "
                         "i2s.embed.FAST_RAMPDOWN is set to it for those runs)")
    ap.add_argument("--distances", action="store_true",
                    help="run again the cached runs that kept no latents, to print ‖w* − w̄‖ for them")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "i2s" / "bench" / "time_to_quality")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "time_to_quality.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    default_rampdown = EMBED.FAST_RAMPDOWN

    G = load_generator(args.model)
    names, faces = load_class_batch("faces", G.resolution, zoom=G.info.get("align_zoom", 0.7))
    loss_fn = EmbeddingLoss()
    print(f"{G.name}: {len(names)} evaluation faces; perceptual net {loss_fn.perceptual_net}; "
          f"torch {torch.__version__}; {platform.processor() or platform.machine()}, {args.threads} threads", flush=True)

    paper, paper_dist = run(G, faces, loss_fn, args.cache, "paper", PAPER_STEPS, PAPER_LR, args.distances)
    target = paper[-1]
    rows = [("paper", PAPER_STEPS, PAPER_LR, None, paper, paper_dist)]
    for steps, lr, down in fast_runs(args.fast, args.fast_lr, args.rampdown):
        EMBED.FAST_RAMPDOWN = down  # read by i2s.embed.learning_rate at every step
        rows.append(("fast", steps, lr, down, *run(G, faces, loss_fn, args.cache, "fast", steps, lr, args.distances)))
    EMBED.FAST_RAMPDOWN = default_rampdown

    print(f"\ntarget: the loss after the paper's {PAPER_STEPS} steps, per image: "
          + ", ".join(f"{v:.4g}" for v in target.tolist()))
    print(f"{'schedule':<9} {'steps':>6} {'lr':>6} {'down':>5} {'reach L_paper after (per image)':>38} {'max':>6} "
          f"{'max/5000':>8} {'final / L_paper (per image)':>34}  {'‖w* − w̄‖ (per image)'}")
    summary = {"model": G.name, "images": names, "perceptual_net": loss_fn.perceptual_net,
               "torch": torch.__version__, "paper_final_loss": target.tolist(), "runs": []}
    for schedule, steps, lr, down, curve, dist in rows:
        reach = first_reach(curve, target)
        worst = None if None in reach else max(reach)
        ratio = (curve[-1] / target).tolist()
        print(f"{schedule:<9} {steps:>6} {lr:>6g} {'-' if down is None else f'{down:g}':>5} {' '.join('-' if r is None else str(r) for r in reach):>38} "
              f"{'-' if worst is None else worst:>6} {'-' if worst is None else f'{worst / PAPER_STEPS:.2f}':>8} "
              f"{' '.join(f'{r:.3f}' for r in ratio):>34}  "
              + ("-" if dist is None else " ".join(f"{d:.1f}" for d in dist.tolist())))
        summary["runs"].append({"schedule": schedule, "steps": steps, "lr": lr,
                                "rampdown": down, "reach_steps": reach,
                                "max_reach_steps": worst, "final_over_paper": ratio,
                                "dist_to_w_avg": None if dist is None else dist.tolist(),
                                "curve_every_50": curve[::50].tolist()})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=1))
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
