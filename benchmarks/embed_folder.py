"""``i2s embed-folder`` throughput: photos per second with 1 and 2 Ray workers on the same photos.

The same photos (the first ``--photos`` evaluation images: faces, then cats, dogs, ...,
centre-cropped) are embedded with the same settings (``--steps`` Adam steps, batches of
``--batch``) three ways, each into a fresh embedding cache so that nothing is reused:

* ``in-process``: :func:`i2s.runner.cached_embed` in this process, one thread, the same batches
  one after the other (what one worker does, without Ray);
* ``1 worker`` and ``2 workers``: :func:`i2s.folder.embed_folder` on one local Ray session with
  2 CPUs (started first, idle during the in-process run), each worker one thread (Ray sets
  ``OMP_NUM_THREADS=1``).

Photos per second count the embedding only (workers ready to the last row written); the one-off
costs are printed beside it: starting the Ray session, and starting the workers (a process
each, importing torch and loading the generator and the perceptual network). The final losses
of the three runs must agree (a batch of N is N independent problems), which the table checks.

    python benchmarks/embed_folder.py                         # mini, 8 photos, 100 steps, batches of 4
    python benchmarks/embed_folder.py --photos 16 --steps 200 --model mini
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

os.environ.setdefault("OMP_NUM_THREADS", "1")  # every process of the run: one thread per worker

import torch  # noqa: E402

from i2s import folder as F  # noqa: E402
from i2s.data import CLASSES, eval_images  # noqa: E402


def photos_folder(n: int, where: Path) -> Path:
    """A folder with links to the first ``n`` evaluation images (classes in the paper's order)."""
    items = [i for cls in CLASSES for i in eval_images((cls,))][:n]
    where.mkdir(parents=True)
    for item in items:
        (where / f"{item.cls}-{item.path.name}").symlink_to(item.path)
    return where


def in_process(folder: Path, job: F.FolderJob, batch: int) -> tuple[float, dict[str, float]]:
    """The worker's own code, here, batch after batch: (seconds, loss per photo)."""
    worker = F.FolderWorker(job, 0)
    if worker.error:
        raise SystemExit(worker.error)
    photos = F.find_images(folder)
    t0 = time.perf_counter()
    losses = {}
    for part in F._batches(photos, batch, 1):
        for r in worker.embed(part):
            losses[r["row"]["path"]] = float(r["row"]["loss"])
    return time.perf_counter() - t0, losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mini")
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--workers", default="1,2", help="worker counts to run, each on a fresh local session")
    ap.add_argument("--out", default=str(HERE / "results" / "embed_folder.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    import ray

    from i2s.io import atomic_write_text, read_csv_rows

    scratch = Path(tempfile.mkdtemp(prefix="i2s-bench-"))
    try:
        folder = photos_folder(a.photos, scratch / "photos")
        n = len(F.find_images(folder))

        def job(tag: str) -> F.FolderJob:
            return F.FolderJob(model=a.model, perceptual="random", steps=a.steps, device="cpu",
                               cache_dir=str(scratch / f"cache-{tag}"), checkpoint_every=0)

        counts = [int(x) for x in a.workers.split(",")]
        load_start = os.getloadavg()
        t0 = time.perf_counter()
        with F.local_ray(max(counts)):  # one session for every run (starting one is the slow part here)
            started = time.perf_counter() - t0
            seconds, ref_losses = in_process(folder, job("in-process"), a.batch)
            rows = [{"how": "in-process (no Ray), 1 thread", "workers": 1, "photos": n, "seconds": seconds,
                     "photos_per_s": n / seconds, "session_start_s": 0.0, "workers_ready_s": 0.0,
                     "max_loss_rel_diff": 0.0}]
            cpu = F.FolderWorker(job("probe"), 0).device_line
            for w in counts:
                t1 = time.perf_counter()
                run = F.embed_folder(folder, scratch / f"out-{w}", job(f"ray{w}"), workers=w, batch=a.batch,
                                     progress=False, say=lambda s: None)
                ready = time.perf_counter() - t1 - run.seconds
                assert run.embedded == n, f"{run.failed} photos failed: {run.failures[:1]}"
                table = {r["path"]: float(r["loss"]) for r in read_csv_rows(run.table)}
                diff = max(abs(table[p] - ref_losses[p]) / ref_losses[p] for p in ref_losses)
                rows.append({"how": f"Ray, {w} worker{'s' * (w != 1)}", "workers": w, "photos": n,
                             "seconds": run.seconds, "photos_per_s": n / run.seconds, "session_start_s": started,
                             "workers_ready_s": ready, "max_loss_rel_diff": diff})
        load = os.getloadavg()
        print(f"i2s embed-folder throughput: {a.model}, {n} photos, {a.steps} steps, batches of {a.batch}, "
              f"vgg16-random; {cpu}; {os.cpu_count()} CPUs, load average {load_start[0]:.1f} at the start, "
              f"{load[0]:.1f} at the end")
        print(f"{'how':34} {'photos/s':>9} {'s/photo':>8} {'embed s':>8} {'session s':>10} {'workers s':>10} "
              f"{'loss rel diff':>14}")
        for r in rows:
            print(f"{r['how']:34} {r['photos_per_s']:9.3f} {1 / r['photos_per_s']:8.2f} {r['seconds']:8.1f} "
                  f"{r['session_start_s']:10.1f} {r['workers_ready_s']:10.1f} {r['max_loss_rel_diff']:14.1e}")
        base = next(r for r in rows if r["how"].startswith("Ray, 1"))
        for r in rows:
            if r["workers"] > 1 and r["how"].startswith("Ray"):
                print(f"{r['workers']} workers / 1 worker: {r['photos_per_s'] / base['photos_per_s']:.2f}x")
        result = {"date": datetime.date.today().isoformat(), "cpu": cpu, "cpus": os.cpu_count(),
                  "processor": platform.processor() or platform.machine(), "load_average_start": load_start,
                  "load_average_end": load,
                  "model": a.model, "photos": n, "steps": a.steps, "batch": a.batch, "perceptual": "vgg16-random",
                  "ray": ray.__version__, "rows": rows}
        atomic_write_text(Path(a.out), json.dumps(result, indent=2) + "\n")
        print(f"wrote {a.out}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
