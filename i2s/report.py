"""REPORT.md: our Tables 1-3 beside the paper's, and a verdict on each of the paper's claims.

Reads the CSVs the notebooks wrote under ``results/<model>/<profile>/`` and writes
``REPORT.md`` there. Each claim is decided from the per-image numbers by one rule
(:mod:`i2s.stats`): the mean difference between the two conditions with a 95 % bootstrap
interval over the images; *agrees* / *disagrees* when the interval lies wholly on one side,
*inconclusive* otherwise (or with fewer than three images a side), *not run* when its CSV is
missing. REPORT.md shows n, effect, interval and verdict for every claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import experiments as ex
from .data import in_domain
from .io import atomic_write_text
from .stats import EQUIVALENCE_RULE, RULE, Comparison, equivalence, paired_comparison, unpaired_comparison

# What each notebook must write (figures under experiments.figures_folder, tables under results/<model>/<profile>/):
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
INIT_PER_IMAGE = ex.InitPerClass.output_name("per_image")
AFFINE_PER_IMAGE = ex.AffineRobustness.output_name("per_image")
DEFECTS_PER_IMAGE = ex.Defects.output_name("per_image")
SMILE = ex.ExpressionEditing.output_name("smile")
CROSSOVER = ex.StyleTransfer.output_name("measures")
MORPH = ex.Morphing.output_name("smoothness")
PAIRS = ex.PairwiseDistances.output_name("pairs")
# every table a claim is decided from (a results folder holding any of them has claims to compare)
CLAIM_TABLES = (CLASSES, LATENT_SPACE, INIT_PER_IMAGE, AFFINE_PER_IMAGE, DEFECTS_PER_IMAGE, LOSS_ABLATION,
                LOSS_VS_STEPS, CROSSOVER, SMILE, MORPH, PAIRS)
#: §5.1: random and w̄ starts land "at the same distance" from w̄ for non-faces (Table 2) when the
#: relative difference of ‖w* − w̄‖ stays inside ±5 % (Table 2's largest is 1.6 %, paintings).
SAME_DISTANCE = 0.05


def missing_outputs(figures: Path, results: Path) -> list[str]:
    """Expected figures/CSVs that are absent (the CI check after a batch run)."""
    missing = []
    for nb, exp in EXPECTED.items():
        missing += [f"{nb}: {figures / (f + '.png')}" for f in exp["figures"] if not (figures / f"{f}.png").is_file()]
        missing += [f"{nb}: {results / (t + '.csv')}" for t in exp["tables"] if not (results / f"{t}.csv").is_file()]
    return missing


@dataclass
class Verdict:
    claim: str
    verdict: str  # "agrees" | "disagrees" | "inconclusive" | "not run"
    evidence: str
    comparison: Comparison | None = None
    unit: str = ""
    halves: tuple["Verdict", ...] = ()  # a claim with two halves (§4): its verdict is both halves'


def _from_edit_claim(e: ex.EditClaim) -> Verdict:
    """A §4 claim with its edit half and kept half as sub-rows."""
    halves = tuple(Verdict(name, "not run" if c is None else c.verdict, what, c, unit)
                   for name, c, what, unit in (("edit half", e.edit, e.edit_what, e.edit_unit),
                                               ("kept half", e.kept, e.kept_what, "share")))
    return Verdict(e.claim, e.verdict, "both halves below; agrees only when both agree", None, "", halves)


def _read(results: Path, name: str) -> pd.DataFrame | None:
    p = results / f"{name}.csv"
    return pd.read_csv(p) if p.is_file() else None


def _paired(df: pd.DataFrame, key: str, a: str, b: str, metric: str, direction: str) -> Comparison | None:
    """Pair rows of ``df`` with ``key == a`` and ``key == b`` by image, compare ``metric``; an
    image with several rows on a side (seeds of a random start) counts once, with their mean."""
    if metric not in df.columns:
        return None
    A = df[df[key] == a].groupby("image", sort=False)[metric].mean()
    B = df[df[key] == b].groupby("image", sort=False)[metric].mean()
    common = A.index.intersection(B.index)
    if len(common) == 0:
        return None
    return paired_comparison(A[common].to_numpy(), B[common].to_numpy(), direction)  # type: ignore[arg-type]


def claims(results: Path) -> list[Verdict]:
    """Every claim of the paper the notebooks measure, decided by :mod:`i2s.stats` (n, effect,
    95 % bootstrap interval, one rule)."""
    out: list[Verdict] = []
    is_face = _in_domain(results)  # "faces" below: the generator's domain (cats for a cat generator)

    def add(claim: str, c: Comparison | None, evidence: str, unit: str = "") -> None:
        out.append(Verdict(claim, "not run" if c is None else c.verdict, evidence, c, unit))

    ls = _read(results, LATENT_SPACE)
    c = None if ls is None else _paired(ls, "setting", "(f) W+, w̄ init", "(c) W, w̄ init", "loss_x1e5", "less")
    add("Embedding into W+ beats W (§3.3, Fig. 5)", c, "L ×1e5 of W+ minus W, w̄ init, per image", "L ×1e5")

    ip = _read(results, INIT_PER_IMAGE)
    if ip is not None:
        faces = ip[ip["class"].map(is_face)]
        n_seeds = ip[ip["init"] == "uniform"].groupby("image").size().max() if "uniform" in set(ip["init"]) else 0
        seeds = f" (random init: mean of {n_seeds} seeds per image)" if n_seeds > 1 else ""
        add("w̄ init is better for faces (§5.1, Table 2)", _paired(faces, "init", "mean", "uniform", "loss_x1e5", "less"),
            f"L ×1e5 of w̄ init minus random init, per face{seeds}", "L ×1e5")
        others = ip[~ip["class"].map(is_face)]
        add("Random init is better for non-faces (§5.1, Table 2)",
            _paired(others, "init", "uniform", "mean", "loss_x1e5", "less"),
            f"L ×1e5 of random minus w̄ init, per non-face image ({', '.join(sorted(others['class'].unique()))}){seeds}",
            "L ×1e5")
    else:
        add("w̄ init is better for faces (§5.1, Table 2)", None, f"{INIT_PER_IMAGE}.csv missing")

    ce = _read(results, CLASSES)
    f, o = (ce[ce["class"].map(is_face)], ce[~ce["class"].map(is_face)]) if ce is not None else (None, None)
    if f is not None and len(f) and len(o):
        add("Faces embed close to w̄; other classes scatter further (§5.1)",
            unpaired_comparison(f["dist_to_w_avg"].to_numpy(), o["dist_to_w_avg"].to_numpy(), "less"),
            "mean ‖w* − w̄‖ of faces minus non-faces (different images)", "‖w* − w̄‖")
        add("Faces embed better (lower loss) than the other classes (§3.1)",
            unpaired_comparison(f["loss_x1e5"].to_numpy(), o["loss_x1e5"].to_numpy(), "less"),
            "mean L ×1e5 of faces minus non-faces (different images)", "L ×1e5")

    af = _read(results, AFFINE_PER_IMAGE)
    if af is not None:
        base = af[af["transform"] == "original"].set_index("image")["loss_x1e5"]
        moved = af[af["transform"] != "original"]
        moved = moved[moved["image"].isin(base.index)]
        c = paired_comparison(moved["loss_x1e5"].to_numpy(), base[moved["image"]].to_numpy(), "greater",
                              groups=moved["image"].to_numpy()) if len(moved) else None
        add("Affine transformations hurt the embedding (§3.2, Table 1)", c,
            f"L ×1e5 of a transformed face minus the original, {moved['transform'].nunique()} transforms, resampling faces",
            "L ×1e5")

    de = _read(results, DEFECTS_PER_IMAGE)
    if de is not None:
        d, base = _defect_pairs(de, "dist_to_w_avg")
        c = paired_comparison(d["dist_to_w_avg"].to_numpy(), base, "greater",
                              groups=d["image"].to_numpy()) if len(d) else None
        add("Defective faces embed farther from w̄ than intact ones (supp., Table 3)", c,
            f"‖w* − w̄‖ of a defective face minus the intact one, {d['defect'].nunique()} defects, resampling faces",
            "‖w* − w̄‖")
        if "mse_vs_intact_inside" in d.columns and len(d):
            c = paired_comparison(d["mse_vs_intact_outside"].to_numpy(), 0.5 * d["mse_vs_intact_inside"].to_numpy(),
                                  "less", groups=d["image"].to_numpy())
            add("Defects stay local: removing a feature leaves the rest of the embedding alone (§3.2, Fig. 3)", c,
                "MSE (0-255) between defective and intact embeddings outside the removed region minus half of it "
                "inside (local: outside below half of inside)", "MSE")

    ab = _read(results, LOSS_ABLATION)
    if ab is not None:
        means = ab.groupby("variant")["ssim"].mean()
        rival = means.drop(index="full").idxmax() if "full" in means.index and len(means) > 1 else None
        c = _paired(ab, "variant", "full", rival, "ssim", "greater") if rival is not None else None
        add("The full loss (Eq. 1) beats its ablations (§5.2, Fig. 9)", c,
            f"SSIM of the full loss minus the best ablation ({rival}), per image", "SSIM")

    lv = _read(results, LOSS_VS_STEPS)
    if lv is not None:
        f, o = lv[lv["class"].map(is_face)], lv[~lv["class"].map(is_face)]
        c = unpaired_comparison(f["steps_to_95pct"].to_numpy(), o["steps_to_95pct"].to_numpy(), "less") \
            if len(f) and len(o) else None
        add("The loss converges fastest for faces (§5.3, Fig. 10)", c,
            f"steps to 95 % of the final drop, faces minus other classes ({len(f)} face(s), {len(o)} other images)",
            "steps")

    cm = _read(results, CROSSOVER)
    if cm is not None and "default_split" in cm.columns and len(cm):
        out.append(_from_edit_claim(ex.crossover_claims(cm)[0]))
    else:
        add("Crossover takes the style's colours and keeps the content's face (§4.2, Fig. 6)", None,
            f"{CROSSOVER}.csv missing")

    sm = _read(results, SMILE)
    if sm is not None and len(sm):
        out += [_from_edit_claim(e) for e in ex.expression_claims(sm, per_lam=False)]
    else:
        add("Expression transfer moves the smile up and keeps the person (§4.3, Fig. 7)", None, f"{SMILE}.csv missing")

    mo = _read(results, MORPH)
    if mo is not None and len(mo):
        for claim, c, what, unit in ex.morph_claims(mo, _in_domain(results)):
            add(claim, c, what, unit)

    out += _unchecked_claims(results)
    return out


def _unchecked_claims(results: Path) -> list[Verdict]:
    """Claims of the paper that the tables above do not decide: learned vs random weights
    (Fig. 5 b/e), faces cluster (Fig. 20), each transform of Table 1 and "translation is the
    worst", the MSE-only loss drifting to the average face (§5.2), paintings converging slowest
    (§5.3), random and w̄ starts landing equally far from w̄ for non-faces (§5.1, Table 2)."""
    out: list[Verdict] = []
    is_face = _in_domain(results)  # as in claims()

    def add(claim: str, c: Comparison | None, evidence: str, unit: str = "") -> None:
        out.append(Verdict(claim, "not run" if c is None else c.verdict, evidence, c, unit))

    ls = _read(results, LATENT_SPACE)
    if ls is not None:
        for space, learned, random in (("W+", "(f) W+, w̄ init", "(e) W+, random weights"),
                                       ("W", "(c) W, w̄ init", "(b) W, random weights")):
            add(f"Learned weights embed better than random weights, {space} (Fig. 5 b/e, supp. Fig. 14)",
                _paired(ls, "setting", learned, random, "psnr_db", "greater"),
                f"PSNR of {learned} minus {random}, per image (the same photos, the loss of Eq. 1 on both)", "dB")

    pw = _read(results, PAIRS)
    if pw is not None and len(pw):
        same = pw[pw["class_a"] == pw["class_b"]]
        face = same["class_a"].map(is_face).astype(bool)  # (an empty selection stays a row mask)
        ff, oo = same[face]["dist"].to_numpy(), same[~face]
        c = unpaired_comparison(ff, oo["dist"].to_numpy(), "less") if len(ff) and len(oo) else None
        add("Faces form a cluster: face–face distances are smaller than within the other classes (Fig. 20)", c,
            f"mean ‖w_a − w_b‖ over {len(ff)} face pairs minus over {len(oo)} pairs within a non-face class "
            "(pairs share images, so the interval is optimistic)", "‖Δw‖")
        paint = oo[oo["class_a"] == "paintings"]["dist"].to_numpy()
        rest = oo[oo["class_a"] != "paintings"]["dist"].to_numpy()
        add("Paintings scatter the most (Fig. 20)",
            unpaired_comparison(paint, rest, "greater") if len(paint) and len(rest) else None,
            f"mean ‖w_a − w_b‖ over {len(paint)} painting pairs minus over {len(rest)} pairs within the other "
            "non-face classes (pairs share images)", "‖Δw‖")
    else:
        add("Faces form a cluster: face–face distances are smaller than within the other classes (Fig. 20)", None,
            f"{PAIRS}.csv missing (notebook 06 writes it)")

    af = _read(results, AFFINE_PER_IMAGE)
    if af is not None:
        base = af[af["transform"] == "original"].set_index("image")["loss_x1e5"]
        moved = af[(af["transform"] != "original") & af["image"].isin(base.index)]
        for t, d in moved.groupby("transform", sort=False):
            add(f"Table 1: {t} hurts the embedding (§3.2)",
                paired_comparison(d["loss_x1e5"].to_numpy(), base[d["image"]].to_numpy(), "greater"),
                f"L ×1e5 of {t} minus the original, per face", "L ×1e5")
        means = moved.groupby("transform")["loss_x1e5"].mean()
        trans = [t for t in means.index if "transl" in t]
        rest = [t for t in means.index if t not in trans]
        if trans and rest:
            worst_t, worst_o = means[trans].idxmax(), means[rest].idxmax()
            add("Table 1: translation is the worst transform (§3.2)",
                _paired(moved, "transform", worst_t, worst_o, "loss_x1e5", "greater"),
                f"L ×1e5 of the worse translation ({worst_t}) minus the worst other transform ({worst_o}), per face",
                "L ×1e5")

    ab = _read(results, LOSS_ABLATION)
    if ab is not None and "dist_to_w_avg" in ab.columns:
        others = ab[~ab["class"].map(is_face)]
        add("The MSE-only loss pulls non-faces towards the average face (§5.2, Fig. 9)",
            _paired(others, "variant", "mse", "full", "dist_to_w_avg", "less"),
            f"‖w* − w̄‖ of the MSE-only embedding minus the full loss's, per non-face image", "‖w* − w̄‖")
    elif ab is not None:
        add("The MSE-only loss pulls non-faces towards the average face (§5.2, Fig. 9)", None,
            f"{LOSS_ABLATION}.csv has no dist_to_w_avg: rerun notebook 07")

    lv = _read(results, LOSS_VS_STEPS)
    if lv is not None:
        p, o = lv[lv["class"] == "paintings"], lv[(lv["class"] != "paintings") & ~lv["class"].map(is_face)]
        add("Paintings converge the slowest (§5.3, Fig. 10)",
            unpaired_comparison(p["steps_to_95pct"].to_numpy(), o["steps_to_95pct"].to_numpy(), "greater")
            if len(p) and len(o) else None,
            f"steps to 95 % of the final drop, paintings minus the other non-face classes ({len(p)} and {len(o)} "
            "images)", "steps")

    ip = _read(results, INIT_PER_IMAGE)
    if ip is not None and "dist_to_w_avg" in ip.columns:
        o = ip[~ip["class"].map(is_face)]
        m = o[o["init"] == "mean"].groupby("image")["dist_to_w_avg"].mean()
        u = o[o["init"] == "uniform"].groupby("image")["dist_to_w_avg"].mean()
        common = m.index.intersection(u.index)
        rel = ((u[common] - m[common]) / m[common]).to_numpy()
        add("Random and w̄ starts land equally far from w̄ for non-faces (§5.1, Table 2)",
            equivalence(rel, np.zeros_like(rel), SAME_DISTANCE) if len(rel) else None,
            f"relative difference of ‖w* − w̄‖, random minus w̄ start, per non-face image; {EQUIVALENCE_RULE} "
            f"(margin ±{SAME_DISTANCE:.0%})", "relative")
    return out


def edit_details(results: Path) -> list[Verdict]:
    """§4's claims in detail: crossover at every split layer, expression transfer at every λ."""
    out: list[Verdict] = []
    cm = _read(results, CROSSOVER)
    if cm is not None and "default_split" in cm.columns and len(cm):
        out += [_from_edit_claim(e) for e in ex.crossover_claims(cm)]
    sm = _read(results, SMILE)
    if sm is not None and len(sm):
        out += [_from_edit_claim(e) for e in ex.expression_claims(sm) if "; λ = " in e.claim]
    return out


ZOOM = ex.ZoomExplanation.output_name("per_image")


def _defect_pairs(de: pd.DataFrame, column: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Table 3's pairs: the rows of defective faces whose intact face was embedded too, and that
    intact face's ``column`` beside each."""
    base = de[de["defect"] == "non-defective"].set_index("image")[column]
    d = de[(de["defect"] != "non-defective") & de["image"].isin(base.index)]
    return d, base[d["image"]].to_numpy()


def explanations(results: Path) -> list[Verdict]:
    """Explanations offered for a disagreement, tested; 'agrees' means a lower loss than the
    original face. Table 1's zoom-in (:func:`i2s.experiments.zoom_explanation`): does the closer
    framing alone, or the lost detail alone, embed better than the original? Table 3's defects:
    where defective faces do not land farther from w̄, are they simply easier to fit (the removed
    feature replaced by a plain fill), so that the optimisation has less to travel?"""
    out: list[Verdict] = []
    z = _read(results, ZOOM)
    if z is not None:
        for label, what in (("zoom_in_2x", "Table 1's zoom-in itself"),
                            ("framed_2x_closer", "the framing alone: the photo aligned 2× closer, full detail"),
                            ("blurred_2x", "the detail alone: the original blurred 2×, same framing")):
            c = _paired(z, "input", label, "original", "loss_x1e5", "less")
            out.append(Verdict(f"Embeds with a lower loss than the original face: {what}",
                               "not run" if c is None else c.verdict,
                               f"L ×1e5 of {label} minus the original, per face ('agrees': lower)", c, "L ×1e5"))
    de = _read(results, DEFECTS_PER_IMAGE)
    if de is not None:
        d, base = _defect_pairs(de, "loss_x1e5")
        if len(d):
            c = paired_comparison(d["loss_x1e5"].to_numpy(), base, "less", groups=d["image"].to_numpy())
            out.append(Verdict("Defective faces embed with a lower loss than the intact face (easier to fit: against "
                               "Table 3's higher losses, and a reason to travel less from w̄)", c.verdict,
                               f"L ×1e5 of a defective face minus the intact one, {d['defect'].nunique()} defects, "
                               "resampling faces ('agrees': lower)", c, "L ×1e5"))
    return out


def _claims_md(verdicts: list[Verdict], side: str = "on the paper's side") -> str:
    rows = ["| claim | n | effect | 95 % interval | verdict | what is compared |", "|---|---|---|---|---|---|"]

    def row(v: Verdict, prefix: str = "") -> str:
        c = v.comparison
        if c is None:
            return f"| {prefix}{v.claim} | – | – | – | **{v.verdict}** | {v.evidence} |"
        n = f"{c.n_images}" + (f" ({c.n_pairs} pairs)" if c.n_pairs != c.n_images else "")
        within = "within the margin" if c.direction == "equal" else side
        return (f"| {prefix}{v.claim} | {n} | {c.effect:+.4g} {v.unit} | {c.interval()} | **{v.verdict}** | "
                f"{v.evidence}; {c.wins} of {c.n_pairs} {within} |")

    for v in verdicts:
        rows.append(row(v))
        rows += [row(h, "↳ ") for h in v.halves]
    return "\n".join(rows)


def _domain(results: Path) -> str:
    """The generator's domain recorded in a results folder's tag; ``"faces"`` for folders written
    before domains were recorded (every generator then was a face model)."""
    r = _tag(results)
    d = r.get("domain") if r is not None else None
    return d if isinstance(d, str) and d else "faces"


def _in_domain(results: Path):
    """Which images the claims about "faces" are about: the generator's domain. For a face
    generator that is :func:`i2s.data.is_face`; for another (a cat generator: ``"cats"``) the images
    of that class, so that photos of faces are not counted as its in-domain images; for an unknown
    domain no image (those claims are not run)."""
    return in_domain(_domain(results))


def _tag(results: Path) -> pd.Series | None:
    """The tag (model, tier, perceptual network, profile) of a results folder: the first row of
    the first of its claim CSVs that carries one (a run of one notebook has only its own CSVs)."""
    for name in CLAIM_TABLES:
        df = _read(results, name)
        if df is not None and len(df) and {"model", "profile", "perceptual_net"} <= set(df.columns):
            return df.iloc[0]
    return None


def _run_label(results: Path) -> str:
    """``mini-faces64 · quick · vgg16-random``: who produced a results folder (from its CSVs' tag)."""
    r = _tag(results)
    if r is not None:
        return f"{r['model']} · {r['profile']} · {r['perceptual_net']}"
    return f"{results.parent.name} · {results.name}"


def sensitivity(results: Path) -> pd.DataFrame | None:
    """Each claim's verdict (rows) in every results folder beside this one (columns): the other
    profiles of this model (``results/<model>/*/``) and this profile of the other models
    (``results/*/<profile>/``), this folder first; cells ``agrees (−0.012)`` with the effect.
    None when no other folder holds results."""
    results = Path(results)
    root, model, profile = results.parent.parent, results.parent.name, results.name
    others = sorted({p for p in list(root.glob(f"{model}/*")) + list(root.glob(f"*/{profile}"))
                     if p.is_dir() and p.resolve() != results.resolve()
                     and any((p / f"{t}.csv").is_file() for t in CLAIM_TABLES)})
    if not others:
        return None
    table: dict[str, dict[str, str]] = {}
    for folder in [results, *others]:
        col = _run_label(folder)
        for v in claims(folder):
            cell = v.verdict if v.comparison is None else f"{v.verdict} ({v.comparison.effect:+.3g})"
            table.setdefault(v.claim, {})[col] = cell
    return pd.DataFrame(table).T.reset_index(names="claim").fillna("not run")


def _table_md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values) + " |")
    return "\n".join(lines)


def write_report(results: Path, figures: Path | None = None, title_note: str = "") -> Path:
    """Write results/<model>/<profile>/REPORT.md from the notebooks' CSVs."""
    results = Path(results)
    r, who = _tag(results), ""
    if r is not None:
        who = f"Generator `{r['model']}` ({r.get('tier', 'unknown')} tier), perceptual network `{r['perceptual_net']}`, profile `{r['profile']}`."
        if _domain(results) != "faces":
            who += (f" Its domain is {_domain(results)}: the claims about faces below are decided on its in-domain "
                    f"images (class {_domain(results)}) against the other classes.")
    parts = [f"# Image2StyleGAN reproduction report\n\n{who} {title_note}".rstrip(),
             "The paper's numbers come from the official FFHQ-1024 StyleGAN after 5000 steps. Where another "
             "generator, perceptual network or profile ran, compare trends, not absolute values.",
             f"## The paper's claims\n\nRule: {RULE}. n counts images (the unit resampled); the effect is the "
             "mean difference in the unit shown; a negative effect is the paper's side where it claims "
             "'lower' (loss, distance, steps).\n\n" + _claims_md(claims(results))]
    details = edit_details(results)
    if details:
        parts.append("## §4 in detail: every split layer, every λ\n\nEach application claim has two halves: the "
                     "edit does what the paper says, and the result is still the face it should be (dlib's detector "
                     f"finds it, descriptor distance < 0.6); it agrees only when both halves agree. Kept share "
                     f"tested against {ex.KEPT_SHARE:g}.\n\n" + _claims_md(details))
    tested = explanations(results)
    if tested:
        parts.append("## Explanations tested\n\nSame rule as above, 'agrees' meaning a lower loss than the original "
                     "face. The zoom-in of Table 1 embeds better here than the original face (against §3.2): it "
                     "frames the face twice as close *and* halves its detail, and the first rows embed each change "
                     "alone (`zoom_explanation.csv`, `fig02_zoom_explanation.png`). Where defective faces do not "
                     "land farther from w̄ (Table 3), the last row asks whether they are simply easier to fit "
                     "(`defects_per_image.csv`).\n\n" + _claims_md(tested, "lower"))
    sens = sensitivity(results)
    if sens is not None:
        parts.append("## Sensitivity\n\nEach claim's verdict (and effect) here and in the other results folders of "
                     "this repository (other profiles of this model, other models at this profile; columns: "
                     "generator · profile · perceptual network).\n\n" + _table_md(sens))
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
