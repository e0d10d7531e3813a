"""Adam settings after the encoder's start: can any of them meet issue 19's target?

The target (on the mini model's benchmark faces): every face reaches ``L_paper``, the loss of the
paper's 5000-step run, within ``--steps`` (500) steps, with mean ‖w* − w̄‖ within 10 % of the
paper protocol's. ``L_paper`` and the paper's distance are read from the results of
``benchmarks/time_to_quality.py`` (run it first); this script only runs the variants, from the
encoder's prediction, on the faces of the same benchmark set (float32, one batch).

A variant is ``key=value`` pairs joined by ``,``; variants are joined by ``;``. Keys: ``lr``
(peak), ``rampdown`` (the share of the steps over which lr ramps down; the fast schedule's
warm-up is kept), ``eps``, ``beta1``, ``beta2``, ``schedule`` (``fast`` or ``paper``), ``steps``.
``--start paper:K`` starts from the paper protocol's own latent after K steps instead (through the
embedding cache): a stand-in for a better encoder, to see how good a start the target needs.
Writes ``benchmarks/results/encoder_schedules.json`` (``--json`` for another file)::

    python benchmarks/encoder_schedules.py --variants "lr=0.1;lr=0.3;lr=0.3,eps=0.3;lr=0.8,eps=1e-3"
    python benchmarks/encoder_schedules.py --start paper:1000 --variants "lr=0.1;lr=0.03" \
        --json benchmarks/results/encoder_schedules_from_paper1000.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from i2s.runner import cached_embed  # noqa: E402
from i2s.data import benchmark_set  # noqa: E402
from i2s.runner import embed  # noqa: E402
from i2s.data import is_face  # noqa: E402
from i2s.io import atomic_write_text  # noqa: E402
from i2s.loss import EmbeddingLoss  # noqa: E402
from i2s.models import load_generator  # noqa: E402
from time_to_quality import first_reach  # noqa: E402

DIST_TOLERANCE = 0.10  # issue 19: mean ‖w* − w̄‖ within 10 % of the paper protocol's
DEFAULT_VARIANTS = ("lr=0.05,rampdown=0.1;lr=0.1;lr=0.1,beta1=0.5;lr=0.1,beta2=0.99;lr=0.2,rampdown=0.5;lr=0.3;"
                    "lr=0.3,eps=0.3;lr=0.8;lr=0.8,eps=1e-2;lr=0.8,eps=1")


def variant_items(text: str) -> list[str]:
    """The variants of ``--variants``, as written (``;``-separated, blanks dropped)."""
    return [v for v in (v.strip() for v in text.split(";")) if v]


def parse_variants(text: str, steps: int) -> list[dict]:
    """``"lr=0.3,eps=0.3;lr=0.1"`` -> embed() overrides, each with the fast schedule and
    ``steps`` unless it says otherwise. A malformed item is one ValueError line naming it."""
    out = []
    for item in variant_items(text):
        v: dict = {"schedule": "fast", "steps": steps}
        betas = [0.9, 0.999]
        for pair in filter(None, item.split(",")):
            key, sep, value = pair.partition("=")
            key = key.strip()
            if not sep or key not in ("lr", "rampdown", "eps", "beta1", "beta2", "schedule", "steps"):
                raise ValueError(f"variant {item!r}: {pair!r} is not one of lr=, rampdown=, eps=, beta1=, beta2=, "
                                 "schedule=, steps=")
            try:
                if key == "schedule":
                    v[key] = value.strip()
                elif key == "steps":
                    v[key] = int(value)
                elif key.startswith("beta"):
                    betas[int(key[-1]) - 1] = float(value)
                else:
                    v[key] = float(value)
            except ValueError:
                raise ValueError(f"variant {item!r}: {value!r} is not a number for {key}") from None
        if betas != [0.9, 0.999]:
            v["betas"] = tuple(betas)
        out.append(v)
    return out


def start_steps(start: str) -> int:
    """K of ``--start paper:K`` (a ValueError line otherwise)."""
    kind, _, k = start.partition(":")
    if kind != "paper" or not k.isdigit() or int(k) < 1:
        raise ValueError(f"--start {start!r}: use 'encoder' or 'paper:K' with K >= 1 steps")
    return int(k)


def verdict(reach: list[int | None], dist: float, paper_dist: float, steps: int) -> dict:
    """Issue 19's two conditions for one variant: every face reached L_paper within ``steps``,
    and its mean distance to w̄ is within DIST_TOLERANCE of the paper protocol's."""
    all_reach = all(k is not None and k <= steps for k in reach)
    near = dist <= (1 + DIST_TOLERANCE) * paper_dist
    return {"every_face_reaches": all_reach, "dist_within_tolerance": near, "meets_target": all_reach and near}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mini")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS, help="key=value,...;key=value,... (see above)")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--encoder", default=None, help="encoder file (default: the model's shipped one)")
    ap.add_argument("--start", default="encoder", help="'encoder', or 'paper:K': the latent after K steps of the paper's "
                    "protocol (through the embedding cache), standing in for a better encoder")
    ap.add_argument("--targets", type=Path, default=REPO / "benchmarks" / "results" / "time_to_quality.json")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "encoder_schedules.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        variants = parse_variants(args.variants, args.steps)
        if not variants:
            raise ValueError("--variants: none given")
        if args.start != "encoder":
            start_steps(args.start)
        ref = json.loads(args.targets.read_text())
    except (ValueError, OSError) as e:
        raise SystemExit(f"encoder_schedules: {e}") from None

    from i2s.encoder import default_encoder, load_encoder

    G = load_generator(args.model)
    names, x = benchmark_set(G, sum(n.startswith("holdout/") for n in ref["images"]), 1)
    if names != ref["images"] or G.name != ref["model"]:
        raise SystemExit(f"encoder_schedules: {args.targets} was made for other images ({ref['images'][:2]}...); "
                         "re-run benchmarks/time_to_quality.py first")
    face = [i for i, n in enumerate(names) if is_face(n)]
    xf, target = x[face], torch.tensor(ref["paper_final_loss"])[face]
    paper = next(r for r in ref["runs"] if r["run"] == "paper")
    paper_dist = float(np.mean(np.array(paper["dist_to_w_avg"])[face]))
    loss_fn = EmbeddingLoss()
    if args.start == "encoder":
        enc_path = Path(args.encoder) if args.encoder else default_encoder(G)
        with torch.no_grad():
            w0 = load_encoder(enc_path, G)(xf)
        start = f"encoder {enc_path}"
    else:
        k = start_steps(args.start)
        w0 = cached_embed(G, xf, loss_fn=loss_fn, batch_size=16, precision="float32", steps=k, desc=f"paper {k}").w_plus
        start = f"the paper protocol's latent after {k} steps"
    print(f"{G.name}, {len(face)} faces, start: {start}, perceptual net {loss_fn.perceptual_net}, float32, "
          f"{platform.processor() or platform.machine()}, {args.threads} threads; paper protocol's mean ‖w*−w̄‖ "
          f"{paper_dist:.1f} (target ≤ {(1 + DIST_TOLERANCE) * paper_dist:.1f})", flush=True)
    print(f"{'variant':<34} {'faces reaching (steps)':>40} {'final/L_paper mean':>18} {'max':>6} "
          f"{'‖w*−w̄‖':>7} {'/paper':>6}  target")
    rows = []
    for item, v in zip(variant_items(args.variants), variants):
        t = time.perf_counter()
        r = embed(G, xf, w_init=w0, loss_fn=loss_fn, precision="float32", progress=False, **v)
        c = torch.cat([r.loss_curve, r.loss[None]])
        reach = first_reach(c, target)
        start_loss = (c[0] / target).tolist()  # every variant starts from w0: the first point of its curve
        ratio = (r.loss / target).numpy()
        dist = float(r.dist_to_w_avg.mean())
        row = {"variant": item, "settings": {k: (list(val) if isinstance(val, tuple) else val) for k, val in v.items()},
               "reach_steps": reach, "final_over_paper": ratio.tolist(), "dist_to_w_avg": r.dist_to_w_avg.tolist(),
               "dist_over_paper": dist / paper_dist, "seconds": time.perf_counter() - t,
               **verdict(reach, dist, paper_dist, v["steps"])}
        rows.append(row)
        print(f"{item:<34} {' '.join('-' if k is None else str(k) for k in reach):>40} {ratio.mean():>18.3f} "
              f"{ratio.max():>6.3f} {dist:>7.1f} {dist / paper_dist:>6.2f}  {'met' if row['meets_target'] else 'not met'}",
              flush=True)
    print(f"the start: {np.mean(start_loss):.2f} x L_paper on average (per face: "
          + " ".join(f"{v:.2f}" for v in start_loss) + ")")
    out = {"model": G.name, "images": [names[i] for i in face], "start": start, "start_over_paper": start_loss,
           "perceptual_net": loss_fn.perceptual_net, "torch": torch.__version__, "threads": args.threads, "targets": str(args.targets),
           "paper_dist_to_w_avg": paper_dist, "dist_tolerance": DIST_TOLERANCE, "runs": rows}
    atomic_write_text(args.json, json.dumps(out, indent=1) + "\n")
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
