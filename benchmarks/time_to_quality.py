"""Time to quality: how many Adam steps (and seconds) reach the loss of the paper's 5000-step run.

On the mini model and the benchmark images (:func:`i2s.data.benchmark_set`: held-out training
faces and the first evaluation images of every class), this runs

* the paper's protocol (Adam, lr 0.01, 5000 steps from w̄), whose final loss per image is the
  target ``L_paper``;
* the opt-in ``schedule="fast"`` (``--fast STEPS@LR[@RAMPDOWN],...``);
* Algorithm 1 started from the encoder's prediction (``init="encoder"``, :mod:`i2s.encoder`)
  with the paper's constant lr (``--encoder-steps``) and with fast schedules (``--encoder-fast``);

and prints, per schedule and image, after how many steps the loss first reaches ``L_paper`` (the
curve holds the loss of the latent after k updates), the seconds that takes on this machine
(steps x the measured time of one image-step at this batch; plus the encoder's forward pass),
the final loss over ``L_paper`` and ‖w* − w̄‖ beside the paper protocol's. It then compares the
encoder alone (0 steps) with the paper's 1000- and 5000-step embeddings on the held-out faces:
PSNR, SSIM and the dlib face-descriptor distance to the photo.

Every run goes through the embedding cache (``$I2S_HOME/embeddings``; loss curves included), so
``benchmarks/bf16_quality.py`` shares the paper runs and an interrupted run resumes. Writes
``benchmarks/results/time_to_quality.json``::

    python benchmarks/time_to_quality.py                              # 8 held-out faces + 1 per class
    python benchmarks/time_to_quality.py --fast 1250@0.8,1250@0.4@0.5 --encoder-fast 500@0.1
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from i2s import precision as P  # noqa: E402
from i2s.runner import cached_embed  # noqa: E402
from i2s.data import benchmark_set  # noqa: E402
from i2s.data import is_face  # noqa: E402
from i2s.embed import FAST_LR, FAST_STEPS, PAPER_LR, PAPER_STEPS  # noqa: E402
from i2s.runner import embed  # noqa: E402
from i2s.io import atomic_write_text  # noqa: E402
from i2s.loss import EmbeddingLoss  # noqa: E402
from i2s.metrics import psnr, ssim  # noqa: E402
from i2s.models import MINI_PATH, load_generator  # noqa: E402

EMBED = importlib.import_module("i2s.embed")  # the module (the package's ``embed`` is the function)


def fast_runs(fast: str, fast_lr: str, rampdown: float) -> list[tuple[int, float, float]]:
    """(steps, peak lr, ramp-down fraction) triples: every step count of ``fast`` with every rate
    of ``fast_lr`` and ``rampdown``, and items written ``STEPS@LR`` or ``STEPS@LR@RAMPDOWN`` as
    they are (``--fast 1000@0.1,1250@0.8@0.5``)."""
    lrs = [float(x) for x in fast_lr.split(",")]
    out: list[tuple[int, float, float]] = []
    for item in filter(None, fast.split(",")):
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


TAIL_SHARE = 0.1  # the share of the paper run's last steps whose loss band tells how precise L_paper is


def tail_band(curve: torch.Tensor, share: float = TAIL_SHARE) -> torch.Tensor:
    """Per image, the lowest and highest loss over the last ``share`` of the curve, over its final
    value ([2, N]): how much the target L_paper itself moves as the paper's constant-lr run
    oscillates (a run that lands inside the band is as good as the paper's within its own noise)."""
    tail = curve[-max(1, int(round(share * (curve.shape[0] - 1)))) - 1:]
    return torch.stack([tail.min(0).values, tail.max(0).values]) / curve[-1]


def run(G, x, loss_fn, batch: int, label: str, **settings):
    """One schedule on all images through the cache: (curve [steps + 1, N], result)."""
    res = cached_embed(G, x, loss_fn=loss_fn, batch_size=batch, precision="float32", desc=label, **settings)
    return torch.cat([res.loss_curve, res.loss[None]]), res


def seconds_per_image_step(G, x, loss_fn, batch: int, steps: int = 10) -> float:
    """Measured: one Adam step of the paper's loss, per image, at this batch (set-up excluded)."""
    xb = x[:batch]
    embed(G, xb, steps=2, loss_fn=loss_fn, progress=False, precision="float32")
    t = time.perf_counter()
    embed(G, xb, steps=steps, loss_fn=loss_fn, progress=False, precision="float32")
    return (time.perf_counter() - t) / steps / len(xb)


def quality(G, images: torch.Tensor, x: torch.Tensor) -> dict[str, list[float]]:
    """PSNR, SSIM and the dlib face-descriptor distance of reconstructions to their photos."""
    from i2s.identity import identity_distance

    zoom = float(G.info.get("align_zoom", 0.7))
    return {"psnr": psnr(images, x).tolist(), "ssim": ssim(images, x).tolist(),
            "identity": identity_distance(images, x, zoom).tolist()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mini" if MINI_PATH.is_file() else "random-mini")
    ap.add_argument("--holdout", type=int, default=8, help="held-out training faces (mini)")
    ap.add_argument("--per-class", type=int, default=1, help="evaluation images per class")
    ap.add_argument("--fast", default=f"{FAST_STEPS}@{FAST_LR:g}", help="fast schedules, STEPS@LR[@RAMPDOWN],...")
    ap.add_argument("--fast-lr", default=f"{FAST_LR:g}", help="peak learning rates for --fast items without @LR")
    ap.add_argument("--encoder", default=None, help="encoder file (default: the model's, i2s.encoder.default_encoder)")
    ap.add_argument("--encoder-steps", type=int, default=1000, help="encoder + paper lr: steps run (0: skip)")
    ap.add_argument("--encoder-fast", default="500@0.1,500@0.8", help="encoder + fast schedules, STEPS@LR,...")
    ap.add_argument("--paper-steps", type=int, default=PAPER_STEPS, help="the reference run's steps (the paper's: 5000; "
                    "fewer only to try the script)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "time_to_quality.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    G = load_generator(args.model)
    names, x = benchmark_set(G, args.holdout, args.per_class)
    loss_fn = EmbeddingLoss()
    device = P.describe("float32", G.device)
    print(f"{G.name}: {len(names)} images ({args.holdout} held-out faces, {args.per_class} per class); perceptual net "
          f"{loss_fn.perceptual_net}; torch {torch.__version__}; {device}; {platform.processor() or platform.machine()}, "
          f"{args.threads} threads", flush=True)

    rows = []  # (label, schedule, steps, lr, rampdown, init, curve, result)
    curve, paper = run(G, x, loss_fn, args.batch, f"paper {args.paper_steps}", steps=args.paper_steps)
    rows.append(("paper", "paper", args.paper_steps, PAPER_LR, None, "mean", curve, paper))
    target = curve[-1]
    band = tail_band(curve)
    for steps, lr, down in fast_runs(args.fast, args.fast_lr, EMBED.FAST_RAMPDOWN):
        c, r = run(G, x, loss_fn, args.batch, f"fast {steps}@{lr:g}", schedule="fast", steps=steps, lr=lr, rampdown=down)
        rows.append(("fast", "fast", steps, lr, down, "mean", c, r))

    enc_obj, enc_seconds = None, 0.0
    if args.encoder_steps or args.encoder_fast:
        from i2s.encoder import default_encoder, load_encoder

        enc_path = Path(args.encoder) if args.encoder else default_encoder(G)
        if not enc_path.is_file():
            print(f"[no encoder at {enc_path}: the encoder rows are skipped; train one with "
                  f"`i2s train-encoder --model {args.model} --out RUN`]", flush=True)
        else:
            enc_obj = load_encoder(enc_path, G)
            with torch.no_grad():
                enc_obj(x[:1])
                t = time.perf_counter()
                enc_obj(x)
                enc_seconds = (time.perf_counter() - t) / len(x)
            print(f"encoder {enc_path} ({enc_seconds * 1e3:.1f} ms per image)", flush=True)
            if args.encoder_steps:
                c, r = run(G, x, loss_fn, args.batch, f"encoder + paper {args.encoder_steps}", init="encoder",
                           steps=args.encoder_steps, encoder=enc_obj)
                rows.append(("encoder+paper", "paper", args.encoder_steps, PAPER_LR, None, "encoder", c, r))
            for steps, lr, down in fast_runs(args.encoder_fast, args.fast_lr, EMBED.FAST_RAMPDOWN):
                c, r = run(G, x, loss_fn, args.batch, f"encoder + fast {steps}@{lr:g}", init="encoder", schedule="fast",
                           steps=steps, lr=lr, rampdown=down, encoder=enc_obj)
                rows.append(("encoder+fast", "fast", steps, lr, down, "encoder", c, r))

    sec = seconds_per_image_step(G, x, loss_fn, args.batch)
    print(f"\n{sec * 1e3:.1f} ms per image-step at batch {min(args.batch, len(x))} on this machine ({device})")
    print(f"target: the loss after the paper's protocol ({args.paper_steps} steps), per image: "
          + ", ".join(f"{n}={v:.4g}" for n, v in zip(names, target.tolist())))
    summary = {"model": G.name, "images": names, "perceptual_net": loss_fn.perceptual_net, "torch": torch.__version__,
               "device": device, "threads": args.threads, "seconds_per_image_step": sec,
               "encoder_seconds_per_image": enc_seconds, "paper_final_loss": target.tolist(),
               "paper_tail_share": TAIL_SHARE, "paper_tail_over_final": band.tolist(), "runs": []}
    is_face = np.array([is_face(n) for n in names])
    print(f"the paper's own loss over its last {TAIL_SHARE:.0%} of steps, over L_paper: faces {band[0, is_face].min():.3f}-"
          f"{band[1, is_face].max():.3f} (per image: min " + " ".join(f"{v:.3f}" for v in band[0].tolist()) + ")")
    print(f"{'run':<14} {'steps':>5} {'lr':>5} {'faces reach L_paper (steps)':>30} {'max':>5} {'max s':>6} "
          f"{'final/L_paper faces':>19} {'others':>7} {'‖w*−w̄‖ faces':>13} {'others':>7}")
    for label, schedule, steps, lr, down, init, c, r in rows:
        reach = first_reach(c, target)
        face_reach = [reach[i] for i in np.flatnonzero(is_face)]
        worst = None if None in face_reach else max(face_reach)
        ratio = (c[-1] / target).numpy()
        dist = r.dist_to_w_avg.numpy()
        extra = enc_seconds if init == "encoder" else 0.0
        secs = [None if k is None else k * sec + extra for k in reach]
        print(f"{label:<14} {steps:>5} {lr:>5g} {' '.join('-' if k is None else str(k) for k in face_reach):>30} "
              f"{'-' if worst is None else worst:>5} {'-' if worst is None else f'{worst * sec + extra:.0f}':>6} "
              f"{ratio[is_face].mean():>19.3f} {ratio[~is_face].mean() if (~is_face).any() else float('nan'):>7.3f} "
              f"{dist[is_face].mean():>13.1f} {dist[~is_face].mean() if (~is_face).any() else float('nan'):>7.1f}")
        summary["runs"].append({"run": label, "schedule": schedule, "steps": steps, "lr": lr, "rampdown": down,
                                "init": init, "reach_steps": reach, "reach_seconds": secs,
                                "max_reach_steps_faces": worst, "final_over_paper": ratio.tolist(),
                                "dist_to_w_avg": dist.tolist(), "curve_every_50": c[::50].tolist()})
    others = [i for i in range(len(names)) if not is_face[i]]
    if others:
        print(f"\nother classes, steps to reach L_paper ({', '.join(names[i].split('/')[0] for i in others)}):")
        for label, _, steps, lr, _, _, c, _ in rows:
            reach = first_reach(c, target)
            print(f"{label:<14} {steps:>5} {lr:>5g} " + " ".join('-' if reach[i] is None else str(reach[i]) for i in others))
    print("('-' = not reached within the run's steps; per image in the JSON)")
    # what a run's final loss is worth in the paper's own steps: the first step at which the
    # paper's protocol from w̄ is as low (its curve is the reference for every run)
    print("\nsteps the paper's protocol needs to reach each run's final loss (faces: median, min-max; "
          "others: median; 5001 = not within its 5000)")
    for entry, (label, _, steps, lr, _, _, c, _) in zip(summary["runs"], rows):
        eq = [k if k is not None else curve.shape[0] for k in first_reach(curve, c[-1])]
        entry["paper_steps_to_this_final_loss"] = eq
        f_eq = [eq[i] for i in np.flatnonzero(is_face)]
        o_eq = [eq[i] for i in np.flatnonzero(~is_face)]
        print(f"{label:<14} {steps:>5} {lr:>5g}  faces {int(np.median(f_eq)):>5} ({min(f_eq)}-{max(f_eq)})"
              + (f"  others {int(np.median(o_eq)):>5}" if o_eq else ""))

    if enc_obj is not None:
        hold = np.flatnonzero([n.startswith("holdout/") for n in names])
        xh = x[hold]
        with torch.no_grad():
            enc_images = G.synthesis(enc_obj(xh)).clamp(-1, 1)
        _, r1000 = run(G, xh, loss_fn, args.batch, "paper 1000", steps=1000)
        table = {"encoder alone (0 steps)": quality(G, enc_images, xh),
                 "paper, 1000 steps": quality(G, r1000.images, xh),
                 f"paper, {args.paper_steps} steps": quality(G, paper.images[hold], xh)}
        print(f"\nheld-out faces (n = {len(hold)}): mean ± sd")
        print(f"{'':<24} {'PSNR dB':>13} {'SSIM':>13} {'identity dist':>14}")
        for k, v in table.items():
            print(f"{k:<24} " + " ".join(f"{np.mean(v[m]):>7.2f} ± {np.std(v[m], ddof=1):<5.2f}" for m in v))
        summary["encoder_alone_vs_paper"] = {"images": [names[i] for i in hold], **table}
    atomic_write_text(args.json, json.dumps(summary, indent=1) + "\n")
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
