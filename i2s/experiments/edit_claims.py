"""§4's claims decided with both halves: an edit does what the paper says *and* the result is
still the face it should be.

The paper shows its applications as pictures (Figs. 4, 6, 7, 8). A measure of the edit alone
(the crossover moved towards the style's colours, the smile ratio grew) can agree while the
picture shows a face broken into blotches, so each claim here has two halves, each decided by
:mod:`i2s.stats`' rule, and agrees only when both do (:func:`i2s.stats.both`):

* the **edit half**: the measure of the edit against its baseline (colour distance to the style,
  smile ratio against λ = 0);
* the **kept half**: the share of outputs that are still the right face — dlib's detector finds a
  face where the aligned face should be (:func:`i2s.identity.face_score` >= 0) and its descriptor
  is within dlib's 0.6 of the person's (:data:`i2s.identity.SAME_PERSON`) — against
  :data:`KEPT_SHARE`, resampling the people.

The functions read the notebooks' tables only, so the REPORT (:mod:`i2s.report`) and the
figures' titles (:mod:`i2s.experiments.applications`) decide from the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..data import is_face
from ..stats import Comparison, against, both, paired_comparison

__all__ = ["KEPT_SHARE", "PAIR", "AVERAGE", "EditClaim", "crossover_claims", "expression_claims",
           "lams_where_both_hold", "morph_claims", "smile_comparison"]

#: A §4 edit keeps the face when more than this share of its outputs are that face.
KEPT_SHARE = 0.5
PAIR, AVERAGE = "one pair (§4.3)", "mean of the other pairs"  # the sources of expression_smile


@dataclass(frozen=True)
class EditClaim:
    """One claim of §4: its edit half and its kept half (either may be None: not measured)."""

    claim: str
    edit: Comparison | None
    edit_what: str
    edit_unit: str
    kept: Comparison | None
    kept_what: str

    @property
    def verdict(self) -> str:
        return both(*(("not run" if c is None else c.verdict) for c in (self.edit, self.kept)))

    def short(self) -> str:
        """The verdict with both halves in a few words, for a figure's title."""
        def half(c: Comparison | None, name: str) -> str:
            return f"{name} not measured" if c is None else f"{name} {c.verdict} ({c.effect:+.3g})"

        kept = "face kept not measured" if self.kept is None else \
            f"face kept in {self.kept.wins} of {self.kept.n_pairs} ({self.kept.verdict})"
        return f"{self.verdict}: {half(self.edit, 'edit')}, {kept}"


def _kept(df: pd.DataFrame, distance: str) -> pd.Series:
    """1.0 where an output is still the person (detected and within dlib's threshold), 0.0 where
    not, NaN where unmeasured. Tables written before face detection was measured fall back to the
    identity distance alone."""
    from ..identity import SAME_PERSON

    if distance not in df.columns:
        return pd.Series(np.nan, index=df.index)
    ok = df[distance] < SAME_PERSON
    if "face_score" in df.columns:
        ok = ok & (df["face_score"] >= 0)
        missing = df[distance].isna() | df["face_score"].isna()
    else:
        missing = df[distance].isna()
    return ok.astype(float).where(~missing)


def _kept_half(values: pd.Series, groups: pd.Series) -> Comparison | None:
    ok = values.notna()
    if not ok.any():
        return None
    return against(values[ok].to_numpy(), KEPT_SHARE, "greater", groups=groups[ok].to_numpy())


def _detection_note(df: pd.DataFrame) -> str:
    return "" if "face_score" in df.columns else " (face detection not measured in this run: identity only)"


def crossover_claims(measures: pd.DataFrame) -> list[EditClaim]:
    """§4.2 / Fig. 6 from ``crossover_measures.csv``, one claim per split layer (the default split
    first): the crossover is nearer the style image's colours than the content embedding was
    (paired, resampling content faces) *and* more than :data:`KEPT_SHARE` of the crossovers are
    still the content's face."""
    out = []
    default = measures["default_split"].astype(str) == "True"
    splits = sorted(measures["split_layer"].unique(), key=lambda k: (not default[measures["split_layer"] == k].any(), k))
    for k in splits:
        d = measures[measures["split_layer"] == k]
        layers = str(d["content_layers"].iloc[0]) if "content_layers" in d.columns else f"split {k}"
        edit = paired_comparison(d["colour_to_style"].to_numpy(), d["colour_content_to_style"].to_numpy(), "less",
                                 groups=d["content"].to_numpy())
        kept = _kept_half(_kept(d, "identity_to_content"), d["content"])
        name = "default split" if default[d.index].any() else "other split"
        out.append(EditClaim(
            f"Crossover takes the style's colours and keeps the content's face (§4.2, Fig. 6; {name}: "
            f"layers {layers} from the content)", edit,
            "colour-statistics distance to the style image of the crossover minus that of the content embedding, "
            "resampling content faces", "colour distance", kept,
            f"share of crossovers still the content's face (detected, identity < 0.6) against {KEPT_SHARE:g}"
            + _detection_note(d)))
    return out


def smile_comparison(table: pd.DataFrame, lam: float | None = None,
                     negative: bool = False) -> tuple[Comparison, pd.DataFrame] | None:
    """The paired comparison behind Fig. 7's claim, from one source kind of
    :func:`i2s.experiments.expression_smile`'s table: each source/target pair's smile ratio at
    ``lam`` (None: its mean over every λ > 0, or every λ < 0 with ``negative``) against the same
    pair's λ = 0, images resampled by target (:func:`i2s.stats.paired_comparison`); λ > 0 should
    widen the smile (``greater``), λ < 0 narrow it (``less``). Returns (comparison, per-pair smile
    and identity) or None when no row has that λ or a value is missing."""
    base = table[table["lam"] == 0].set_index(["source", "target"])["smile_ratio"]
    if lam is None:
        sub = table[table["lam"] < 0] if negative else table[table["lam"] > 0]
    else:
        sub = table[table["lam"] == lam]
        negative = lam < 0
    if sub.empty:
        return None
    per_pair = sub.groupby(["source", "target"], sort=False).agg(smile=("smile_ratio", "mean"),
                                                                  ident=("identity_distance", "mean"))
    a, b = per_pair["smile"].to_numpy(), base.reindex(per_pair.index).to_numpy()
    if not np.isfinite(a - b).all():
        return None
    per_pair["delta"] = a - b
    c = paired_comparison(a, b, "less" if negative else "greater",
                          groups=per_pair.index.get_level_values("target").tolist())
    return c, per_pair


def _expression_claim(pair: pd.DataFrame, scope: str, rows: pd.DataFrame, lam: float | None, sign: str) -> EditClaim:
    done = smile_comparison(pair, lam, negative=sign == "less")
    c = None if done is None else done[0]
    per_pair = rows.assign(kept=_kept(rows, "identity_distance")).groupby(["source", "target"], sort=False)["kept"].mean()
    kept = _kept_half(per_pair, pd.Series(per_pair.index.get_level_values("target"), index=per_pair.index))
    what = "up" if sign == "greater" else "down"
    return EditClaim(
        f"Expression transfer moves the smile {what} and keeps the person (§4.3, Fig. 7; {scope})", c,
        f"smile ratio (mouth-corner / eye distance, dlib landmarks) of a target moved along another person's "
        f"neutral → smiling direction ({scope}) minus the target itself, resampling targets", "smile ratio", kept,
        f"share of edited faces still the target (detected, identity to its λ = 0 image < 0.6) against "
        f"{KEPT_SHARE:g}, per source/target pair" + _detection_note(rows))


def expression_claims(table: pd.DataFrame, per_lam: bool = True) -> list[EditClaim]:
    """§4.3 / Fig. 7 from ``expression_smile.csv`` (one-pair sources, the paper's protocol): pooled
    over λ > 0 (smile up) and over λ < 0 (smile down), then each λ ≠ 0 on its own (``per_lam``)."""
    pair = table[table["source_kind"] == PAIR] if "source_kind" in table.columns else table
    out = []
    pos, neg = pair[pair["lam"] > 0], pair[pair["lam"] < 0]
    if len(pos):
        out.append(_expression_claim(pair, "mean over λ > 0", pos, None, "greater"))
    if len(neg):
        out.append(_expression_claim(pair, "mean over λ < 0", neg, None, "less"))
    if per_lam:
        for lam in sorted(l for l in pair["lam"].unique() if l != 0):
            out.append(_expression_claim(pair, f"λ = {lam:g}", pair[pair["lam"] == lam], lam,
                                         "greater" if lam > 0 else "less"))
    return out


def lams_where_both_hold(table: pd.DataFrame) -> list[float]:
    """The λ values of Fig. 7 at which both halves of the expression claim agree."""
    return [float(c.claim.split("λ = ")[1].rstrip(")")) for c in expression_claims(table)
            if "; λ = " in c.claim and c.verdict == "agrees"]


def morph_claims(table: pd.DataFrame, faces_are: Callable[[str | None], bool] = is_face
                 ) -> list[tuple[str, Comparison | None, str, str]]:
    """§4.1 / Fig. 4 from ``morph_smoothness.csv``: (claim, comparison, what is compared, unit).
    "Faces" are the generator's in-domain images (``faces_are``: :func:`i2s.data.in_domain`).

    * face ↔ face morphs stay faces: per morph, the share of its intermediate frames that are a
      face on the descriptor path between its ends (``kept_between``), against :data:`KEPT_SHARE`;
    * morphs between non-faces show "contours of human faces" in between: per non-face ↔
      non-face morph, the intermediate frames' face score minus the ends' (``greater``);
    * face ↔ face morphs are smoother than morphs with a non-face end (the largest frame-to-frame
      change over the mean one).
    """
    ends = table["morph"].astype(str).str.split(" → ")
    n_faces = ends.map(lambda e: sum(faces_are(x) for x in e))
    faces, nonfaces, mixed = table[n_faces == 2], table[n_faces == 0], table[n_faces < 2]
    out: list[tuple[str, Comparison | None, str, str]] = []
    if "kept_between" in table.columns:
        v = faces["kept_between"].dropna()
        out.append(("Morphs between faces stay faces: the frames in between are faces on the way from one person "
                    "to the other (§4.1, Fig. 4)", against(v.to_numpy(), KEPT_SHARE, "greater") if len(v) else None,
                    f"per face ↔ face morph ({len(v)}), the share of intermediate frames detected as a face whose "
                    f"descriptor is within 0.6 of the interpolated end descriptors, against {KEPT_SHARE:g}", "share"))
        d = (nonfaces["mid_face_score"] - nonfaces["ends_face_score"]).dropna()
        out.append(("Morphs between non-faces show contours of faces in between (§4.1, Fig. 4)",
                    against(d.to_numpy(), 0.0, "greater") if len(d) else None,
                    f"per non-face ↔ non-face morph ({len(d)}), dlib's face score of the intermediate frames minus "
                    "that of the two ends", "face score"))
    else:
        out.append(("Morphs between faces stay faces: the frames in between are faces on the way from one person "
                    "to the other (§4.1, Fig. 4)", None, "morph_smoothness.csv has no face measures: rerun notebook 05",
                    ""))
    from ..stats import unpaired_comparison

    c = unpaired_comparison(faces["max_over_mean"].to_numpy(), mixed["max_over_mean"].to_numpy(), "less") \
        if len(faces) and len(mixed) else None
    out.append(("Morphs between faces are smooth; morphs with non-faces are not (§4.1, Fig. 4)", c,
                "largest frame-to-frame pixel change over the mean one (1: an even morph), face ↔ face morphs minus "
                f"morphs with a non-face end ({len(faces)} and {len(mixed)} morphs; smoothness only)",
                "max / mean change"))
    return out
