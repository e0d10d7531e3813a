"""Training recipes of ``mini`` side by side: images/s per core, and quality per image seen (issue 31).

Two parts:

* ``speed`` (the default): every recipe's training step, in one process on this CPU, one thread
  (per core) unless ``--threads``: images/s, GFLOP per image (counted by torch's flop formulas),
  the share of the time per part of the step (generator, discriminator, backward passes,
  optimisers) and GFLOP/s against the core's measured peak (a large matmul in the same
  precision). Recipes run on the real training photos when they are there, random ones otherwise.
* ``quality``: every recipe (and ``--variant NAME="flags"`` on top of the v3 recipe) trained from
  scratch to ``--kimg`` thousand images with each seed of ``--seeds``, then judged by networks no
  discriminator saw: FD in dlib's face-descriptor space (:mod:`scripts.eval_generators`, ``--n``
  samples against ``--n`` real photos, minus the real-vs-real floor) and the layer-structure
  measures (:mod:`i2s.layer_structure`). The rule of issue 31: a recipe keeps quality per image seen
  when its mean FD − floor is no worse than the v2 recipe's by more than v2's own seed-to-seed
  spread. Runs live in ``$I2S_HOME/bench/train-recipes/`` and resume.

::

    python benchmarks/train_speed.py                          # speed of v2 and v3, one thread
    python benchmarks/train_speed.py quality --kimg 20        # 2 recipes x 2 seeds, 2 runs at a time
    python benchmarks/train_speed.py quality --recipes v3 --variant nocolor="--diffaug-policy translation,cutout"
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(HERE))

import eval_generators as EG  # noqa: E402
from train_precision import run_pool, speed as log_speed  # noqa: E402

from i2s import precision as P  # noqa: E402
from i2s.io import atomic_write_text  # noqa: E402
from i2s.weights.fetch import i2s_home  # noqa: E402

# mini v2's recipe (data/models/mini-faces64.md) and v3's, as python -m i2s.train flags. v3's speed
# part is the first two lines; the last line is its layer-structure part (DiffAugment without colour,
# the lazy locality penalty), added after the committed speed measurement (whose JSON lists the flags
# it ran with).
RECIPES: dict[str, list[str]] = {
    "v2": ["--d-arch", "projected", "--proj-res", "128", "--d-flip", "--schedule", "64:rest", "--batch", "16",
           "--fmap-base", "2048", "--fmap-max", "128", "--ema-kimg", "5"],
    "v3": ["--d-arch", "projected", "--proj-res", "96", "--d-width", "0.5", "--d-flip", "--schedule", "64:rest",
           "--batch", "16", "--fmap-base", "1024", "--fmap-max", "128", "--ema-kimg", "5", "--one-g-pass",
           "--d-precision", "float32", "--compile",
           "--diffaug-policy", "translation,cutout", "--locality", "1"],
}


# ----------------------------------------------------------------------------- speed


class FlopCounter(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts the floating-point operations of every op torch has a flop formula for (convolutions,
    matmuls and their backward passes: the bulk of a training step)."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch.utils.flop_counter import flop_registry

        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


def peak_gflops(precision: str, seconds: float = 1.0) -> float:
    """GFLOP/s of a 1024 x 1024 matmul on this thread count, in the step's precision."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(1024, 1024, dtype=dtype), torch.randn(1024, 1024, dtype=dtype)
    for _ in range(3):
        a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return n * 2 * 1024**3 / (time.perf_counter() - t0) / 1e9


def make_trainer(flags: list[str], data: np.ndarray):
    from i2s.train.cli import parse_args
    from i2s.train.trainer import Trainer

    return Trainer(parse_args(flags + ["--no-progress", "--device", "cpu"]), data)


def parts_of_step(tr, iters: int) -> dict[str, float]:
    """Seconds per iteration of each part of :meth:`Trainer.training_step` (timed one by one:
    data, G forward (twice without ``--one-g-pass``), D forward on reals and fakes, D backward +
    Adam, D forward for the G step, backward into G + Adam + EMA), for the projected recipe's step."""
    from i2s.projected import hinge_d_loss, hinge_g_loss
    from i2s.train.trainer import ema_update

    t: dict[str, float] = {}

    def tick(key: str, t0: float) -> float:
        now = time.perf_counter()
        t[key] = t.get(key, 0.0) + now - t0
        return now

    block = tr.schedule.at(tr.state.images_seen)[0]
    batch = tr.batch_size(block)
    for _ in range(iters):
        t0 = time.perf_counter()
        reals = tr.prepare_reals(tr.data[np.sort(tr.stream.next(batch))], block, 1.0)
        t0 = tick("data (uint8 -> float, flips)", t0)
        tr.D.requires_grad_(True)
        if not getattr(tr.args, "one_g_pass", False):  # the recipe renders a second, gradient-free batch for D
            with torch.no_grad():
                tr.generate(tr.G, batch, block, 1.0)
        fakes_g = tr.generate(tr.G, batch, block, 1.0)
        t0 = tick("G forward (mapping + synthesis), once or twice", t0)
        real, fake = tr.discriminate(reals, block, 1.0), tr.discriminate(fakes_g.detach(), block, 1.0)
        t0 = tick("D forward, reals and fakes (feature net + heads)", t0)
        tr.opt_D.zero_grad(set_to_none=True)
        hinge_d_loss(real, fake).backward()
        tr.opt_D.step()
        t0 = tick("D backward + Adam", t0)
        tr.D.requires_grad_(False)
        out = tr.discriminate(fakes_g, block, 1.0)
        t0 = tick("D forward for the G step", t0)
        tr.opt_G.zero_grad(set_to_none=True)
        hinge_g_loss(out).backward()
        tr.opt_G.step()
        ema_update(tr.G_ema, tr.G, 0.999)
        tick("backward through D and G + Adam + EMA", t0)
    return {k: v / iters for k, v in t.items()}


def speed_main(a: argparse.Namespace) -> int:
    torch.set_num_threads(a.threads)
    data_path = Path(a.data).expanduser()
    if data_path.is_file():
        data, source = np.load(data_path, mmap_mode="r"), str(data_path)
    else:
        data, source = np.random.default_rng(0).integers(0, 256, (256, 64, 64, 3), dtype=np.uint8), "random images"
    cpu = P.describe("float32", "cpu").rsplit(", ", 1)[0]
    rows = []
    for name in a.recipes:
        flags = RECIPES[name] + ["--precision", a.precision]
        tr = make_trainer(flags, data)
        for _ in range(a.warmup):
            tr.training_step()
        t0, seen = time.perf_counter(), tr.state.images_seen
        for _ in range(a.iters):
            tr.training_step()
        dt = time.perf_counter() - t0
        ips = (tr.state.images_seen - seen) / dt
        counter = FlopCounter()
        with counter:
            tr.training_step()
        batch = tr.batch_size(tr.schedule.at(tr.state.images_seen)[0])
        gflop_img = counter.flops / batch / 1e9
        parts = parts_of_step(tr, a.iters) if tr.projected else {}
        rows.append({"recipe": name, "flags": " ".join(flags), "images_per_s": ips, "gflop_per_image": gflop_img,
                     "gflops": ips * gflop_img, "parts_s": parts, "precision": tr.precision,
                     "G_params": sum(p.numel() for p in tr.G.parameters()),
                     "D_params": sum(p.numel() for p in tr.D.parameters())})
    peak = peak_gflops(rows[0]["precision"] if rows else "float32")
    print(f"\ntraining step, {a.threads} thread(s), {cpu}, data: {source}; matmul peak {peak:.0f} GFLOP/s")
    print(f"{'recipe':8s} {'images/s':>9s} {'vs ' + a.recipes[0]:>8s} {'GFLOP/img':>10s} {'GFLOP/s':>8s} {'of peak':>8s}")
    for r in rows:
        r["share_of_peak"] = r["gflops"] / peak
        print(f"{r['recipe']:8s} {r['images_per_s']:9.2f} {r['images_per_s'] / rows[0]['images_per_s']:7.2f}x "
              f"{r['gflop_per_image']:10.2f} {r['gflops']:8.1f} {r['share_of_peak']:8.0%}")
    for r in rows:
        total = sum(r["parts_s"].values())
        if total:
            print(f"\n{r['recipe']}: where an iteration's {total * 1000:.0f} ms go")
            for k, v in r["parts_s"].items():
                print(f"  {k:50s} {v * 1000:7.1f} ms {v / total:6.1%}")
    result = {"cpu": cpu, "threads": a.threads, "data": source, "peak_gflops": peak, "rows": rows}
    if a.out:
        atomic_write_text(Path(a.out), json.dumps(result, indent=2) + "\n")
        print(f"written {a.out}")
    return 0


# ----------------------------------------------------------------------------- quality


def run_command(run: Path, flags: list[str], data: Path, seed: int, kimg: float, threads: int) -> list[str]:
    cmd = [sys.executable, "-m", "i2s.train", "--out", str(run), "--threads", str(threads), "--no-progress"]
    if (run / "checkpoint.pt").exists() or (run / "checkpoint-prev.pt").exists():
        return cmd + ["--resume", "--total-kimg", str(kimg)]
    return cmd + ["--data", str(data), "--seed", str(seed), "--total-kimg", str(kimg), "--ckpt-every", "2",
                  "--sample-every", "5", *flags]


def images_seen(run: Path) -> int:
    from i2s.train.trainer import load_run_file

    ckpt = run / "checkpoint.pt"
    return load_run_file(ckpt)["state"]["images_seen"] if ckpt.exists() else 0


def quality_main(a: argparse.Namespace) -> int:
    from i2s.layer_structure import structure

    data = Path(a.data).expanduser()
    if not data.is_file():
        raise SystemExit(f"{data}: not found (python scripts/prepare_mini_data.py)")
    recipes = {name: RECIPES[name] for name in a.recipes}
    for spec in a.variant or []:
        name, sep, flags = spec.partition("=")
        if not sep or not name:
            raise SystemExit(f"--variant {spec!r}: want NAME=\"flags added to the v3 recipe\"")
        recipes[name] = RECIPES["v3"] + shlex.split(flags)
    root = Path(a.root).expanduser() if a.root else i2s_home() / "bench" / "train-recipes"
    runs = {(name, s): root / f"{name}-s{s}" for name in recipes for s in a.seeds}
    t0 = time.time()
    run_pool([(run, run_command(run, recipes[name], data, s, a.kimg, a.threads)) for (name, s), run in runs.items()
              if images_seen(run) < a.kimg * 1000], a.parallel, a.threads, "train_speed")
    train_s = time.time() - t0
    torch.set_num_threads(a.parallel * a.threads)
    real_a, real_b = EG.real_descriptors(data, a.n, 0)
    floor = EG.frechet_distance(real_b, real_a)
    rows = []
    for (name, s), run in runs.items():
        G = EG.load_any(str(run / "checkpoint.pt"))
        fd = EG.frechet_distance(EG.describe(EG.sample(G, a.n), f"{name}-s{s}"), real_a) - floor
        st = structure(G, n=64, seed=0)
        rows.append({"recipe": name, "seed": s, "flags": " ".join(recipes[name]), "kimg": images_seen(run) / 1000,
                     "fd_minus_floor": fd, "images_per_s": log_speed(run), "structure": st.to_dict()})
    base = [r["fd_minus_floor"] for r in rows if r["recipe"] == a.recipes[0]]
    spread = float(max(base) - min(base)) if len(base) >= 2 else float("nan")
    print(f"\n{a.kimg:g} kimg per run from scratch; {a.threads} thread(s) per run, {a.parallel} at a time; "
          f"FD n = {a.n}, floor {floor:.4f}; structure n = 64")
    print(f"{'recipe':12s} {'seed':>4s} {'FD-floor':>9s} {'img/s':>6s} {'coarse/fine':>11s} {'trunc':>6s} "
          f"{'lm coarse':>9s} {'lm fine':>8s} {'corner':>7s}")
    for r in rows:
        st = r["structure"]
        print(f"{r['recipe']:12s} {r['seed']:4d} {r['fd_minus_floor']:9.4f} {r['images_per_s']:6.2f} "
              f"{st['coarse_over_fine']:11.3f} {st['truncation_share']:6.3f} {st['coarse_landmark_shift']:9.4f} "
              f"{st['fine_landmark_shift']:8.4f} {'patch' if st['corner']['patch'] else 'none':>7s}")
    verdicts = {}
    for name in recipes:
        v = [r["fd_minus_floor"] for r in rows if r["recipe"] == name]
        worse = float(np.mean(v) - np.mean(base))
        decided = len(base) >= 2  # the rule needs the baseline's seed spread
        verdict = ("undecided (the baseline has one seed: no spread)" if not decided
                   else "keeps quality per image seen" if worse <= spread else "loses quality per image seen")
        verdicts[name] = {"mean_fd_minus_floor": float(np.mean(v)), "minus_baseline": worse,
                          "keeps_quality": bool(worse <= spread) if decided else None, "verdict": verdict}
        print(f"{name:12s} mean FD - floor {np.mean(v):.4f} ({worse:+.4f} vs {a.recipes[0]}, whose seed spread is "
              f"{spread:.4f}): {verdict}")
    result = {"kimg": a.kimg, "seeds": a.seeds, "n": a.n, "floor": floor, "feature_space": EG.identity.NAME,
              "threads_per_run": a.threads, "parallel": a.parallel, "train_seconds": round(train_s, 1),
              "cpu": P.describe("float32", "cpu").rsplit(", ", 1)[0], "baseline": a.recipes[0],
              "baseline_seed_spread": spread, "rows": rows, "verdicts": verdicts}
    atomic_write_text(Path(a.out), json.dumps(result, indent=2) + "\n")
    print(f"written {a.out}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("part", nargs="?", choices=("speed", "quality"), default="speed")
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES),
                    help="the first is the baseline")
    ap.add_argument("--data", default=str(EG.DEFAULT_DATA), help="the 64-px training photos (.npy)")
    ap.add_argument("--threads", type=int, default=1, help="threads (per run)")
    ap.add_argument("--precision", default="auto", choices=("auto", "float32", "bf16"))
    ap.add_argument("--iters", type=int, default=6, help="speed: timed iterations per recipe")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--variant", action="append", metavar="NAME=FLAGS", help="quality: the v3 recipe plus FLAGS")
    ap.add_argument("--kimg", type=float, default=20.0, help="quality: thousands of images per run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--parallel", type=int, default=2, help="quality: runs at a time")
    ap.add_argument("--n", type=int, default=1000, help="quality: samples and real photos per FD set")
    ap.add_argument("--root", default=None, help="quality: run folders (default $I2S_HOME/bench/train-recipes)")
    ap.add_argument("--out", default=None, help="JSON (default benchmarks/results/train_<part>.json)")
    a = ap.parse_args(argv)
    if a.out is None:
        a.out = str(HERE / "results" / f"train_{a.part}.json")
    return speed_main(a) if a.part == "speed" else quality_main(a)


if __name__ == "__main__":
    raise SystemExit(main())
