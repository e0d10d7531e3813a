#!/usr/bin/env python
"""Build the training set of the mini StyleGAN: FFHQ-aligned 64-px faces.

Input: the 28,622 128-px face photos of ``shared/data/faces`` (``images/`` + ``manifest.csv``;
CelebA 000000-005888 with loose framing, UTKFace 005889-028621 with tight framing).

Every photo is aligned with the FFHQ recipe (``i2s.align``) at ``--zoom`` (default 0.7: the FFHQ
quad shrunk to 70 %, so it fits these tight chips with little padding, and the eye distance comes
out near 0.357 of the width, close to UTKFace's own framing) to ``--size`` px (64). This is the same
call the kit uses to embed a face into the mini model, ``align(img, size=64, zoom=0.7)``, so training
and embedding framing agree, and both subsets get the same framing.

Photos where dlib finds no face, or more than one, are not dropped: they are aligned with the mean
quad of their subset (the mean, in coordinates normalised by the image size, of the quads of that
subset's single-face detections), and counted in the meta file.

A fixed hold-out of ``--holdout`` (200) photos, stratified proportionally by subset, is never
trained on. It is chosen by sorting each subset's file names by ``sha256(f"{seed}:{name}")`` and
taking the first k, so it depends only on the seed and the file names (not on numpy's RNG). The
names go to ``data/mini-holdout.txt`` in the repository (names only, one per line), the aligned
images to ``<out>/holdout64.npy``.

Outputs in ``--out`` (default ``~/.cache/i2s/train-data/``):
  faces64.npy          uint8 [N, 64, 64, 3], C-contiguous (``np.load(..., mmap_mode="r")`` works);
                       the training photos in file-name order, hold-out excluded
  holdout64.npy        uint8 [200, 64, 64, 3], in the order of data/mini-holdout.txt
  faces64-index.csv    split,row,file,subset,status for every photo (status: detected / no_face /
                       multi_face; the last two were aligned with the subset's mean quad)
  faces64-meta.json    counts, framing, source, fallbacks, per-subset counts, time taken
                       (``--check`` adds the measured eye positions)

``--check`` re-detects landmarks (dlib, upsample 2) on 200 random aligned outputs per subset, prints
the mean eye positions next to ``canonical_eyes(64, zoom)``, checks the hold-out, and writes 8x8
contact sheets ``contact.png`` (training) and ``holdout-contact.png``.

Usage:
  python scripts/prepare_mini_data.py                      # full preparation
  python scripts/prepare_mini_data.py --limit 500 --out /tmp/t500   # timing run on 500 photos
  python scripts/prepare_mini_data.py --check
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from i2s import align as A  # noqa: E402

SHARED = Path(os.environ.get("I2S_SHARED") or REPO.parent / "shared")
DEFAULT_SRC = SHARED / "data" / "faces"
DEFAULT_OUT = Path("~/.cache/i2s/train-data").expanduser()
HOLDOUT_LIST = REPO / "data" / "mini-holdout.txt"
SUBSETS = ("celeba", "utkface")


# --------------------------------------------------------------------------------------------
# Manifest and hold-out
# --------------------------------------------------------------------------------------------


def read_manifest(src: Path) -> list[tuple[str, str]]:
    """[(file, subset)] sorted by file name; subset is 'celeba' or 'utkface'."""
    rows = []
    with open(src / "manifest.csv", newline="") as f:
        for r in csv.DictReader(f):
            ds = r["dataset"].lower()
            subset = "celeba" if ds.startswith("celeba") else "utkface" if ds.startswith("utkface") else None
            if subset is None:
                raise ValueError(f"{src / 'manifest.csv'}: unknown dataset {r['dataset']!r} for {r['file']}")
            rows.append((r["file"], subset))
    return sorted(rows)


def holdout_quota(counts: dict[str, int], n: int) -> dict[str, int]:
    """Proportional allocation of n over the subsets (largest remainder)."""
    total = sum(counts.values())
    exact = {s: n * c / total for s, c in counts.items()}
    quota = {s: int(np.floor(v)) for s, v in exact.items()}
    for s in sorted(exact, key=lambda s: exact[s] - quota[s], reverse=True)[: n - sum(quota.values())]:
        quota[s] += 1
    return quota


def select_holdout(rows: list[tuple[str, str]], n: int, seed: int) -> list[str]:
    """Seeded, stratified hold-out: per subset, the k names with the smallest sha256(f"{seed}:{name}")."""
    by_subset: dict[str, list[str]] = {}
    for f, s in rows:
        by_subset.setdefault(s, []).append(f)
    quota = holdout_quota({s: len(v) for s, v in by_subset.items()}, n)
    chosen = []
    for s, names in by_subset.items():
        key = sorted(names, key=lambda f: hashlib.sha256(f"{seed}:{f}".encode()).hexdigest())
        chosen += key[: quota[s]]
    return sorted(chosen)


# --------------------------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------------------------

_CFG: dict = {}


def _init_worker(cfg: dict) -> None:
    _CFG.update(cfg)
    A.get_detector()
    A.get_predictor()


def _detect_and_align(i: int):
    """(i, status, normalised quad or None, aligned uint8 array or None)."""
    path = Path(_CFG["images"]) / _CFG["files"][i]
    img = A.load_rgb(path)
    lms = A.detect_landmarks(img, upsample=1)
    if len(lms) != 1:
        return i, ("no_face" if not lms else "multi_face"), None, None
    quad, qsize = A.ffhq_quad(lms[0], zoom=_CFG["zoom"])
    out = A.align_quad(img, quad, qsize, _CFG["size"])
    wh = np.array(img.size, np.float64)
    return i, "detected", quad / wh, np.asarray(out, np.uint8)


def _align_with_quad(args):
    i, quad_norm = args
    img = A.load_rgb(Path(_CFG["images"]) / _CFG["files"][i])
    quad = np.asarray(quad_norm) * np.array(img.size, np.float64)
    return i, np.asarray(A.align_quad(img, quad, None, _CFG["size"]), np.uint8)


def _tqdm_kwargs() -> dict:
    return {} if sys.stderr.isatty() else {"mininterval": 15.0}


# --------------------------------------------------------------------------------------------
# Prepare
# --------------------------------------------------------------------------------------------


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, np.ascontiguousarray(arr, dtype=np.uint8))
    os.replace(tmp, path)


def prepare(args) -> None:
    t0 = time.time()
    src, out = Path(args.src), Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(src)
    holdout = select_holdout(rows, args.holdout, args.seed)  # always from the full list
    if args.limit:
        rng = np.random.default_rng(args.seed)
        keep = set(rng.choice(len(rows), min(args.limit, len(rows)), replace=False).tolist())
        rows = [r for k, r in enumerate(rows) if k in keep]
    files = [f for f, _ in rows]
    subsets = [s for _, s in rows]
    n = len(files)
    print(f"{n} photos from {src} -> {out} (size {args.size}, zoom {args.zoom}, {args.workers} workers)", flush=True)

    cfg = {"images": str(src / "images"), "files": files, "zoom": args.zoom, "size": args.size}
    faces = np.zeros((n, args.size, args.size, 3), np.uint8)
    status = [""] * n
    quads = np.full((n, 4, 2), np.nan)
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers, initializer=_init_worker, initargs=(cfg,)) as pool:
        t1 = time.time()
        it = pool.imap_unordered(_detect_and_align, range(n), chunksize=32)
        for i, st, q, img in tqdm(it, total=n, desc="detect+align", unit="img", **_tqdm_kwargs()):
            status[i] = st
            if img is not None:
                faces[i] = img
                quads[i] = q
        t_detect = time.time() - t1

        # Fallback: the subset's mean quad (normalised coordinates) for no / several faces.
        mean_quad = {}
        for s in SUBSETS:
            ok = [i for i in range(n) if subsets[i] == s and status[i] == "detected"]
            if ok:
                mean_quad[s] = quads[ok].mean(0)
        todo = [(i, mean_quad[subsets[i]]) for i in range(n) if status[i] != "detected"]
        missing = {subsets[i] for i, _ in todo} - set(mean_quad)
        if missing:
            raise RuntimeError(f"no successful detection in subset(s) {sorted(missing)}; cannot build a mean quad")
        t2 = time.time()
        for i, img in tqdm(pool.imap_unordered(_align_with_quad, todo, chunksize=8), total=len(todo),
                           desc="fallback", unit="img", **_tqdm_kwargs()):
            faces[i] = img
        t_fallback = time.time() - t2

    hold = set(holdout)
    train_idx = [i for i in range(n) if files[i] not in hold]
    hold_idx = [i for i in range(n) if files[i] in hold]  # sorted by name, as the list
    _save_npy(out / "faces64.npy", faces[train_idx])
    _save_npy(out / "holdout64.npy", faces[hold_idx])
    with open(out / "faces64-index.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["split", "row", "file", "subset", "status"])
        for split, idx in (("train", train_idx), ("holdout", hold_idx)):
            for row, i in enumerate(idx):
                w.writerow([split, row, files[i], subsets[i], status[i]])
    if not args.limit:
        HOLDOUT_LIST.parent.mkdir(parents=True, exist_ok=True)
        old = HOLDOUT_LIST.read_text().split() if HOLDOUT_LIST.exists() else None
        if old is not None and old != holdout:
            print(f"WARNING: {HOLDOUT_LIST} differed from the seed-{args.seed} selection; rewritten", flush=True)
        HOLDOUT_LIST.write_text("".join(f + "\n" for f in holdout))

    per_subset = {}
    for s in SUBSETS:
        idx = [i for i in range(n) if subsets[i] == s]
        c = Counter(status[i] for i in idx)
        per_subset[s] = {
            "total": len(idx),
            "train": sum(files[i] not in hold for i in idx),
            "holdout": sum(files[i] in hold for i in idx),
            "detected": c["detected"],
            "no_face": c["no_face"],
            "multi_face": c["multi_face"],
            "fallback_mean_quad": c["no_face"] + c["multi_face"],
            "fallback_in_train": sum(status[i] != "detected" and files[i] not in hold for i in idx),
            "mean_quad_normalised": np.round(mean_quad[s], 5).tolist() if s in mean_quad else None,
        }
    elapsed = time.time() - t0
    meta = {
        "count": len(train_idx),
        "holdout_count": len(hold_idx),
        "shape": [len(train_idx), args.size, args.size, 3],
        "dtype": "uint8",
        "order": "file name order of manifest.csv, hold-out removed (see faces64-index.csv)",
        "framing": {
            "recipe": "FFHQ alignment (NVlabs/ffhq-dataset recreate_aligned_images), i2s.align",
            "call": f"i2s.align.align(img, size={args.size}, zoom={args.zoom})",
            "zoom": args.zoom,
            "size": args.size,
            "transform_size": A.default_transform_size(args.size),
            "landmarks": "dlib HOG frontal detector (upsample 1) + 68-point shape predictor",
            "canonical_eyes_px": A.canonical_eyes(args.size, args.zoom),
            "same_for_all_subsets": True,
        },
        "source": {
            "images": str(src / "images"),
            "manifest": str(src / "manifest.csv"),
            "photos": n,
            "limit": args.limit,
        },
        "detection_failures": {
            "no_face": sum(st == "no_face" for st in status),
            "multi_face": sum(st == "multi_face" for st in status),
            "handling": "not dropped: aligned with the mean quad of their subset (mean over that subset's "
            "single-face detections, in coordinates normalised by the image size); listed in "
            "faces64-index.csv with status no_face / multi_face",
        },
        "per_subset": per_subset,
        "holdout": {
            "file": str(HOLDOUT_LIST.relative_to(REPO)),
            "n": args.holdout,
            "seed": args.seed,
            "method": "stratified proportionally by subset (largest remainder); per subset the names with "
            "the smallest sha256(f'{seed}:{name}')",
            "per_subset": {s: per_subset[s]["holdout"] for s in SUBSETS},
        },
        "time_s": {"total": round(elapsed, 1), "detect_align": round(t_detect, 1), "fallback": round(t_fallback, 1),
                   "per_image_ms_wall": round(1000 * elapsed / max(n, 1), 2)},
        "workers": args.workers,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "pillow": Image.__version__, "dlib": _dlib_version()},
        "landmark_model": str(A.landmark_model_path()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    meta_path = out / "faces64-meta.json"
    if meta_path.exists():  # keep an earlier --check result only if it matches these outputs
        meta.pop("check", None)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps({k: meta[k] for k in ("count", "holdout_count", "detection_failures", "time_s")}, indent=2))
    for s in SUBSETS:
        p = per_subset[s]
        print(f"  {s}: total {p['total']}, train {p['train']}, holdout {p['holdout']}, "
              f"fallbacks {p['fallback_mean_quad']} (no face {p['no_face']}, several {p['multi_face']})")
    print(f"done in {elapsed:.1f} s ({1000 * elapsed / max(n, 1):.1f} ms/photo wall)", flush=True)


def _dlib_version() -> str:
    try:
        import dlib

        return dlib.__version__
    except ImportError:
        return "missing"


# --------------------------------------------------------------------------------------------
# Check
# --------------------------------------------------------------------------------------------


def _contact(arr: np.ndarray, path: Path, seed: int, grid: int = 8, scale: int = 2) -> None:
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(arr), min(grid * grid, len(arr)), replace=False)
    s = arr.shape[1]
    sheet = np.zeros((grid * s, grid * s, 3), np.uint8)
    for k, i in enumerate(pick):
        r, c = divmod(k, grid)
        sheet[r * s:(r + 1) * s, c * s:(c + 1) * s] = arr[i]
    img = Image.fromarray(sheet)
    img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST).save(path)


def check(args) -> None:
    out = Path(args.out).expanduser()
    faces = np.load(out / "faces64.npy", mmap_mode="r")
    hold = np.load(out / "holdout64.npy", mmap_mode="r")
    meta_path = out / "faces64-meta.json"
    meta = json.loads(meta_path.read_text())
    with open(out / "faces64-index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    train = [r for r in index if r["split"] == "train"]
    held = [r for r in index if r["split"] == "holdout"]
    zoom, size = meta["framing"]["zoom"], faces.shape[1]
    assert faces.shape == (meta["count"], size, size, 3) and faces.dtype == np.uint8 and faces.flags.c_contiguous
    assert len(train) == len(faces) and len(held) == len(hold)

    # Hold-out: matches the list, never in the training rows.
    problems = []
    if not args.limit:
        listed = HOLDOUT_LIST.read_text().split()
        if listed != [r["file"] for r in held]:
            problems.append(f"{HOLDOUT_LIST} does not match the hold-out rows of faces64-index.csv")
        rows = read_manifest(Path(args.src))
        if listed != select_holdout(rows, meta["holdout"]["n"], meta["holdout"]["seed"]):
            problems.append("hold-out list is not reproducible from the seed")
    overlap = {r["file"] for r in train} & {r["file"] for r in held}
    if overlap:
        problems.append(f"{len(overlap)} hold-out photos are in the training set")
    print(f"hold-out: {len(held)} photos ({dict(Counter(r['subset'] for r in held))}), "
          f"overlap with training: {len(overlap)}; {'OK' if not problems else '; '.join(problems)}")

    (clx, cly), (crx, cry) = A.canonical_eyes(size, zoom)
    canon = np.array([clx, cly, crx, cry])
    canon_f = (canon + 0.5) / size
    print(f"canonical eyes at zoom {zoom} (fractions of the width, left x,y right x,y): {np.round(canon_f, 4).tolist()}"
          f"  eye distance {canon_f[2] - canon_f[0]:.4f}")
    rng = np.random.default_rng(args.seed + 1)
    result = {"n_per_subset": args.check_n, "upsample": 2, "canonical_fractions": np.round(canon_f, 4).tolist(),
              "subsets": {}}
    for s in SUBSETS:
        rows_s = [int(r["row"]) for r in train if r["subset"] == s]
        if not rows_s:
            continue
        pick = rng.choice(rows_s, min(args.check_n, len(rows_s)), replace=False)
        eyes, ncount = [], Counter()
        for i in pick:
            lms = A.detect_landmarks(Image.fromarray(np.asarray(faces[i])), upsample=2)
            ncount[len(lms)] += 1
            if len(lms) == 1:
                le, re_ = A.eye_centres(lms[0])
                eyes.append((np.concatenate([le, re_]) + 0.5) / size)
        e = np.array(eyes)
        mean, std = e.mean(0), e.std(0)
        dist = e[:, 2] - e[:, 0]
        err = np.abs(e - canon_f).max(1)
        result["subsets"][s] = {
            "checked": len(pick), "redetected": len(e), "faces_found": dict(sorted(ncount.items())),
            "mean_eyes_fraction": np.round(mean, 4).tolist(), "std": np.round(std, 4).tolist(),
            "eye_distance_mean": round(float(dist.mean()), 4), "eye_distance_std": round(float(dist.std()), 4),
            "abs_error_vs_canonical_median": round(float(np.median(err)), 4),
            "within_2pct": round(float((err < 0.02).mean()), 3),
        }
        print(f"{s:8s}: re-detected {len(e)}/{len(pick)}; mean eyes (fractions) left ({mean[0]:.4f}, {mean[1]:.4f}) "
              f"right ({mean[2]:.4f}, {mean[3]:.4f}), std {np.round(std, 4).tolist()}; eye distance "
              f"{dist.mean():.4f} ± {dist.std():.4f}; |error| median {np.median(err):.4f}, "
              f"{100 * (err < 0.02).mean():.0f}% within 2%")
    _contact(np.asarray(faces), out / "contact.png", args.seed)
    _contact(np.asarray(hold), out / "holdout-contact.png", args.seed)
    print(f"contact sheets: {out / 'contact.png'}, {out / 'holdout-contact.png'}")
    result["holdout_ok"] = not problems
    meta["check"] = result
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    if problems:
        raise SystemExit(1)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default=str(DEFAULT_SRC), help=f"faces folder with images/ and manifest.csv (default {DEFAULT_SRC})")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--zoom", type=float, default=0.7, help="FFHQ quad scale (1 = FFHQ framing; default 0.7)")
    p.add_argument("--holdout", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="only a seeded random sample of this many photos (timing runs); "
                   "does not write data/mini-holdout.txt")
    p.add_argument("--check", action="store_true", help="check an existing output folder (eye positions, hold-out, contact sheets)")
    p.add_argument("--check-n", type=int, default=200, help="aligned outputs per subset to re-detect in --check")
    args = p.parse_args(argv)
    if args.check:
        meta = json.loads((Path(args.out).expanduser() / "faces64-meta.json").read_text())
        args.limit = meta["source"].get("limit") or 0
        check(args)
    else:
        prepare(args)


if __name__ == "__main__":
    main()
