"""The main job: execute notebooks/01…07 with papermill, then write REPORT.md.

    python scripts/run_notebooks.py --profile quick --model auto [--only 01,06] [--steps N] [--check] [--skip-done]
                                    [--perceptual efficientnet-lite0] [--jobs 2]

Executed copies go to runs/<profile>/ (git-ignored); figures to figures/<model>/, numbers to
results/<model>/<profile>/: this script passes the committed folders (``--figures``,
``--results``) as the notebooks' ``figures_dir`` / ``results_dir`` parameters. A notebook run by
hand keeps its own defaults and writes under runs/<model>/, so it never overwrites a committed
figure. A failing cell stops that notebook (papermill raises) and the run
reports it and exits non-zero after trying the others. ``--check`` then verifies that every
expected figure and CSV exists. ``--jobs N`` runs N notebooks at a time, the cores shared out
among their kernels (longest first by the last run times; 04-06 after 01, whose embeddings they reuse).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parents[1]

# 04, 05 and 06 embed every evaluation image with the profile's own settings, as 01 does: with
# --jobs they start after 01, so they find its embeddings in the cache instead of repeating them.
AFTER = {"04": "01", "05": "01", "06": "01"}


def run_side_by_side(names: Sequence[str], jobs: int, run: Callable[[str], None],
                     after: dict[str, str] = AFTER) -> None:
    """``run(name)`` for every name, ``jobs`` at a time, in the given order, except that a name
    whose prerequisite (``after``, by its first two characters) is in the list waits until that
    one has finished. A ``run`` that raises counts as finished (its dependants still run)."""
    pending, done = list(names), set()
    prefixes = {n[:2] for n in names}
    cond = threading.Condition()

    def ready(n: str) -> bool:
        need = after.get(n[:2])
        return need is None or need not in prefixes or need in done

    def worker() -> None:
        while True:
            with cond:
                while pending and not any(ready(n) for n in pending):
                    cond.wait()
                if not pending:
                    return
                n = next(n for n in pending if ready(n))
                pending.remove(n)
            try:
                run(n)
            finally:
                with cond:
                    done.add(n[:2])
                    cond.notify_all()

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for f in [pool.submit(worker) for _ in range(max(1, jobs))]:
            f.result()


def longest_first(notebooks: list[Path], *times_csvs: Path, after: dict[str, str] = AFTER) -> list[Path]:
    """The notebooks by their last run time (the first of ``times_csvs`` that exists), longest
    first, so that side by side the long ones do not end up last; unknown ones keep their place.
    A prerequisite (01) goes first of all: its dependants, 04 the longest among them, wait for it."""
    from i2s.io import read_csv_rows

    for csv in times_csvs:
        if csv.is_file():
            secs = {r["notebook"]: float(r["seconds"]) for r in read_csv_rows(csv) if r.get("seconds")}
            notebooks = sorted(notebooks, key=lambda n: -secs.get(n.stem, 0.0))
            break
    first = set(after.values())
    return [n for n in notebooks if n.name[:2] in first] + [n for n in notebooks if n.name[:2] not in first]


def kernel_threads() -> int:
    """torch's thread count in a fresh process with this environment: what the notebook kernels
    run with (this process may have set its own, as the test suite does)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                         capture_output=True, text=True, timeout=120)
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip().isdigit() else 0


def device_name(device: str) -> str:
    """``cpu: AMD EPYC, 2 threads`` or the GPU's name: where the run times were measured."""
    import platform

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = kernel_threads()
    return f"cpu: {cpu}, {threads} threads" if threads else f"cpu: {cpu}"


def notebook_model(arg: str) -> str:
    """What the notebooks get as ``model``: the user's ``--model`` as given (``auto``, a short
    name), or, for a checkpoint file, its absolute path (the kernels run in notebooks/, and a
    checkpoint's short name is not something they can load)."""
    path = Path(arg).expanduser()
    return str(path.resolve()) if path.is_file() else arg


def merge_times(path: Path, times: list[dict]) -> list[dict]:
    """The rows of ``run_times.csv`` after this run: its notebooks' new rows, and the earlier rows
    of notebooks it did not run (a long profile run in parts still lists every notebook once)."""
    from i2s.io import read_csv_rows

    new = {t["notebook"]: t for t in times}
    old = [r for r in read_csv_rows(path) if r.get("notebook") and r["notebook"] not in new]
    return sorted(old + times, key=lambda r: r["notebook"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="quick", choices=["quick", "full", "paper"])
    ap.add_argument("--model", default="auto")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--perceptual", default="auto", help="auto | efficientnet-lite0: the loss's perceptual network; "
                    "folders are named by the network that runs (vgg16-random: <profile>, any other: "
                    "<profile>-<network>)")
    ap.add_argument("--only", default="", help="comma-separated notebook number prefixes, e.g. 01,06")
    ap.add_argument("--figures", type=Path, default=REPO / "figures")
    ap.add_argument("--results", type=Path, default=REPO / "results")
    ap.add_argument("--check", action="store_true", help="fail if an expected figure or CSV is missing")
    ap.add_argument("--jobs", type=int, default=1,
                    help="notebooks run side by side, each kernel with cores/JOBS torch threads (OMP_NUM_THREADS, "
                         "unless set); on 2 cores --jobs 2 is the faster (default: 1)")
    ap.add_argument("--skip-done", action="store_true",
                    help="skip a notebook whose figures and CSVs are all there already: a long profile goes on "
                         "where an earlier run (on this machine or committed from another) stopped")
    args = ap.parse_args(argv)

    import papermill as pm

    from i2s.models import load_generator, short_name
    from i2s.report import EXPECTED

    G = load_generator(args.model, verbose=True)
    model = short_name(G)
    del G
    notebooks = sorted((REPO / "notebooks").glob("0*.ipynb"))
    if args.only:
        notebooks = [n for n in notebooks if n.name[:2] in args.only.split(",")]
    from i2s.experiments import figures_folder, run_folder
    from i2s.loss import perceptual_net_name

    run = run_folder(args.profile, perceptual_net_name(args.perceptual))
    results = args.results / model / run
    figures = figures_folder(args.figures, model, run)
    if args.skip_done:
        done = [n for n in notebooks if n.stem in EXPECTED and all(
            (figures / f"{f}.png").is_file() for f in EXPECTED[n.stem]["figures"]) and all(
            (results / f"{t}.csv").is_file() for t in EXPECTED[n.stem]["tables"])]
        for n in done:
            print(f"[run] {n.name}: outputs already in {results}, skipped (--skip-done)", flush=True)
        notebooks = [n for n in notebooks if n not in done]
    out_dir = REPO / "runs" / run
    out_dir.mkdir(parents=True, exist_ok=True)
    threads_before = os.environ.get("OMP_NUM_THREADS")
    if args.jobs > 1:
        # the kernels inherit this environment: cores shared out, not oversubscribed (restored below)
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.jobs)))
        notebooks = longest_first(notebooks, results / "run_times.csv", REPO / "results" / model / run / "run_times.csv")
    try:
        return _run(args, pm, notebooks, model, run, results, figures, out_dir)
    finally:
        if threads_before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = threads_before


def _run(args, pm, notebooks: list[Path], model: str, run: str, results: Path, figures: Path, out_dir: Path) -> int:
    """Execute ``notebooks`` (``args.jobs`` at a time), write run_times.csv and REPORT.md; the exit code."""
    from i2s.io import write_csv
    from i2s.report import missing_outputs, write_report

    failures, t_all, times = [], time.perf_counter(), []
    device = device_name(args.device) + (f", {args.jobs} notebooks side by side" if args.jobs > 1 else "")
    by_name = {nb.name: nb for nb in notebooks}

    def run_one(name: str) -> None:
        nb, t = by_name[name], time.perf_counter()
        print(f"[run] {nb.name} ...", flush=True)
        try:
            pm.execute_notebook(str(nb), str(out_dir / nb.name), cwd=str(REPO / "notebooks"), progress_bar=False,
                                parameters=dict(model=notebook_model(args.model), profile=args.profile,
                                                steps=args.steps, device=args.device, interactive=False,
                                                perceptual=args.perceptual,
                                                figures_dir=str(args.figures), results_dir=str(args.results)))
            print(f"[run] {nb.name} done in {time.perf_counter() - t:.0f} s", flush=True)
            times.append({"notebook": nb.stem, "seconds": round(time.perf_counter() - t, 1), "steps": args.steps or "profile",
                          "device": device})
        except Exception as e:  # papermill.PapermillExecutionError: a cell failed
            failures.append(nb.name)
            print(f"[run] {nb.name} FAILED after {time.perf_counter() - t:.0f} s: {str(e)[:2000]}", file=sys.stderr, flush=True)

    run_side_by_side(list(by_name), args.jobs, run_one)
    if times:  # one row per notebook: the ones run now replace their old rows, the others keep theirs
        write_csv(results / "run_times.csv", merge_times(results / "run_times.csv", times))
    report = write_report(results)
    print(f"[run] all notebooks: {time.perf_counter() - t_all:.0f} s; report: {report}")
    if args.check and not args.only:
        missing = missing_outputs(figures, results)
        for m in missing:
            print(f"[run] missing: {m}", file=sys.stderr)
        if missing:
            return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
