"""The paper tier's path, rehearsed on a CPU with random weights (issue 34): ``make rehearse``.

A real user runs::

    i2s weights fetch stylegan1-ffhq-1024          # Google Drive: confirmation page, then the file
    i2s weights fetch vgg16-imagenet
    make reproduce PROFILE=paper MODEL=ffhq DEVICE=cuda
    i2s edit photo.jpg --align

This script runs the same commands against a loopback server that answers like Google Drive (the
virus-scan confirmation page, then the file; the quota-exceeded page), serving a pickle with the
exact layout of NVIDIA's FFHQ-1024 ``Gs`` and random values (``tests/fixtures_tf.py``) and a
torchvision-layout VGG-16 file with random values. The URLs come from ``$I2S_WEIGHTS_URL_<NAME>``;
the cache is a fresh ``$I2S_HOME`` under ``--work``. Then: conversion (through ``auto``), the seven
notebooks at the paper profile with the steps cut to ``--steps`` per embedding, an ``i2s edit`` of
one evaluation photo, and checks that every promised figure and CSV is there and names the paper
tier. The REPORT is written again with a banner saying that it is a rehearsal with random weights,
whose verdicts mean nothing.

    python scripts/rehearse.py                       # all seven notebooks, 2 images a class; results/rehearsal/
    python scripts/rehearse.py --per-class 0         # the whole evaluation set (hours on a 2-core CPU)
    python scripts/rehearse.py --only 06 --out /tmp/r   # the fast variant (tests/test_rehearsal.py)

What the rehearsal cannot show: the real weights (their download, their numbers) and a GPU.
torchvision's VGG-16 has a confirmed sha256 prefix that no random file can carry: the rehearsal
checks that ``i2s weights fetch vgg16-imagenet`` refuses the served file for it, then fetches it
through the same code with that one check dropped from a copy of the registry entry.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the layout-exact pickle writer and the loopback server

#: Google Drive's id of the official FFHQ-1024 pickle (the registry's URL): the server answers to it.
FFHQ_DRIVE_ID = "1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ"
FFHQ_PICKLE = "karras2019stylegan-ffhq-1024x1024.pkl"
VGG_FILE = "vgg16-397923af.pth"
#: The notebooks' results and figures, as ``run_notebooks.py`` names them for this run.
RUN = "paper-vgg16-imagenet"
BANNER = ("**This is a rehearsal with random weights: its numbers and verdicts mean nothing.** "
          "`scripts/rehearse.py` ran the paper tier's path (Google-Drive-like download, conversion, the "
          "paper profile, `i2s edit`) on a CPU with a generator of the official FFHQ-1024 layout and a "
          "VGG-16, both holding random values, and {steps} Adam step(s) per embedding instead of 5000.")


def log(msg: str) -> None:
    print(f"[rehearse] {msg}", flush=True)


# --------------------------------------------------------------------------- the served files


def write_weights(folder: Path, seed: int = 34) -> dict[str, Path]:
    """The two files the server offers: NVIDIA's FFHQ-1024 pickle layout (``G``, ``D`` stand-ins
    and the full ``Gs``) and torchvision's VGG-16 state dict, both with random values."""
    import torch
    from torchvision.models import vgg16

    from fixtures_tf import make_gs_pickle

    folder.mkdir(parents=True, exist_ok=True)
    pkl, vgg = folder / FFHQ_PICKLE, folder / VGG_FILE
    if not pkl.is_file():
        make_gs_pickle(pkl.with_suffix(".tmp"), 1024, seed=seed)  # fmap_base 8192, 512 wide: the official Gs
        os.replace(pkl.with_suffix(".tmp"), pkl)
    if not vgg.is_file():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            state = vgg16(weights=None).state_dict()  # torchvision's layout and init
        torch.save(state, vgg.with_suffix(".tmp"))
        os.replace(vgg.with_suffix(".tmp"), vgg)
    return {"ffhq": pkl, "vgg": vgg}


def small_eval_set(folder: Path, per_class: int) -> Path:
    """A copy of the evaluation set with ``per_class`` images of each class (links), two
    expression pairs and two style images: the fast variant's ``$I2S_EVAL_DIR``."""
    from i2s.data import eval_dir

    src = eval_dir()
    if folder.exists():
        shutil.rmtree(folder)
    for sub in sorted(p for p in src.iterdir() if p.is_dir()):
        keep = {"expressions": 4, "style": 2}.get(sub.name, per_class)
        (folder / sub.name).mkdir(parents=True)
        for f in sorted(p for p in sub.iterdir() if p.is_file())[:keep]:
            (folder / sub.name / f.name).symlink_to(f.resolve())
    for f in src.iterdir():
        if f.is_file():
            (folder / f.name).symlink_to(f.resolve())
    return folder


# --------------------------------------------------------------------------- steps


class Rehearsal:
    """The stages, each a command a user would run, timed; their results go to ``summary``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.work = args, args.work.resolve()
        self.home = self.work / "home"
        self.stages: list[dict] = []
        self.checks: list[tuple[str, bool, str]] = []
        self.load_start = os.getloadavg()[0]
        self.env = {**os.environ, "I2S_HOME": str(self.home), "TORCH_HOME": str(self.work / "torch"),
                    "PYTHONUNBUFFERED": "1"}
        self.env.pop("I2S_OFFLINE", None)

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        self.checks.append((what, bool(ok), detail))
        log(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}")
        return ok

    def run(self, stage: str, cmd: list[str], env: dict | None = None, expect: int = 0,
            timeout: float = 3 * 3600) -> subprocess.CompletedProcess:
        """Run ``cmd`` (a user's command) as stage ``stage``; its output is echoed and kept."""
        log(f"{stage}: {' '.join(cmd)}")
        t = time.perf_counter()
        (self.work / "logs").mkdir(parents=True, exist_ok=True)
        with open(self.work / "logs" / f"{stage}.log", "w") as out, open(self.work / "logs" / f"{stage}.err", "w+") as err:
            out.write(f"$ {' '.join(cmd)}\n")
            out.flush()
            try:  # stdout to its log as it comes (tail -f runs/rehearsal/logs/*.log), stderr kept to read
                code = subprocess.run(cmd, cwd=REPO, env=env or self.env, stdout=out, stderr=err, text=True,
                                      timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                code = -9
            err.seek(0)
            p = subprocess.CompletedProcess(cmd, code, (self.work / "logs" / f"{stage}.log").read_text(), err.read())
        secs = time.perf_counter() - t
        self.stages.append({"stage": stage, "seconds": round(secs, 1), "exit": p.returncode})
        tail = (p.stdout + p.stderr).strip().splitlines()[-3:]
        self.check(f"{stage} exits {expect}", p.returncode == expect,
                   f"exit {p.returncode} after {secs:.0f} s" + ("" if p.returncode == expect else "; " + " | ".join(tail)))
        return p

    def timed(self, stage: str, fn, *a, **kw):
        t = time.perf_counter()
        out = fn(*a, **kw)
        self.stages.append({"stage": stage, "seconds": round(time.perf_counter() - t, 1), "exit": 0})
        return out

    # ------------------------------------------------------------------ the path

    def weights(self, server) -> None:
        """``i2s weights fetch`` of both files from the Drive-like server (and the quota page)."""
        i2s = [sys.executable, "-m", "i2s.cli"]
        files = self.timed("write random weights", write_weights, self.work / "served")
        quota = server.drive("QUOTA-" + FFHQ_DRIVE_ID, files["ffhq"], FFHQ_PICKLE, quota=True)
        env = {**self.env, "I2S_WEIGHTS_URL_STYLEGAN1_FFHQ_1024": quota}
        p = self.run("fetch ffhq (quota page)", i2s + ["weights", "fetch", "stylegan1-ffhq-1024", "--quiet"], env, expect=1)
        self.check("the quota page is named, nothing installed", "quota page" in p.stderr
                   and not (self.home / "weights" / FFHQ_PICKLE).exists())
        url = server.drive(FFHQ_DRIVE_ID, files["ffhq"], FFHQ_PICKLE)
        env = {**self.env, "I2S_WEIGHTS_URL_STYLEGAN1_FFHQ_1024": url}
        self.run("fetch ffhq", i2s + ["weights", "fetch", "stylegan1-ffhq-1024", "--quiet"], env)
        paths = [r["path"].split("?")[0] for r in server.state["requests"]]
        self.check("the confirmation page was answered, then the file came", paths[-2:] == ["/uc", "/download"],
                   " -> ".join(paths))
        vgg_url = server.serve("/models/" + VGG_FILE, files["vgg"])
        env = {**self.env, "I2S_WEIGHTS_URL_VGG16_IMAGENET": vgg_url}
        p = self.run("fetch vgg16 (refused)", i2s + ["weights", "fetch", "vgg16-imagenet", "--quiet"], env, expect=1)
        self.check("a random VGG-16 fails torchvision's confirmed sha256 prefix", "397923af" in p.stderr)
        self.timed("fetch vgg16 (prefix check dropped)", self._fetch_vgg_without_prefix, vgg_url)
        self.check("the random VGG-16 is cached", (self.home / "weights" / VGG_FILE).is_file())

    def _fetch_vgg_without_prefix(self, url: str) -> None:
        """``i2s.weights.fetch`` of the served VGG-16 with a registry entry that lacks the sha256
        (prefix) no random file can match; every other check of a download runs."""
        os.environ.update(I2S_HOME=str(self.home), TORCH_HOME=str(self.work / "torch"))
        os.environ.pop("I2S_OFFLINE", None)  # the server is on this machine
        from i2s.weights import REGISTRY, fetch

        entry = REGISTRY["vgg16-imagenet"]
        REGISTRY["vgg16-imagenet"] = dataclasses.replace(entry, sha256=None, sha256_prefix=None)
        try:
            fetch("vgg16-imagenet", urls=[url], progress=False)
        finally:
            REGISTRY["vgg16-imagenet"] = entry

    def convert(self) -> None:
        """The ``auto`` selection picks the fetched FFHQ pickle and converts it once."""
        code = ("from i2s.models import load_generator; from i2s.loss import perceptual_net_name; "
                "G = load_generator('auto'); print('tier', G.info['tier'], G.resolution, G.num_layers); "
                "print('perceptual', perceptual_net_name('auto'))")
        p = self.run("convert (auto)", [sys.executable, "-c", code])
        self.check("auto picks the paper tier at 1024 px with 18 style layers", "tier paper 1024 18" in p.stdout)
        self.check("auto picks the ImageNet VGG-16 file", "perceptual vgg16-imagenet" in p.stdout)
        self.check("converted once into the cache", any((self.home / "converted").glob("stylegan1-ffhq-1024-*.pt")))

    def notebooks(self) -> Path:
        a = self.args
        cmd = [sys.executable, "scripts/run_notebooks.py", "--profile", "paper", "--model", "ffhq", "--steps",
               str(a.steps), "--device", "cpu", "--jobs", str(a.jobs), "--figures", str(self.work / "figures"),
               "--results", str(self.work / "results")] + (["--only", a.only] if a.only else ["--check"])
        self.run("notebooks (paper profile)", cmd)
        return self.work / "results" / "ffhq" / RUN

    def edit(self) -> None:
        from i2s.data import eval_images

        photo = eval_images("faces")[0].path
        out = self.work / "edit"
        self.run("i2s edit", [sys.executable, "-m", "i2s.cli", "edit", str(photo), "--align", "--steps",
                              str(self.args.steps), "--out", str(out)])  # the generator: auto
        pngs = sorted(out.glob(f"{photo.stem}_sefa0_*.png"))
        latents = sorted(out.glob(f"{photo.stem}_sefa0_*.latent.pt"))
        self.check("i2s edit wrote grid.png, 5 edits and their latents", (out / "grid.png").is_file()
                   and len(pngs) == 5 and len(latents) == 5, f"{len(pngs)} PNGs, {len(latents)} latents")
        if latents:
            from i2s.io import load_latent

            meta = load_latent(latents[0])[1]
            self.check("its latents name the generator and the paper tier", meta.get("model") == "stylegan1-ffhq-1024"
                       and meta.get("tier") == "paper", str(meta)[:160])

    # ------------------------------------------------------------------ checks and summary

    def outputs(self, results: Path) -> list[str]:
        """Every promised figure and CSV is there and every table names the paper tier."""
        from i2s.report import EXPECTED

        figures = self.work / "figures" / "ffhq" / RUN
        only = self.args.only.split(",") if self.args.only else None
        names = []
        for nb, exp in EXPECTED.items():
            if only and nb[:2] not in only:
                continue
            names += [f"figures/{f}.png" for f in exp["figures"]] + [f"results/{t}.csv" for t in exp["tables"]]
        missing = [n for n in names if not ((figures if n.startswith("figures/") else results) / n.split("/", 1)[1]).is_file()]
        self.check(f"all {len(names)} promised figures and CSVs written", not missing, ", ".join(missing[:8]))
        untagged = []
        for f in sorted(results.glob("*.csv")):
            if f.name == "run_times.csv":
                continue
            with open(f, newline="") as fh:
                rows = list(csv.DictReader(fh))
            if not rows or any(r.get("tier") != "paper" or r.get("model") != "stylegan1-ffhq-1024" for r in rows):
                untagged.append(f.name)
        for f in sorted(results.glob("*.json")):
            d = json.loads(f.read_text())
            if d.get("tier") != "paper":
                untagged.append(f.name)
        self.check("every CSV row and JSON names model stylegan1-ffhq-1024, tier paper", not untagged,
                   ", ".join(untagged[:8]))
        cross = results / "crossover_measures.csv"
        if cross.is_file():  # §4.2 at 1024 px: content for the first 9 of the 18 style layers
            with open(cross, newline="") as fh:
                splits = {(r["split_layer"], r["default_split"], r["content_layers"]) for r in csv.DictReader(fh)}
            self.check("the crossover's default split is 9 of 18 layers", ("9", "True", "0-8 of 18") in splits,
                       str(sorted(splits)))
        resize = results / "resize_trick.csv"
        if not only or "07" in only:  # Fig. 12 exists above 256 px only: here it must
            self.check("the resize trick (Fig. 12) compared 256 px with 1024 px", resize.is_file()
                       and "full 1024" in resize.read_text())
        return names

    def summary(self, results: Path, names: list[str], t_all: float) -> None:
        """REPORT.md with the banner, run times, stage times and the checks, into ``--out``."""
        from i2s.io import atomic_write_text, read_csv_rows, write_csv
        from i2s.report import write_report

        out = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        banner = BANNER.format(steps=self.args.steps)
        if results.is_dir():
            try:
                text = write_report(results, title_note="\n\n" + banner).read_text()
            except Exception as e:  # noqa: BLE001 - a failed REPORT is a failed check, the summary is still written
                text = ""
                self.check("the REPORT is written", False, f"{type(e).__name__}: {e}")
            if text:
                self.check("the REPORT says it is a rehearsal and names the paper tier",
                           "rehearsal with random weights" in text and "paper tier" in text)
                atomic_write_text(out / "REPORT.md", text)
            if (results / "run_times.csv").is_file():
                write_csv(out / "run_times.csv", read_csv_rows(results / "run_times.csv"))
        write_csv(out / "stages.csv", self.stages)
        ok = all(c[1] for c in self.checks)
        import resource

        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        lines = [f"# Rehearsal of the paper tier ({'passed' if ok else 'FAILED'})", "", banner, "",
                 f"Machine: {_machine()}; {self.args.jobs} notebook(s) side by side, {self.args.per_class or 'all'} "
                 f"evaluation image(s) per class; {time.strftime('%Y-%m-%d')}.", "",
                 f"Wall time {t_all / 60:.1f} min; CPU time of all its processes {cpu / 60:.1f} min (so on "
                 f"{os.cpu_count()} otherwise idle cores at least {cpu / 60 / (os.cpu_count() or 1):.0f} min of wall "
                 f"time); load average {self.load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
                 "(other jobs shared the cores).", "", "## Stages", "", "| stage | seconds | exit |", "|---|---|---|"]
        lines += [f"| {s['stage']} | {s['seconds']:.0f} | {s['exit']} |" for s in self.stages]
        lines += ["", "## Checks", ""] + [f"- {'ok' if c[1] else '**FAILED**'}: {c[0]}{' (' + c[2] + ')' if c[2] else ''}"
                                          for c in self.checks]
        lines += ["", f"## Outputs checked ({len(names)})", "", ", ".join(f"`{n}`" for n in names), "",
                  "Never run here: the real weights (their download from Google Drive, their numbers) and a GPU "
                  "(`scripts/gpu_check.sh` is the device script).", ""]
        atomic_write_text(out / "REHEARSAL.md", "\n".join(lines))
        log(f"{'passed' if ok else 'FAILED'} in {t_all / 60:.1f} min; summary in {out / 'REHEARSAL.md'}")


def _machine() -> str:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} logical CPUs"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1, help="Adam steps per embedding (the paper: 5000)")
    ap.add_argument("--only", default="", help="notebook number prefixes, e.g. 01,06 (default: all seven)")
    ap.add_argument("--per-class", type=int, default=2,
                    help="evaluation images per class (0: the whole set of 5; at least 2: the pairwise table needs "
                         "two of a class)")
    ap.add_argument("--jobs", type=int, default=2, help="notebooks side by side (run_notebooks.py --jobs)")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "rehearsal",
                    help="the rehearsal's cache, served files, figures, logs (git-ignored); emptied first")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "rehearsal",
                    help="REPORT.md, run_times.csv, stages.csv, REHEARSAL.md")
    ap.add_argument("--keep-served", action="store_true", help="reuse the served files of an earlier run")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    served = args.work / "served"
    for sub in ("home", "torch", "figures", "results", "edit", "logs", "eval"):
        shutil.rmtree(args.work / sub, ignore_errors=True)
    if not args.keep_served:
        shutil.rmtree(served, ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    r = Rehearsal(args)
    if args.per_class:
        r.env["I2S_EVAL_DIR"] = os.environ["I2S_EVAL_DIR"] = str(small_eval_set(args.work / "eval", args.per_class))
    from loopback_http import LoopbackServer

    with LoopbackServer() as server:
        r.weights(server)
    r.convert()
    results = r.notebooks()
    r.edit()
    names = r.outputs(results)
    r.summary(results, names, time.perf_counter() - t0)
    return 0 if all(c[1] for c in r.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
