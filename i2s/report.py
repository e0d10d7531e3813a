"""REPORT.md: our Tables 1-3 beside the paper's, and a verdict on each of the paper's claims.

Reads the CSVs the notebooks wrote under ``results/<model>/<profile>/`` and writes
``REPORT.md`` there. Each claim gets *agrees* / *disagrees* / *too close to call* / *not run*
and the numbers that decide it, so a reader can check the verdict. *Too close to call* is for
comparisons whose margin is below ``TIE_SSIM`` (SSIM) or ``TIE_REL`` (relative distance): a
hair's-breadth win at a few hundred steps is not evidence either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import experiments as ex
from .io import atomic_write_text

# What each notebook must write (figures under figures/<model>/, tables under results/<model>/<profile>/):
# derived from the output fields of the experiments' named results.
EXPECTED: dict[str, dict[str, list[str]]] = ex.expected_outputs()

# The tables the verdicts read, by the names their results save them under.
LATENT_SPACE = ex.LatentSpaceChoice.output_name("table")
TABLE1 = ex.AffineRobustness.output_name("table1")
TABLE2 = ex.InitPerClass.output_name("table2")
TABLE3 = ex.Defects.output_name("table3")
CLASSES = ex.ClassEmbedding.output_name("per_image")
CLASS_SUMMARY = ex.ClassEmbedding.output_name("summary")
LOSS_ABLATION = ex.LossAblation.output_name("table")
LOSS_VS_STEPS = ex.LossVsSteps.output_name("table")


def missing_outputs(figures: Path, results: Path) -> list[str]:
    """Expected figures/CSVs that are absent (the CI check after a batch run)."""
    missing = []
    for nb, exp in EXPECTED.items():
        missing += [f"{nb}: {figures / (f + '.png')}" for f in exp["figures"] if not (figures / f"{f}.png").is_file()]
        missing += [f"{nb}: {results / (t + '.csv')}" for t in exp["tables"] if not (results / f"{t}.csv").is_file()]
    return missing


# Margins below these are reported as "too close to call".
TIE_SSIM = 0.005  # absolute SSIM difference (loss ablation)
TIE_REL = 0.01  # relative difference of ‖w* − w̄‖ (defective vs intact faces)


@dataclass
class Verdict:
    claim: str
    verdict: str  # "agrees" | "disagrees" | "too close to call" | "not run"
    evidence: str


def _read(results: Path, name: str) -> pd.DataFrame | None:
    p = results / f"{name}.csv"
    return pd.read_csv(p) if p.is_file() else None


def claims(results: Path) -> list[Verdict]:
    out: list[Verdict] = []

    def add(claim: str, ok: bool | None, evidence: str, close: bool = False) -> None:
        verdict = "not run" if ok is None else "too close to call" if close else "agrees" if ok else "disagrees"
        out.append(Verdict(claim, verdict, evidence))

    ls = _read(results, LATENT_SPACE)
    if ls is not None:
        m = ls.groupby("setting")["loss_x1e5"].mean()
        wp, w = m.get("(f) W+, w̄ init"), m.get("(c) W, w̄ init")
        add("Embedding into W+ beats W (§3.3, Fig. 5)", wp < w, f"mean L ×1e5: W+ {wp:.4f} vs W {w:.4f} (w̄ init, one image per class)")
    else:
        add("Embedding into W+ beats W (§3.3, Fig. 5)", None, f"{LATENT_SPACE}.csv missing")

    t2 = _read(results, TABLE2)
    if t2 is not None:
        p = t2.pivot(index="class", columns="init", values="ours_loss_x1e5")
        face_ok = p.loc["faces", "mean"] < p.loc["faces", "uniform"]
        others = [c for c in p.index if c != "faces"]
        wins = [c for c in others if p.loc[c, "uniform"] < p.loc[c, "mean"]]
        add("w̄ init is better for faces (§5.1, Table 2)", face_ok,
            f"faces L ×1e5: w̄ {p.loc['faces', 'mean']:.4f} vs random {p.loc['faces', 'uniform']:.4f}")
        add("Random init is better for non-faces (§5.1, Table 2)", len(wins) > len(others) / 2,
            f"random init has the lower L for {len(wins)} of {len(others)} non-face classes ({', '.join(wins) or 'none'})")
    else:
        add("w̄ init is better for faces (§5.1, Table 2)", None, f"{TABLE2}.csv missing")

    ce = _read(results, CLASS_SUMMARY)
    if ce is not None:
        d = ce.set_index("class")["dist_to_w_avg"]
        others = [c for c in d.index if c != "faces"]
        add("Faces embed close to w̄; other classes scatter further (§5.1, Tables 1-3)",
            all(d["faces"] < d[c] for c in others),
            "mean ‖w* − w̄‖: " + ", ".join(f"{c} {d[c]:.2f}" for c in d.index))
        lo = ce.set_index("class")["loss_x1e5"]
        add("Faces embed better (lower loss) than the other classes (§3.1)", all(lo["faces"] < lo[c] for c in others),
            "mean L ×1e5: " + ", ".join(f"{c} {lo[c]:.4f}" for c in lo.index))

    t1 = _read(results, TABLE1)
    if t1 is not None:
        t = t1.set_index("transform")["ours_loss_x1e5"]
        worse = [k for k in t.index if k != "original" and t[k] > t["original"]]
        add("Affine transformations hurt the embedding (§3.2, Table 1)", len(worse) == len(t) - 1,
            f"L ×1e5 original {t['original']:.4f}; higher for {len(worse)} of {len(t) - 1} transforms: "
            + ", ".join(f"{k} {t[k]:.4f}" for k in t.index if k != "original"))

    t3 = _read(results, TABLE3)
    if t3 is not None:
        t = t3.set_index("defect")
        base = t.loc["non-defective", "ours_dist"]
        defects = [k for k in t.index if k != "non-defective"]
        farther = [k for k in defects if t.loc[k, "ours_dist"] > base * (1 + TIE_REL)]
        nearer = [k for k in defects if t.loc[k, "ours_dist"] < base * (1 - TIE_REL)]
        add("Defective faces embed farther from w̄ than intact ones (supp., Table 3)", len(farther) == len(defects),
            f"‖w* − w̄‖ intact {base:.2f}; " + ", ".join(f"{k} {t.loc[k, 'ours_dist']:.2f}" for k in defects)
            + f" ({len(farther)} farther, {len(nearer)} nearer by more than {TIE_REL:.0%})",
            close=not nearer and len(farther) < len(defects))
        if "mse_vs_intact_inside" in t.columns:
            d = t.drop(index="non-defective")
            local = [k for k in d.index if d.loc[k, "mse_vs_intact_outside"] < 0.5 * d.loc[k, "mse_vs_intact_inside"]]
            add("Defects stay local: removing a feature leaves the rest of the embedding alone (§3.2, Fig. 3)",
                len(local) == len(d),
                "MSE (0-255) between defective and intact embeddings, inside vs outside the removed region: "
                + ", ".join(f"{k} {d.loc[k, 'mse_vs_intact_inside']:.1f} vs {d.loc[k, 'mse_vs_intact_outside']:.1f}"
                            for k in d.index) + " (local: outside < half of inside)")

    ab = _read(results, LOSS_ABLATION)
    if ab is not None:
        m = ab.groupby("variant")[["ssim", "full_loss_x1e5"]].mean()
        best = m["ssim"].idxmax()
        rival = m["ssim"].drop(index="full").idxmax()
        margin = m.loc["full", "ssim"] - m.loc[rival, "ssim"]
        add("The full loss (Eq. 1) beats its ablations (§5.2, Fig. 9)", margin > 0,
            "mean SSIM: " + ", ".join(f"{v} {m.loc[v, 'ssim']:.3f}" for v in m.index)
            + f" (best: {best}; full − best ablation ({rival}) = {margin:+.4f})",
            close=abs(margin) < TIE_SSIM)

    lv = _read(results, LOSS_VS_STEPS)
    if lv is not None:
        s = lv.set_index("class")["steps_to_95pct"]
        add("The loss converges fastest for faces (§5.3, Fig. 10)", bool(s["faces"] <= s.min()),
            "steps to 95 % of the final drop: " + ", ".join(f"{c} {int(s[c])}" for c in s.index))
    return out


def _table_md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values) + " |")
    return "\n".join(lines)


def write_report(results: Path, figures: Path | None = None, title_note: str = "") -> Path:
    """Write results/<model>/<profile>/REPORT.md from the notebooks' CSVs."""
    results = Path(results)
    tag = _read(results, CLASSES)
    who = ""
    if tag is not None and {"model", "tier", "perceptual_net", "profile"} <= set(tag.columns):
        r = tag.iloc[0]
        who = f"Generator `{r['model']}` ({r['tier']} tier), perceptual network `{r['perceptual_net']}`, profile `{r['profile']}`."
    parts = [f"# Image2StyleGAN reproduction report\n\n{who} {title_note}".rstrip(),
             "The paper's numbers come from the official FFHQ-1024 StyleGAN after 5000 steps. Where another "
             "generator, perceptual network or profile ran, compare trends, not absolute values.",
             "## The paper's claims\n\n| claim | our run | evidence |\n|---|---|---|\n"
             + "\n".join(f"| {v.claim} | **{v.verdict}** | {v.evidence} |" for v in claims(results))]
    keep = ["ours_loss_x1e5", "paper_loss_x1e5", "ours_dist", "paper_dist", "ours_psnr_db",
            "mse_vs_intact_inside", "mse_vs_intact_outside"]
    for name, title, key in ((TABLE1, "Table 1: affine transformations", "transform"),
                             (TABLE2, "Table 2: initialisation per class", None),
                             (TABLE3, "Table 3: defective faces", "defect")):
        df = _read(results, name)
        if df is not None:
            first = ["class", "init"] if key is None else [key]
            parts.append(f"## {title}\n\n" + _table_md(df[first + [c for c in keep if c in df.columns]]))
    timing = _read(results, "run_times")
    if timing is not None and {"notebook", "seconds"} <= set(timing.columns):
        total = float(timing["seconds"].sum())
        parts.append(f"## Run time\n\n{total / 60:.1f} minutes for the {len(timing)} notebooks "
                     f"({timing['device'].iloc[0] if 'device' in timing.columns else 'device not recorded'}; "
                     "embeddings cached by earlier runs are not recomputed, so a rerun is faster).\n\n"
                     + _table_md(timing))
    path = results / "REPORT.md"
    atomic_write_text(path, "\n\n".join(parts) + "\n")
    return path
