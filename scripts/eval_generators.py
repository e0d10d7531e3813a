#!/usr/bin/env python
"""Generators side by side, by a network no discriminator has seen: Fréchet distance and KID in
the 128-d face-descriptor space of dlib's face-recognition ResNet (:mod:`i2s.identity`).

Samples of each generator (``--n`` of them, psi 1, random noise, z seeds ``seed·n … seed·n + n − 1``) and ``--n`` real
training photos framed as mini is (FFHQ recipe, zoom 0.7; ``scripts/prepare_mini_data.py``) are
described; a second, disjoint set of ``--n`` real photos against the first gives the floor
(real-vs-real at the same n: what a perfect generator would score). KID is the unbiased MMD²
with the cubic polynomial kernel ``(x·y / d + 1)³`` (Bińkowski et al. 2018), mean and std over
``--kid-subsets`` subsets of ``--kid-size`` (at most half of ``--n``); FD is the Fréchet distance of Gaussians fitted to
the descriptors (as FID, in another feature space), printed with its mean and covariance terms and
the samples' spread against the photos' (:func:`fd_parts`).

Beside FD and KID, every generator gets the layer-structure measures of :mod:`i2s.layer_structure`
(issue 31, on ``--structure-n`` sample pairs): coarse-swap / fine-swap pixel change, the truncation
share, dlib landmark displacement under coarse and fine swaps, and the bottom-right corner block
against the other border blocks (real photos get the corner measure too), and the fixed patch
(the largest local departure of the samples' mean image from the photos' mean image), each with the issue's
target and whether it is met.

Real descriptors are cached in ``$I2S_HOME/eval/`` (keyed by the data file's size, mtime and
the sample indices). Writes a JSON with every number and prints a table::

    python scripts/eval_generators.py --model v1=mini --model v3=data/models/interim/mini-v3-1282k.pt
    python scripts/eval_generators.py --model v2=~/.cache/i2s/train-runs/mini-v2/checkpoint.pt --n 500
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from tqdm.auto import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from i2s import identity  # noqa: E402
from i2s.layer_structure import corner_patch, structure  # noqa: E402
from i2s.stats import target_verdict  # noqa: E402
from i2s.weights.fetch import i2s_home  # noqa: E402
from i2s.io import atomic_write_text  # noqa: E402

DEFAULT_DATA = Path("~/.cache/i2s/train-data/faces64.npy").expanduser()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||² + Tr(S_a + S_b - 2 (S_a S_b)^½)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s_a @ s_b)
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * covmean))


def fd_parts(fake: np.ndarray, real: np.ndarray, axes: int = 3) -> dict:
    """Where a Fréchet distance comes from: its mean term ``||mu_f - mu_r||²`` and covariance term,
    the samples' spread against the photos' (``tr S_f / tr S_r``: below 1, the samples are less
    varied than the photos), and the variance ratio along the photos' first ``axes`` principal
    axes (in the training photos the photos at either end of each of the first axes differ in sex,
    age and ancestry together: the groups a generator that drops modes drops first)."""
    mu_f, mu_r = fake.mean(0), real.mean(0)
    s_f, s_r = np.cov(fake, rowvar=False), np.cov(real, rowvar=False)
    mean_term = float(((mu_f - mu_r) ** 2).sum())
    _, _, vt = np.linalg.svd(real - mu_r, full_matrices=False)
    along = [float(np.var((fake - mu_r) @ v) / np.var((real - mu_r) @ v)) for v in vt[:axes]]
    return {"mean": mean_term, "cov": frechet_distance(fake, real) - mean_term,
            "spread": float(np.trace(s_f) / np.trace(s_r)), "spread_along_axes": along}


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 50, size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD² with the kernel (x·y/d + 1)³, mean and std over random subsets of ``size``,
    or of half the smaller set when that is smaller (subsets of a whole set would all be alike,
    and the std zero)."""
    rng = np.random.default_rng(seed)
    d, m = a.shape[1], min(size, max(min(len(a), len(b)) // 2, 2))
    vals = []
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    return float(np.mean(vals)), float(np.std(vals))


def load_any(spec: str) -> torch.nn.Module:
    """A generator by name, exported file, or training checkpoint (its EMA generator)."""
    from i2s.models import load_generator

    path = Path(spec).expanduser()
    if path.suffix == ".pt" and path.is_file():
        from i2s.train.trainer import CHECKPOINT_FORMAT, load_run_file

        obj = load_run_file(path)
        if obj.get("format") == CHECKPOINT_FORMAT:
            from i2s.stylegan import StyleGAN, StyleGANConfig

            G = StyleGAN(StyleGANConfig.from_dict(obj["config"]))
            G.load_state_dict(obj["G_ema"])
            G.info = {"name": f"checkpoint@{obj['state']['images_seen'] / 1000:.0f}kimg", "tier": "embedded"}
            return G.eval().requires_grad_(False)
    return load_generator(spec, verbose=False)


@torch.no_grad()
def sample(G, n: int, batch: int = 100, first: int = 0) -> np.ndarray:
    """``n`` samples from the z seeds ``first … first + n − 1`` (another ``--seed``: other samples);
    the per-pixel noise is drawn from torch's generator seeded with ``first``, so a run repeats."""
    torch.manual_seed(first)
    out = []
    for s in tqdm(range(first, first + n, batch), desc="samples", leave=False):
        z = torch.stack([torch.from_numpy(np.random.default_rng(i).standard_normal(G.z_dim)).float()
                         for i in range(s, min(s + batch, first + n))])
        out.append(identity.to_uint8(G.synthesis(G.mapping(z), noise_mode="random")))
    return np.concatenate(out)


def describe(images: np.ndarray, label: str) -> np.ndarray:
    parts = [identity.descriptors(images[i:i + 100]) for i in tqdm(range(0, len(images), 100), desc=label, leave=False)]
    return np.concatenate(parts)


def real_descriptors(data: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    arr = np.load(data, mmap_mode="r")
    if len(arr) < 2 * n:
        raise SystemExit(f"{data}: {len(arr)} photos, need {2 * n} for two disjoint real sets")
    idx = np.sort(np.random.default_rng(seed).permutation(len(arr))[: 2 * n])
    st = data.stat()
    cache = i2s_home() / "eval" / f"real-{data.stem}-{st.st_size}-{int(st.st_mtime)}-n{n}-s{seed}.npy"
    if cache.is_file():
        both = np.load(cache)
    else:
        both = describe(np.asarray(arr[idx]), "real")
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npy")
        np.save(tmp, both)
        tmp.replace(cache)
    perm = np.random.default_rng(seed + 1).permutation(2 * n)
    return both[perm[:n]], both[perm[n:]]


# Issue 31's targets for the layer structure (mini v3)
TARGETS = {"coarse_over_fine": 0.6, "truncation_share": 0.3, "landmark_shift_fine_over_coarse": 0.5}


def structure_row(G, n: int, reals: np.ndarray | None = None) -> dict:
    """The layer-structure measures of ``G`` and whether each meets its target (corner and fixed
    patch: none; the fixed patch only when real photos of G's size are given)."""
    st = structure(G, n=n, reals=reals).to_dict()
    st["meets"] = {"coarse_over_fine": st["coarse_over_fine"] >= TARGETS["coarse_over_fine"],
                   "truncation_share": st["truncation_share"] >= TARGETS["truncation_share"],
                   "landmarks": bool(st["coarse_landmark_shift"] > 0 and st["landmark_shift_fine_over_coarse"]
                                     < TARGETS["landmark_shift_fine_over_coarse"]),
                   "no_corner_patch": not st["corner"]["patch"],
                   "no_fixed_patch": st["fixed"] is None or not st["fixed"]["patch"]}
    # the same three targets decided on the ratios' 95 % intervals over the sample pairs
    iv = st.get("intervals") or {}
    st["decided"] = {key: target_verdict(*iv[key], TARGETS[key], "less" if key.startswith("landmark") else "greater")
                     for key in TARGETS if key in iv}
    return st


def print_structure(rows: list[dict], real_corner: dict) -> None:
    print(f"\nlayer structure (i2s.layer_structure; targets: coarse/fine >= {TARGETS['coarse_over_fine']}, "
          f"truncation share >= {TARGETS['truncation_share']}, landmarks fine/coarse < "
          f"{TARGETS['landmark_shift_fine_over_coarse']}, no corner patch, no fixed patch)")
    print(f"{'':28s} {'coarse':>7s} {'fine':>6s} {'c/f':>6s} {'trunc':>6s} {'lm coarse':>9s} {'lm fine':>8s} "
          f"{'f/c':>6s} {'corner':>7s} {'others (max)':>14s} {'fixed (floor)':>14s}")
    c = real_corner
    print(f"{'real photos':28s} {'':>7s} {'':>6s} {'':>6s} {'':>6s} {'':>9s} {'':>8s} {'':>6s} "
          f"{c['bottom_right']:7.1f} {c['others_mean']:6.1f} ({c['others_max']:5.1f})")
    for r in rows:
        st = r["structure"]
        c, ok = st["corner"], st["meets"]
        mark = lambda good: " " if good else "!"  # noqa: E731
        print(f"{r['label']:28s} {st['coarse_swap']:7.3f} {st['fine_swap']:6.3f} {st['coarse_over_fine']:5.2f}"
              f"{mark(ok['coarse_over_fine'])} {st['truncation_share']:5.2f}{mark(ok['truncation_share'])} "
              f"{st['coarse_landmark_shift']:9.4f} {st['fine_landmark_shift']:8.4f} "
              f"{st['landmark_shift_fine_over_coarse']:5.2f}{mark(ok['landmarks'])} "
              f"{c['bottom_right']:6.1f}{mark(ok['no_corner_patch'])} {c['others_mean']:6.1f} ({c['others_max']:5.1f})"
              + (f" {st['fixed']['max_departure']:6.2f}{mark(ok['no_fixed_patch'])} ({st['fixed']['floor']:4.2f})"
                 if st["fixed"] else ""))
    print("(! = target not met; swaps: mean |pixel change| in [-1, 1]; landmark shifts: fraction of the width;\n"
          " fixed: the largest local departure of the samples' mean image from the photos', in the photos'\n"
          " spread; floor: the same between two halves of the photos; a patch is above 3x the floor)")
    print(f"\n{'95 % intervals over the pairs':28s} {'c/f':>22s} {'trunc':>22s} {'lm f/c':>22s} {'lm fine floor':>14s}")
    for r in rows:
        st = r["structure"]
        iv, dec = st.get("intervals") or {}, st.get("decided") or {}
        cell = lambda k: (f"[{iv[k][0]:.2f}, {iv[k][1]:.2f}] {dec[k]}" if k in iv else "")  # noqa: E731
        print(f"{r['label']:28s} {cell('coarse_over_fine'):>22s} {cell('truncation_share'):>22s} "
              f"{cell('landmark_shift_fine_over_coarse'):>22s} {st.get('fine_landmark_floor', float('nan')):14.4f}")
    print("(met / missed / undecided: the whole interval on the target's side / on the other side / across it;\n"
          " lm fine floor: the landmark shift when a sample only takes the fine-swapped image's colours)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", required=True, metavar="LABEL=SPEC",
                   help="a generator: a name (mini, ...), an exported .pt, or a training checkpoint; repeatable")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="real photos, uint8 [N, 64, 64, 3] .npy")
    p.add_argument("--n", type=int, default=2000, help="samples per generator and real photos per set")
    p.add_argument("--seed", type=int, default=0, help="picks the real photos and the samples' z (a second seed: "
                   "both drawn afresh, for the spread of the numbers)")
    p.add_argument("--kid-subsets", type=int, default=50)
    p.add_argument("--kid-size", type=int, default=1000)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "generator_eval.json"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--structure-n", type=int, default=256, help="sample pairs for the layer-structure measures")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.time()
    generators = []
    for spec in a.model:  # every generator loads before the long part starts; a bad file is one line
        label, _, what = spec.partition("=")
        try:
            generators.append((label, what, load_any(what or label)))
        except (FileNotFoundError, ValueError) as e:
            raise SystemExit(f"eval_generators: --model {spec}: {e}") from None
    real_a, real_b = real_descriptors(Path(a.data).expanduser(), a.n, a.seed)
    photos = np.load(Path(a.data).expanduser(), mmap_mode="r")
    structure_reals = np.asarray(photos[np.sort(np.random.default_rng(a.seed).permutation(len(photos))[:2 * a.structure_n])])
    real_corner = corner_patch(structure_reals)
    rows = [{"label": "real vs real (floor)", "fd": frechet_distance(real_b, real_a), "fd_parts": fd_parts(real_b, real_a),
             "kid": kid(real_b, real_a, a.kid_subsets, a.kid_size)}]
    for label, what, G in generators:
        fake = describe(sample(G, a.n, first=a.seed * a.n), label)
        rows.append({"label": label, "model": what or label, "info": {k: G.info.get(k) for k in
                     ("name", "images_seen", "wall_clock_hours", "trained_with") if k in G.info},
                     "fd": frechet_distance(fake, real_a), "fd_parts": fd_parts(fake, real_a),
                     "kid": kid(fake, real_a, a.kid_subsets, a.kid_size),
                     "structure": structure_row(G, a.structure_n, structure_reals
                                                if structure_reals.shape[1] == G.resolution else None)})
    floor = rows[0]["fd"]
    print(f"\nface-descriptor space ({identity.NAME}), n = {a.n} per set, reals from {a.data}")
    print(f"{'':28s} {'FD':>8s} {'FD - floor':>10s} {'KID x1e3':>14s}   {'mean':>6s} {'cov':>6s} {'spread':>6s}  along axes 1-3")
    for r in rows:
        k, ks = r["kid"]
        fp = r["fd_parts"]
        print(f"{r['label']:28s} {r['fd']:8.4f} {r['fd'] - floor:10.4f} {k * 1e3:8.3f} ± {ks * 1e3:.3f}   "
              f"{fp['mean']:6.4f} {fp['cov']:6.4f} {fp['spread']:6.2f}  {' '.join(f'{v:.2f}' for v in fp['spread_along_axes'])}")
    print("(FD = mean + cov term; spread: tr S / tr S_photos, the samples' variety against the photos', 1 for a "
          "perfect generator;\n along axes: the same along the photos' first three principal axes)")
    print_structure(rows[1:], real_corner)
    result = {"feature_space": identity.NAME, "n": a.n, "seed": a.seed, "data": str(a.data),
              "kid": {"subsets": a.kid_subsets, "size": min(a.kid_size, max(a.n // 2, 2)), "kernel": "(x.y/128 + 1)^3"},
              "structure_n": a.structure_n, "structure_targets": TARGETS, "real_corner": real_corner,
              "seconds": round(time.time() - t0, 1), "rows": rows}
    atomic_write_text(Path(a.out), json.dumps(result, indent=2) + "\n")
    print(f"written {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
