"""``--bench``: images per second of one training step at each resolution, on random data."""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from .trainer import Trainer

__all__ = ["bench"]


def bench(args: argparse.Namespace, iters: int = 4) -> dict[int, float]:
    """images/s of :meth:`Trainer.training_step` at each resolution (batch as configured),
    on random data: one warm-up step (which carries the R1 pass) then ``iters`` timed
    steps, so 1 in ``r1_interval`` timed steps has R1 when ``iters == r1_interval``."""
    res_list = [r for r in (8, 16, 32, 64, 128, 256) if r <= args.resolution]
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(256, args.resolution, args.resolution, 3), dtype=np.uint8)
    out: dict[int, float] = {}
    for res in res_list:
        a = argparse.Namespace(**vars(args))
        a.schedule, a.out = f"{res}:rest", None
        trainer = Trainer(a, data)
        trainer.training_step()  # warm-up (also the R1 step)
        t0 = time.perf_counter()
        n = 0
        for _ in range(iters):
            before = trainer.state.images_seen
            trainer.training_step()
            n += trainer.state.images_seen - before
        dt = time.perf_counter() - t0
        out[res] = n / dt
        print(f"[bench] {res:4d} px  batch {trainer.batch_size(int(math.log2(res)) - 2):3d}  "
              f"{dt / iters:7.3f} s/iter  {out[res]:8.2f} images/s  ({out[res] * 3600 / 1000:7.1f} kimg/h)", flush=True)
    return out
