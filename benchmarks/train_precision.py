"""Does bf16 autocast cost the training of ``mini`` quality per image seen? (issue 14)

From one starting generator (the interim mini v2 by default; D starts fresh), ``--kimg``
thousand images are trained under each precision (float32, bf16 autocast) with each seed of
``--seeds``: same data order, same z's, same D projection per seed, so a precision's runs
differ from the other's only by their arithmetic. Every final EMA generator is then judged by
the network no discriminator saw (``scripts/eval_generators.py``: Fréchet distance in dlib's
face-descriptor space, ``--n`` samples against ``--n`` real photos, with the real-vs-real
floor), beside its images per second.

The rule: bf16 keeps quality per image seen when the mean paired difference (bf16 − float32,
per seed) of FD − floor is no larger than float32's own seed-to-seed spread (the largest
|difference| between float32 runs of two seeds). With 2 seeds this is a coarse test; the JSON
keeps every number. Runs live in ``$I2S_HOME/bench/train-precision/`` and resume::

    python benchmarks/train_precision.py                    # 2 x 2 runs of 5 kimg, 2 in parallel
    python benchmarks/train_precision.py --kimg 1 --n 300   # a quick look
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import eval_generators as EG  # noqa: E402
from i2s import precision as P  # noqa: E402
from i2s.io import atomic_write_text  # noqa: E402
from i2s.train.trainer import load_run_file  # noqa: E402
from i2s.weights.fetch import i2s_home  # noqa: E402

# mini v2's recipe (data/models/mini-faces64.md), continued at 64 px
RECIPE = ["--d-arch", "projected", "--proj-res", "128", "--d-flip", "--schedule", "64:rest", "--batch", "16",
          "--fmap-base", "2048", "--fmap-max", "128", "--ema-kimg", "5", "--ckpt-every", "1", "--sample-every", "100",
          "--no-progress"]
PRECISIONS = ("float32", "bf16")


def start_kimg(path: Path) -> float:
    obj = load_run_file(path)
    info = obj.get("info", {})
    seen = info.get("images_seen") or obj.get("state", {}).get("images_seen", 0)
    return seen / 1000


def run_command(run: Path, start: Path, data: Path, precision: str, seed: int, total_kimg: float,
                threads: int) -> list[str]:
    cmd = [sys.executable, "-m", "i2s.train", "--out", str(run), "--threads", str(threads)]
    if (run / "checkpoint.pt").exists() or (run / "checkpoint-prev.pt").exists():
        return cmd + ["--resume", "--total-kimg", str(total_kimg)]
    return cmd + ["--data", str(data), "--transfer", str(start), "--precision", precision, "--seed", str(seed),
                  "--total-kimg", str(total_kimg), *RECIPE]


def images_seen(run: Path) -> int:
    ckpt = run / "checkpoint.pt"
    if not ckpt.exists():
        return 0
    return load_run_file(ckpt)["state"]["images_seen"]


def run_pool(jobs: list[tuple[Path, list[str]]], parallel: int, threads: int, what: str) -> None:
    """Runs each (run folder, command) ``parallel`` at a time, ``threads`` threads each, the
    output to ``<run>/train.out``; a failure stops the batch with one line naming its log."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    todo, running = list(jobs), []
    while todo or running:
        while todo and len(running) < parallel:
            run, cmd = todo.pop(0)
            run.mkdir(parents=True, exist_ok=True)
            log = open(run / "train.out", "a")
            print(f"[{what}] {run.name}: {' '.join(cmd[1:])}", flush=True)
            running.append((subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT), log))
        time.sleep(5)
        for proc, log in list(running):
            if proc.poll() is not None:
                log.close()
                running.remove((proc, log))
                if proc.returncode != 0:
                    raise SystemExit(f"training failed (exit {proc.returncode}); see {log.name}")


def train_all(jobs: list[tuple[str, int]], root: Path, start: Path, data: Path, total_kimg: float,
              parallel: int, threads: int) -> None:
    """Trains the (precision, seed) runs not yet at ``total_kimg``."""
    runs = [root / f"{prec}-s{seed}" for prec, seed in jobs]
    run_pool([(run, run_command(run, start, data, prec, seed, total_kimg, threads))
              for run, (prec, seed) in zip(runs, jobs) if images_seen(run) < total_kimg * 1000],
             parallel, threads, "train_precision")


def speed(run: Path) -> float:
    """Mean images/s over the run's log records (the first, which includes set-up, left out)."""
    recs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    vals = [r["images_per_s"] for r in recs[1:]] or [r["images_per_s"] for r in recs]
    return float(np.mean(vals))


def decide(fd: dict[tuple[str, int], float], seeds: list[int]) -> dict:
    """The rule of the module docstring on a measure where lower is better (FD − floor here),
    given per (precision, seed)."""
    paired = [fd[("bf16", s)] - fd[("float32", s)] for s in seeds]
    spread = max((abs(fd[("float32", a)] - fd[("float32", b)]) for a, b in itertools.combinations(seeds, 2)),
                 default=float("nan"))
    mean = float(np.mean(paired))
    keeps = bool(len(seeds) >= 2 and mean <= spread)
    return {"paired_diff": paired, "mean_paired_diff": mean, "float32_seed_spread": spread,
            "bf16_keeps_quality": keeps,
            "verdict": ("bf16 keeps quality per image seen (mean paired difference within float32's seed spread)"
                        if keeps else "bf16 costs quality per image seen, or fewer than 2 seeds: float32 recommended")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", default=str(REPO / "data" / "models" / "interim" / "mini-v2-58k.pt"),
                    help="generator (exported) or checkpoint to start every run from")
    ap.add_argument("--data", default=str(EG.DEFAULT_DATA), help="the 64-px training photos (.npy)")
    ap.add_argument("--kimg", type=float, default=5.0, help="thousands of images each run trains")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--parallel", type=int, default=2, help="training runs at a time")
    ap.add_argument("--threads", type=int, default=1, help="threads per training run")
    ap.add_argument("--n", type=int, default=1000, help="samples and real photos per FD set")
    ap.add_argument("--root", default=None, help="run directories (default $I2S_HOME/bench/train-precision)")
    ap.add_argument("--out", default=str(HERE / "results" / "train_precision.json"))
    a = ap.parse_args(argv)
    if not P.bf16_supported("cpu"):
        print("[train_precision] this CPU has no native bf16: the bf16 runs are emulated (slow, not the question)")
    start, data = Path(a.start).expanduser(), Path(a.data).expanduser()
    for f in (start, data):
        if not f.is_file():
            raise SystemExit(f"{f}: not found (data: python scripts/prepare_mini_data.py)")
    root = Path(a.root).expanduser() if a.root else i2s_home() / "bench" / "train-precision"
    k0 = start_kimg(start)
    total = round(k0 + a.kimg, 3)
    root = root / f"{start.stem}-to-{total:g}kimg"
    jobs = [(p, s) for s in a.seeds for p in PRECISIONS]
    t0 = time.time()
    train_all(jobs, root, start, data, total, a.parallel, a.threads)
    train_s = time.time() - t0

    real_a, real_b = EG.real_descriptors(data, a.n, 0)
    floor = EG.frechet_distance(real_b, real_a)
    rows, fd = [], {}
    G0 = EG.load_any(str(start))
    start_fd = EG.frechet_distance(EG.describe(EG.sample(G0, a.n), "start"), real_a) - floor
    for prec, seed in jobs:
        run = root / f"{prec}-s{seed}"
        G = EG.load_any(str(run / "checkpoint.pt"))
        fd[(prec, seed)] = EG.frechet_distance(EG.describe(EG.sample(G, a.n), f"{prec}-s{seed}"), real_a) - floor
        rows.append({"precision": prec, "seed": seed, "kimg": images_seen(run) / 1000,
                     "fd_minus_floor": fd[(prec, seed)], "images_per_s": speed(run)})
    verdict = decide(fd, a.seeds)
    print(f"\nfrom {start.name} ({k0:g} kimg, FD - floor {start_fd:.4f}) + {a.kimg:g} kimg per run; "
          f"{a.threads} thread(s) per run, {a.parallel} runs at a time; n = {a.n}, floor {floor:.4f}")
    print(f"{'precision':10s} {'seed':>4s} {'FD - floor':>10s} {'img/s':>7s}")
    for r in rows:
        print(f"{r['precision']:10s} {r['seed']:4d} {r['fd_minus_floor']:10.4f} {r['images_per_s']:7.2f}")
    for prec in PRECISIONS:
        v = [r["fd_minus_floor"] for r in rows if r["precision"] == prec]
        s = [r["images_per_s"] for r in rows if r["precision"] == prec]
        print(f"{prec:10s} mean FD - floor {np.mean(v):.4f}, mean {np.mean(s):.2f} img/s")
    print(f"bf16 - float32 per seed: {', '.join(f'{d:+.4f}' for d in verdict['paired_diff'])}; "
          f"float32 seed spread {verdict['float32_seed_spread']:.4f}\n-> {verdict['verdict']}")
    result = {"start": str(start), "start_kimg": k0, "start_fd_minus_floor": start_fd, "kimg_per_run": a.kimg,
              "n": a.n, "floor": floor, "feature_space": EG.identity.NAME, "threads_per_run": a.threads,
              "parallel": a.parallel, "cpu": P.describe("float32", "cpu").rsplit(", ", 1)[0], "train_seconds": round(train_s, 1),
              "rows": rows, "decision": {k: v for k, v in verdict.items()}}
    atomic_write_text(Path(a.out), json.dumps(result, indent=2) + "\n")
    print(f"written {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
