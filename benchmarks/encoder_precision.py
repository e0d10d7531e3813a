"""Does bf16 autocast cost the encoder's training quality per image seen? (issue 14)

The encoder of :mod:`i2s.encoder` (mini's recipe: half of each batch real photos, image MSE
on them; latent + image MSE on G's samples) is trained from scratch for ``--images`` images
under each precision (float32, bf16 autocast) with each seed of ``--seeds``: the same batches,
the same head initialisation per seed. Each exported encoder is then judged, in float32, on
what it is for, by data it never saw:

* the 200 held-out faces (``data/mini-holdout.txt``): PSNR of G(encoder(photo)) to the photo;
* 256 fresh samples of G (seed 12345): the latent MSE ‖encoder(G(w)) − w‖² per element.

The rule (:func:`train_precision.decide`, on −PSNR): bf16 keeps quality per image seen when
its mean paired PSNR loss is within float32's seed-to-seed spread. Runs live in
``$I2S_HOME/bench/encoder-precision/`` and resume::

    python benchmarks/encoder_precision.py                     # 2 x 2 runs of 3000 images, 2 at a time
    python benchmarks/encoder_precision.py --images 320 --holdout 20   # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from train_precision import PRECISIONS, decide, run_pool  # noqa: E402

from i2s import precision as P  # noqa: E402
from i2s.io import atomic_write_text  # noqa: E402
from i2s.weights.fetch import i2s_home  # noqa: E402

DEFAULT_REAL = Path("~/.cache/i2s/train-data/faces64.npy").expanduser()


def train_arm(run: Path, model: str, real: Path, precision: str, seed: int, images: int) -> None:
    """One arm in this process (threads as set by the caller), resumable; writes ``encoder.pt``."""
    from i2s.encoder import EncoderTrainer, read_checkpoint
    from i2s.models import load_generator

    G = load_generator(model, verbose=False)
    t = EncoderTrainer(G, run, precision=precision, seed=seed, real=np.load(real, mmap_mode="r", allow_pickle=False))
    ck = run / "encoder-checkpoint.pt"
    if ck.is_file():
        t.load_state(read_checkpoint(ck))  # bounded; a torn file is one line naming it
    t.train(images, ckpt_every=500, progress=False)
    atomic_write_text(run / "speed.json", json.dumps({"images": t.images_seen, "wall_time_s": t.wall_time,
                                                      "images_per_s": t.images_seen / max(t.wall_time, 1e-9),
                                                      "precision": P.describe(t.precision, "cpu")}) + "\n")


def done(run: Path, images: int) -> bool:
    f = run / "speed.json"
    return f.is_file() and json.loads(f.read_text())["images"] >= images


@torch.no_grad()
def judge(G, encoder_file: Path, photos: torch.Tensor, n_samples: int = 256) -> dict[str, float]:
    """Held-out PSNR (mean, std over photos) and the latent MSE on fresh samples of G."""
    from i2s.encoder import load_encoder
    from i2s.metrics import psnr

    enc = load_encoder(encoder_file, G)
    ps = torch.cat([psnr(G.synthesis(enc(photos[i:i + 50])), photos[i:i + 50]) for i in range(0, len(photos), 50)])
    z = torch.randn(n_samples, G.z_dim, generator=torch.Generator().manual_seed(12345))
    w = G.mapping(z)
    err = torch.cat([(enc(G.synthesis(w[i:i + 64]).clamp(-1, 1)) - w[i:i + 64]).square().flatten(1).mean(1)
                     for i in range(0, n_samples, 64)])
    return {"holdout_psnr_db": float(ps.mean()), "holdout_psnr_std": float(ps.std()),
            "latent_mse": float(err.mean())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mini")
    ap.add_argument("--real", default=str(DEFAULT_REAL), help="mini's 64-px training photos (.npy)")
    ap.add_argument("--images", type=int, default=3000, help="training images per run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="threads per run")
    ap.add_argument("--holdout", type=int, default=200, help="held-out faces to judge by")
    ap.add_argument("--root", default=None, help="run folders (default $I2S_HOME/bench/encoder-precision)")
    ap.add_argument("--out", default=str(HERE / "results" / "encoder_precision.json"))
    ap.add_argument("--arm", nargs=2, metavar=("PRECISION", "SEED"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    real = Path(a.real).expanduser()
    if not real.is_file():
        raise SystemExit(f"{real}: not found; run python scripts/prepare_mini_data.py")
    root = (Path(a.root).expanduser() if a.root else i2s_home() / "bench" / "encoder-precision") / f"{a.model}-{a.images}"
    if a.arm:
        prec, seed = a.arm[0], int(a.arm[1])
        train_arm(root / f"{prec}-s{seed}", a.model, real, prec, seed, a.images)
        return 0

    jobs = [(p, s) for s in a.seeds for p in PRECISIONS]
    t0 = time.time()
    run_pool([(root / f"{prec}-s{seed}",
               [sys.executable, str(Path(__file__).resolve()), "--model", a.model, "--real", str(real), "--images", str(a.images),
                "--root", str(root.parent), "--arm", prec, str(seed)])
              for prec, seed in jobs if not done(root / f"{prec}-s{seed}", a.images)], a.parallel, a.threads,
             "encoder_precision")
    train_s = time.time() - t0

    from i2s.data import holdout_faces
    from i2s.models import load_generator

    G = load_generator(a.model, verbose=False)
    photos = holdout_faces(a.holdout)
    rows, neg_psnr = [], {}
    for prec, seed in jobs:
        run = root / f"{prec}-s{seed}"
        r = {"precision": prec, "seed": seed, **judge(G, run / "encoder.pt", photos),
             "images_per_s": json.loads((run / "speed.json").read_text())["images_per_s"]}
        neg_psnr[(prec, seed)] = -r["holdout_psnr_db"]
        rows.append(r)
    verdict = decide(neg_psnr, a.seeds)
    print(f"\nencoder for {G.name}, {a.images} training images per run from scratch, {a.threads} thread(s) per run, "
          f"{a.parallel} at a time; judged on {len(photos)} held-out faces and 256 samples of G")
    print(f"{'precision':10s} {'seed':>4s} {'PSNR dB':>8s} {'± std':>6s} {'latent MSE':>10s} {'img/s':>6s}")
    for r in rows:
        print(f"{r['precision']:10s} {r['seed']:4d} {r['holdout_psnr_db']:8.3f} {r['holdout_psnr_std']:6.2f} "
              f"{r['latent_mse']:10.5f} {r['images_per_s']:6.2f}")
    print(f"bf16 - float32 PSNR per seed: {', '.join(f'{-d:+.3f}' for d in verdict['paired_diff'])} dB; "
          f"float32 seed spread {verdict['float32_seed_spread']:.3f} dB\n-> {verdict['verdict']}")
    result = {"model": G.name, "images_per_run": a.images, "holdout": len(photos), "threads_per_run": a.threads,
              "parallel": a.parallel, "cpu": P.describe("float32", "cpu").rsplit(", ", 1)[0],
              "train_seconds": round(train_s, 1), "rows": rows,
              "decision": {**verdict, "measure": "negative held-out PSNR (lower is better)"}}
    atomic_write_text(Path(a.out), json.dumps(result, indent=2) + "\n")
    print(f"written {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
