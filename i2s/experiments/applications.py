"""Notebook 05, §4 (Fig. 4, 6, 7, 8): morphing, style transfer by crossover, expression transfer,
each measured (smoothness, identity and colour, smile ratio), the explorer's grids, and edit
directions found from the generator alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ..data import image_stem, in_domain, is_face
from ..models import domain
from ..edits import ExpressionRule, expression_rule
from .common import Result, figure_output, first_of_each_class, load_classes, render, table_output
from .edit_claims import AVERAGE, PAIR, crossover_claims, expression_claims, lams_where_both_hold, morph_claims, smile_comparison
from .session import Session

if TYPE_CHECKING:
    from ipywidgets import HBox
    from matplotlib.figure import Figure

    from ..stats import Comparison


def _descriptors(images: torch.Tensor, zoom: float) -> np.ndarray:
    """dlib face descriptors (:func:`i2s.identity.descriptors`), NaN rows where they cannot be computed."""
    from .. import identity

    return identity.or_nan("identity distance", lambda: identity.descriptors(images, zoom), (len(images), 128))


def _face_scores(images: torch.Tensor, zoom: float) -> np.ndarray:
    """:func:`i2s.identity.face_score` (>= 0: dlib's detector finds a face where the aligned face
    should be), NaN where it cannot be measured."""
    from .. import identity

    return identity.or_nan("face detection", lambda: identity.face_score(images, zoom), (len(images),))


def _smile_ratios(images: torch.Tensor, zoom: float) -> np.ndarray:
    """:func:`i2s.identity.smile_ratio`, NaN where it cannot be measured."""
    from .. import identity

    return identity.or_nan("smile ratio", lambda: identity.smile_ratio(images, zoom), (len(images),))


def morph_rows(s: Session, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], frames: int = 7) -> torch.Tensor:
    """§4.1 / Fig. 4: for each (w1, w2) pair of W+ codes, ``frames`` images from λ = 1 (w1) to 0 (w2).
    Returns [pairs, frames, 3, H, W]."""
    from ..edits import morph

    lams = torch.linspace(1.0, 0.0, frames)
    return torch.stack([render(s, morph(w1, w2, lams)) for w1, w2 in pairs])


def morph_smoothness(frames: torch.Tensor, labels: Sequence[str]) -> pd.DataFrame:
    """§4.1 measured: how evenly each morph moves from frame to frame.

    ``frames`` is [morphs, frames, 3, H, W] in [-1, 1] (:func:`morph_rows`). Per morph, the pixel
    RMS change between consecutive frames in 0-255 units: ``mean_rms_change``,
    ``max_rms_change`` and ``max_over_mean`` (near 1: the image changes at an even rate, as a
    smooth latent space should give for evenly spaced λ; large: it jumps between two frames),
    and ``end_to_end_rms``, the RMS difference of the two end images (the scale of the change)."""
    if frames.ndim != 5 or frames.shape[1] < 2:
        raise ValueError(f"want [morphs, frames >= 2, 3, H, W], got {tuple(frames.shape)}")
    if len(labels) != len(frames):
        raise ValueError(f"{len(labels)} labels for {len(frames)} morphs")
    x = frames.double() * 127.5
    step = (x[:, 1:] - x[:, :-1]).square().flatten(2).mean(-1).sqrt()  # [morphs, frames - 1]
    ends = (x[:, -1] - x[:, 0]).square().flatten(1).mean(-1).sqrt()
    rows = []
    for k, label in enumerate(labels):
        mean, top = step[k].mean().item(), step[k].max().item()
        rows.append({"morph": label, "frames": frames.shape[1], "mean_rms_change": mean, "max_rms_change": top,
                     "max_over_mean": top / mean if mean > 0 else float("nan"), "end_to_end_rms": ends[k].item()})
    return pd.DataFrame(rows)


def morph_faces(frames: torch.Tensor, zoom: float) -> pd.DataFrame:
    """§4.1 measured as faces: do a morph's frames between its ends stay faces?

    ``frames`` is [morphs, frames, 3, H, W] from λ = 1 to 0 (:func:`morph_rows`). Per morph, over
    the intermediate frames: ``faces_between``, the share detected as a face
    (:func:`i2s.identity.face_score` >= 0); ``on_path_between``, the share whose dlib descriptor
    lies within 0.6 of the ends' descriptors interpolated at the frame's λ (a face on the way
    from one person to the other, not a third one); ``kept_between``, the share that are both;
    ``mid_face_score`` and ``ends_face_score``, the mean face score of the intermediate frames and
    of the two ends (higher in between: face-like contours appear, as §4.1 saw in morphs of
    non-faces)."""
    from ..identity import SAME_PERSON

    m, f = frames.shape[:2]
    flat = frames.flatten(0, 1)
    score = _face_scores(flat, zoom).reshape(m, f)
    desc = _descriptors(flat, zoom).reshape(m, f, -1)
    lam = torch.linspace(1.0, 0.0, f).numpy()[None, :, None]
    path = lam * desc[:, :1] + (1 - lam) * desc[:, -1:]
    on_path = np.linalg.norm(desc - path, axis=-1) < SAME_PERSON
    mid = slice(1, f - 1)
    face = score >= 0
    unmeasured = np.isnan(score).any(1) | np.isnan(desc).any((1, 2))
    rows = []
    for k in range(m):
        nan = float("nan")
        rows.append({"faces_between": nan if unmeasured[k] else float(face[k, mid].mean()),
                     "on_path_between": nan if unmeasured[k] else float(on_path[k, mid].mean()),
                     "kept_between": nan if unmeasured[k] else float((face & on_path)[k, mid].mean()),
                     "mid_face_score": float(score[k, mid].mean()),
                     "ends_face_score": float(score[k, [0, f - 1]].mean())})
    return pd.DataFrame(rows)


def crossover_grid(s: Session, w_styles: torch.Tensor, w_contents: torch.Tensor, layer: int | None = None) -> torch.Tensor:
    """§4.2 / Fig. 6 / Fig. 8: image [i, j] keeps the coarse layers of content j and takes the
    fine layers of style i. Returns [styles, contents, 3, H, W]."""
    from ..edits import crossover

    return torch.stack([render(s, crossover(w_contents, ws.expand_as(w_contents), layer)) for ws in w_styles])


def crossover_splits(num_layers: int) -> list[int]:
    """The split layers that :func:`crossover_measures` compares: the default split
    (:func:`i2s.edits.default_crossover_layer`, L/2: the paper's 9 of 18) and two layers either
    side (L/2 − 2: less from the content, L/2 + 2: more), kept inside [1, L − 1]."""
    from ..edits import default_crossover_layer

    k = default_crossover_layer(num_layers)
    return sorted({min(max(v, 1), num_layers - 1) for v in (k - 2, k, k + 2)})


def colour_stats(images: torch.Tensor) -> np.ndarray:
    """Per image, the mean and standard deviation of each RGB channel in 0-255 units: [N, 6]
    (R, G, B means, then R, G, B standard deviations)."""
    x = (images.detach().double().cpu().clamp(-1, 1) + 1) * 127.5
    return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1).numpy()


def colour_distance(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per pair ``a[i]``, ``b[i]``: the Euclidean distance of their :func:`colour_stats` (0-255
    units). A colour-statistics distance: how far the palettes and contrasts are apart, blind to
    where the colours are (no Gram matrices, no histogram)."""
    return np.linalg.norm(colour_stats(a) - colour_stats(b), axis=1)


def crossover_measures(s: Session, content_names: Sequence[str], w_content: torch.Tensor, style_names: Sequence[str],
                       w_style: torch.Tensor, style_images: torch.Tensor, splits: Sequence[int] | None = None) -> pd.DataFrame:
    """§4.2 measured: does a crossover keep the content's face and take the style's look?

    One row per content x style x split layer k (the first k rows of W+ from the content, the rest
    from the style; ``splits`` default :func:`crossover_splits`):

    * ``identity_to_content``: dlib's face-descriptor distance (:mod:`i2s.identity`) between the
      crossover and the content's own embedding G(w_content) — below 0.6 (``same_person``) dlib
      takes them for the same person;
    * ``colour_to_style``: :func:`colour_distance` (per-channel mean and standard deviation in
      0-255 units) between the crossover and the style image (the input painting);
    * ``colour_content_to_style``: the same distance for the content embedding itself, the
      baseline, and ``colour_gain`` = baseline − ``colour_to_style`` (> 0: the crossover moved
      towards the style's colours);
    * ``face_score`` (:func:`i2s.identity.face_score`; ``face_detected``: >= 0) and
      ``content_kept``: a face is detected *and* it is the content's person (the other half of
      §4.2's claim: a crossover that takes the colours but loses the face is no style transfer).
    """
    from ..edits import default_crossover_layer
    from ..identity import SAME_PERSON

    n_layers = w_content.shape[-2]
    splits = crossover_splits(n_layers) if splits is None else list(splits)
    n_c, n_s = len(content_names), len(style_names)
    content = render(s, w_content)  # [C, 3, H, W]
    ref = np.tile(_descriptors(content, s.zoom), (n_s, 1))  # flat index: style i, content j -> i * C + j
    styles_flat = style_images.repeat_interleave(n_c, 0)
    baseline = colour_distance(content.repeat(n_s, 1, 1, 1), styles_flat)
    rows = []
    for k in splits:
        flat = crossover_grid(s, w_style, w_content, k).flatten(0, 1)
        ident = np.linalg.norm(_descriptors(flat, s.zoom) - ref, axis=1)
        score = _face_scores(flat, s.zoom)
        colour = colour_distance(flat, styles_flat)
        for i, style in enumerate(style_names):
            for j, name in enumerate(content_names):
                f = i * n_c + j
                rows.append({"content": name, "style": style, "split_layer": k,
                             "default_split": k == default_crossover_layer(n_layers),
                             "content_layers": f"0-{k - 1} of {n_layers}", "identity_to_content": float(ident[f]),
                             "same_person": bool(ident[f] < SAME_PERSON), "face_score": float(score[f]),
                             "face_detected": bool(score[f] >= 0),
                             "content_kept": bool(ident[f] < SAME_PERSON and score[f] >= 0),
                             "colour_to_style": float(colour[f]),
                             "colour_content_to_style": float(baseline[f]),
                             "colour_gain": float(baseline[f] - colour[f])})
    return pd.DataFrame(rows)


def expression_rows(s: Session, w_targets: torch.Tensor, w_neutral: torch.Tensor, w_expressive: torch.Tensor,
                    lams: Sequence[float], rule: ExpressionRule | None = None) -> torch.Tensor:
    """§4.3 / Fig. 7: each target moved along the (thresholded) neutral → expressive direction
    by each λ (negative λ: the opposite direction); ``rule`` defaults to :func:`expression_rule`
    of the session's generator. Returns [targets, len(lams), 3, H, W]."""
    from ..edits import expression_transfer

    rule = rule or expression_rule(s.G)
    lam = torch.tensor(list(lams), dtype=w_targets.dtype)
    return torch.stack([render(s, expression_transfer(w, w_neutral, w_expressive, lam, rule.threshold,
                                                      rule.normalize, rule.relative))  # type: ignore[arg-type]
                        for w in w_targets])




def expression_smile(s: Session, people: Sequence[str], w_neutral: torch.Tensor, w_smiling: torch.Tensor,
                     lams: Sequence[float], rule: ExpressionRule | None = None, average: bool = False) -> pd.DataFrame:
    """§4.3 measured: does neutral → smiling transfer make *other* people smile?

    Every person's pair (``source``: direction from ``w_smiling[p] − w_neutral[p]`` under
    ``rule``, the paper's protocol) is applied to every other person's neutral embedding
    (``target``) at each λ of ``lams`` and at λ = 0 (the target's own embedding, the reference).
    ``average=True`` instead gives each target one source: the mean of the *other* people's
    pairs (``mean(w3) − mean(w2)``, so what the pairs share, the smile, adds up and each
    person's own differences average out; our extension, not the paper's).
    One row per source, target and λ: ``smile_ratio`` (mouth-corner distance over eye distance
    from dlib's 68 landmarks, :func:`i2s.identity.smile_ratio`; a smile widens the mouth, so it
    grows), ``delta_smile_ratio`` (minus the same target's λ = 0 value), ``identity_distance``
    (dlib descriptor distance to the target's λ = 0 image; below 0.6 the edit kept the person)
    ``face_score`` / ``face_detected`` (:func:`i2s.identity.face_score`: is the result still a
    face?) and ``source_kind`` (:data:`PAIR` or :data:`AVERAGE`)."""
    from ..edits import expression_transfer

    rule = rule or expression_rule(s.G)
    lam_all = sorted({float(l) for l in lams} | {0.0})
    ref, n_lam = lam_all.index(0.0), len(lam_all)
    lam_t = torch.tensor(lam_all, dtype=w_neutral.dtype)
    keys, codes = [], []
    for q, target in enumerate(people):
        sources = [(f"mean of {len(people) - 1} others", [p for p in range(len(people)) if p != q])] if average \
            else [(source, [p]) for p, source in enumerate(people) if p != q]
        for name, ps in sources:
            codes.append(expression_transfer(w_neutral[q], w_neutral[ps].mean(0), w_smiling[ps].mean(0), lam_t,
                                             rule.threshold, rule.normalize, rule.relative))  # type: ignore[arg-type]
            keys.append((name, target))
    if not codes:
        raise ValueError(f"need at least two expression pairs, got {len(people)}")
    images = render(s, torch.stack(codes))  # [pairs, λ, 3, H, W]
    flat = images.flatten(0, 1)
    smile = _smile_ratios(flat, s.zoom).reshape(len(keys), n_lam)
    desc = _descriptors(flat, s.zoom).reshape(len(keys), n_lam, -1)
    ident = np.linalg.norm(desc - desc[:, ref:ref + 1], axis=-1)
    score = _face_scores(flat, s.zoom).reshape(len(keys), n_lam)
    rows = [{"source": src, "target": tgt, "lam": lam, "smile_ratio": float(smile[k, m]),
             "delta_smile_ratio": float(smile[k, m] - smile[k, ref]), "identity_distance": float(ident[k, m]),
             "face_score": float(score[k, m]), "face_detected": bool(score[k, m] >= 0),
             "source_kind": AVERAGE if average else PAIR,
             "rule": "relative" if rule.relative else "absolute", "threshold": rule.threshold,
             "normalize": rule.normalize}
            for k, (src, tgt) in enumerate(keys) for m, lam in enumerate(lam_all)]
    return pd.DataFrame(rows)


def smile_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The claim behind Fig. 7, decided from :func:`expression_smile`'s table: per source kind,
    per λ ≠ 0 and pooled over all λ > 0 (each source/target pair's mean), the Δ smile ratio (λ
    minus λ = 0): its mean, standard deviation and range over the source/target pairs, and
    :func:`smile_comparison`'s interval and verdict. With the identity distance to the target
    beside it (the edit should change the expression, not the person)."""
    from ..identity import SAME_PERSON

    kinds = table["source_kind"].unique() if "source_kind" in table else [PAIR]
    rows = []
    for kind in kinds:
        of_kind = table[table["source_kind"] == kind] if "source_kind" in table else table
        scopes = [(f"λ={lam:g}", lam) for lam in sorted(of_kind["lam"].unique()) if lam != 0]
        for scope, lam in scopes + [("mean over λ>0", None)]:
            sub = of_kind[of_kind["lam"] > 0] if lam is None else of_kind[of_kind["lam"] == lam]
            if sub.empty:
                continue
            done = smile_comparison(of_kind, lam)
            row = {"source_kind": kind, "scope": scope, "lam": float("nan") if lam is None else lam,
                   "direction": "less" if lam is not None and lam < 0 else "greater",
                   "mean_identity_distance": float(sub["identity_distance"].mean()),
                   "share_same_person": float((sub["identity_distance"] < SAME_PERSON).mean())}
            if done is None:
                row.update(n_pairs=len(sub.groupby(["source", "target"])), verdict="not measured")
            else:
                c, per_pair = done
                d = per_pair["delta"].to_numpy()
                row.update(n_pairs=len(d), n_targets=per_pair.index.get_level_values("target").nunique(),
                           mean_delta=float(np.mean(d)),
                           std_delta=float(np.std(d, ddof=1)) if len(d) > 1 else float("nan"),
                           min_delta=float(np.min(d)), max_delta=float(np.max(d)),
                           low=c.low, high=c.high, wins=c.wins, verdict=c.verdict)
            rows.append(row)
    return pd.DataFrame(rows)


def load_expression_pairs(s: Session) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """(people, neutral images, smiling images), aligned like the generator's training faces."""
    from ..data import expression_pairs, load_target

    people, neutral, smiling = [], [], []
    for person, n, m in expression_pairs():
        try:
            a, b = load_target(n, s.G.resolution, s.zoom), load_target(m, s.G.resolution, s.zoom)
        except ValueError as e:
            print(f"[i2s] skipped {person}: {e}")
            continue
        people.append(person)
        neutral.append(a)
        smiling.append(b)
    return people, torch.cat(neutral), torch.cat(smiling)


def load_styles(s: Session) -> tuple[list[str], torch.Tensor]:
    """The style images (painted faces and paintings), centre-cropped."""
    from ..data import load_target, style_images

    items = style_images()
    return [i.name for i in items], torch.cat([load_target(i, s.G.resolution, s.zoom, align=False) for i in items])


@dataclass
class EmbeddedClasses:
    """The evaluation set embedded into W+: the codes that notebook 05 edits."""

    names: list[str]
    labels: list[str]
    images: torch.Tensor  # [N, 3, H, W]
    w_plus: torch.Tensor  # [N, layers, 512]

    @property
    def faces(self) -> list[int]:
        """Indices of the faces."""
        return [i for i, c in enumerate(self.labels) if is_face(c)]

    @property
    def others(self) -> list[int]:
        """Index of the first image of each class that is not faces."""
        return [i for i in first_of_each_class(self.labels) if not is_face(self.labels[i])]


def embed_classes(s: Session) -> EmbeddedClasses:
    """Every image of the evaluation set embedded with the session's settings (cached)."""
    names, labels, imgs = load_classes(s)
    return EmbeddedClasses(names, labels, imgs, s.embed(imgs).w_plus)


@dataclass
class Morphing(Result):
    """§4.1 / Fig. 4 / Fig. 15: morphs within faces and across classes, and how smooth they are."""

    figure: Figure = figure_output("fig04_morphing")
    smoothness: pd.DataFrame = table_output("morph_smoothness")  # per morph: morph_smoothness + morph_faces
    frames: torch.Tensor  # [pairs, frames, 3, H, W]
    labels: list[str]  # "A → B" per morph


def morph_pairs(labels: Sequence[str], faces_are: Callable[[str | None], bool] = is_face
                ) -> tuple[list[tuple[int, int]], list[int]]:
    """Which images §4.1's measures morph: every pair of faces (the generator's in-domain images,
    ``faces_are``: :func:`i2s.data.in_domain`); for each other class its first two
    images (within the class) and its first image with the next class's (between classes); one
    face to the last other class. Returns (pairs, the rows the figure shows: three face pairs, one
    within a class, one between classes and the face → other morph, as Fig. 4's rows)."""
    faces = [i for i, c in enumerate(labels) if faces_are(c)]
    classes = [c for c in dict.fromkeys(labels) if not faces_are(c)]
    members = {c: [i for i, l in enumerate(labels) if l == c] for c in classes}
    face_pairs = [(a, b) for k, a in enumerate(faces) for b in faces[k + 1:]]
    within = [(m[0], m[1]) for m in members.values() if len(m) >= 2]
    between = [(members[a][0], members[b][0]) for a, b in zip(classes, classes[1:] + classes[:1]) if a != b]
    mixed = [(faces[0], members[classes[-1]][0])] if faces and classes else []
    pairs = face_pairs + within + between + mixed
    n_f, n_w = len(face_pairs), len(within)
    shown = list(range(min(3, n_f))) + [n_f + k for k in range(min(1, n_w))] \
        + [n_f + n_w + k for k in range(min(1, len(between)))] + ([len(pairs) - 1] if mixed else [])
    return pairs, shown


def morphing(s: Session, codes: EmbeddedClasses, frames: int = 7) -> Morphing:
    """Morphs (:func:`morph_pairs`: every pair of faces, non-faces within and between classes,
    a face to another class), each over ``frames`` values of λ from 1 to 0, measured by
    :func:`morph_smoothness` and :func:`morph_faces`; the figure shows Fig. 4's rows with the
    input photos at both ends and names the REPORT's verdicts in its title."""
    from ..plots import image_rows

    faces_are = in_domain(domain(s.G))
    pairs, shown = morph_pairs(codes.labels, faces_are)
    labels = [f"{codes.names[a]} → {codes.names[b]}" for a, b in pairs]
    rows = morph_rows(s, [(codes.w_plus[a], codes.w_plus[b]) for a, b in pairs], frames=frames)
    table = pd.concat([morph_smoothness(rows, labels), morph_faces(rows, s.zoom)], axis=1)
    lams = torch.linspace(1, 0, frames).tolist()
    grid = [torch.cat([codes.images[pairs[k][0]][None], rows[k], codes.images[pairs[k][1]][None]]) for k in shown]
    verdicts = "; ".join(f"{claim.split(' (§')[0]}: {'not measured' if c is None else c.verdict}"
                         for claim, c, _, _ in morph_claims(table, faces_are)[:2])
    fig = image_rows(grid, [labels[k] for k in shown], ["photo A"] + [f"λ={l:.2f}" for l in lams] + ["photo B"],
                     title="Fig. 4 / Fig. 15 (§4.1): morphing w = λ·w_A + (1 − λ)·w_B between embeddings, "
                           f"λ = 1 (A) to 0 (B); {len(shown)} of {len(pairs)} morphs shown.\nREPORT: {verdicts}")
    return Morphing(fig, table, rows, labels)


@dataclass
class StyleTransfer(Result):
    """§4.2 / Fig. 6 / Fig. 8: style transfer by crossover, and crossover between classes."""

    figure: Figure = figure_output("fig06_style_transfer")  # styles x faces
    classes_figure: Figure = figure_output("fig08_crossover_classes")  # other classes x three faces
    measures: pd.DataFrame = table_output("crossover_measures")  # content x style x split (:func:`crossover_measures`)
    style_names: list[str]
    w_style: torch.Tensor  # the style images' W+ codes

    @property
    def by_split(self) -> pd.DataFrame:
        """Mean identity distance to the content, share kept as the same person, and colour
        distances per split layer."""
        return self.measures.groupby("split_layer")[["identity_to_content", "same_person", "colour_to_style",
                                                      "colour_content_to_style", "colour_gain"]].mean()


def _kept_count(s: Session, images: torch.Tensor, reference: torch.Tensor) -> str:
    """"k of n": how many ``images`` are still the face of ``reference`` (same index): detected,
    and dlib's descriptor distance below 0.6; "unmeasured" where dlib cannot say."""
    from ..identity import SAME_PERSON

    ident = np.linalg.norm(_descriptors(images, s.zoom) - _descriptors(reference, s.zoom), axis=1)
    score = _face_scores(images, s.zoom)
    if np.isnan(ident).any() or np.isnan(score).any():
        return "unmeasured"
    return f"{int(((ident < SAME_PERSON) & (score >= 0)).sum())} of {len(images)}"


def style_transfer(s: Session, codes: EmbeddedClasses) -> StyleTransfer:
    """Embed the style images, then give every face the fine layers of every style (Fig. 6),
    and the first three faces the fine layers of each other class (Fig. 8); measure identity and
    colour per split layer (:func:`crossover_measures`)."""
    from ..edits import default_crossover_layer
    from ..plots import image_rows

    w, faces, others = codes.w_plus, codes.faces, codes.others
    n_layers = w.shape[-2]
    k = default_crossover_layer(n_layers)
    split = f"layers 0–{k - 1} of {n_layers} from the content (columns), {k}–{n_layers - 1} from the style (rows)"
    style_names, style_imgs = load_styles(s)
    w_style = s.embed(style_imgs).w_plus
    content = render(s, w[faces])
    face_names = [image_stem(codes.names[i]) for i in faces]
    measures = crossover_measures(s, [codes.names[i] for i in faces], w[faces], style_names, w_style, style_imgs)
    verdict = crossover_claims(measures)[0].short()
    grid = crossover_grid(s, w_style, w[faces])
    fig6 = image_rows([[None, *content]] + [torch.cat([style_imgs[j:j + 1], grid[j]]) for j in range(len(style_names))],
                      ["content: embedding"] + [f"style: {image_stem(n)}" for n in style_names],
                      ["style photo"] + face_names,
                      title=f"Fig. 6 (§4.2): style transfer by crossover — {split}\nREPORT: {verdict}")
    grid8 = crossover_grid(s, w[others], w[faces[:3]])
    kept8 = _kept_count(s, grid8.flatten(0, 1), content[:3].repeat(len(others), 1, 1, 1))
    other_emb = render(s, w[others])
    fig8 = image_rows([[None, *content[:3]]] + [torch.cat([other_emb[j:j + 1], grid8[j]]) for j in range(len(others))],
                      ["content: embedding"] + [f"{codes.labels[i]}: {image_stem(codes.names[i])}" for i in others],
                      ["other class: embedding"] + face_names[:3],
                      title=f"Fig. 8 (§4.2): crossover between classes — {split}\n"
                            f"content's face kept (detected, identity < 0.6) in {kept8} (not a REPORT claim)")
    return StyleTransfer(fig6, fig8, measures, style_names, w_style)


@dataclass
class ExpressionEditing(Result):
    """§4.3 / Fig. 7: expression transfer from a neutral / smiling pair, and whether it makes
    other people smile (:func:`expression_smile`, :func:`smile_summary`)."""

    figure: Figure = figure_output("fig07_expression")
    smile: pd.DataFrame = table_output("expression_smile")  # source x target x λ
    smile_summary: pd.DataFrame = table_output("expression_smile_summary")  # Δ smile ratio per λ, with its verdict
    people: list[str]  # the people of the expression pairs
    w_neutral: torch.Tensor
    w_smiling: torch.Tensor
    rule: ExpressionRule


def expression_editing(s: Session, codes: EmbeddedClasses,
                       lams: Sequence[float] = (-1, -0.5, 0, 0.5, 1)) -> ExpressionEditing:
    """Embed the expression pairs and move every face along the first pair's neutral → smiling
    direction by each λ (rule: :func:`expression_rule`; λ = 1 is that person's own change), and
    along the mean of all pairs; then measure the transfer between the pairs themselves
    (:func:`expression_smile`, one pair and the mean of the others) at the same λ values."""
    from ..edits import expression_direction
    from ..plots import image_rows

    people, neutral, smiling = load_expression_pairs(s)
    wn, wm = s.embed(neutral).w_plus, s.embed(smiling).w_plus
    rule = expression_rule(s.G)
    smile = pd.concat([expression_smile(s, people, wn, wm, lams, rule),
                       expression_smile(s, people, wn, wm, lams, rule, average=True)], ignore_index=True)
    up = expression_claims(smile, per_lam=False)[0]
    hold = lams_where_both_hold(smile)
    verdict = (f"smile up and person kept (mean over λ > 0): {up.short()}; both halves hold at "
               + (f"λ ∈ {{{', '.join(f'{l:g}' for l in hold)}}}" if hold else "no λ"))
    d = expression_direction(wn[0], wm[0], rule.threshold, rule.normalize, rule.relative)  # type: ignore[arg-type]
    kept, n_layers = int((d.norm(dim=-1) > 0).sum()), d.shape[-2]
    print(f"[i2s] expression direction from {people[0]}: {kept} of {n_layers} layer rows kept ({rule.describe()})")
    faces = codes.faces
    one = expression_rows(s, codes.w_plus[faces], wn[0], wm[0], lams, rule)
    mean = expression_rows(s, codes.w_plus[faces], wn.mean(0), wm.mean(0), lams, rule)
    grid = [torch.cat([codes.images[i][None], rows[k]]) for rows in (one, mean) for k, i in enumerate(faces)]
    grid.append(torch.stack([neutral[0], smiling[0]]))
    names = [image_stem(codes.names[i]) for i in faces]
    fig = image_rows(grid, [f"{n}, d: {people[0]}" for n in names] + [f"{n}, d: mean of {len(people)}" for n in names]
                     + [f"source: {people[0]}"],
                     ["target photo"] + [f"λ={l:g}" for l in lams],
                     cell_labels=[None] * (2 * len(faces)) + [["neutral photo", "smiling photo"]],
                     title=f"Fig. 7 (§4.3): expression transfer w = w1 + λ·d, d from {people[0]} neutral → smiling "
                           f"(paper) and from the mean of {len(people)} pairs (ours); "
                           f"{rule.describe()}: {kept} of {n_layers} rows kept for {people[0]}\nREPORT: {verdict}")
    return ExpressionEditing(fig, smile, smile_summary(smile), people, wn, wm, rule)


@dataclass
class ExplorerGrids(Result):
    """The explorer's slider values as static grids (what notebook 05 shows without a live kernel)."""

    morph: Figure = figure_output("fig05_widgets_morph")
    crossover: Figure = figure_output("fig05_widgets_crossover")
    expression: Figure = figure_output("fig05_widgets_expression")


def explore(s: Session, codes: EmbeddedClasses, styles: StyleTransfer, expressions: ExpressionEditing,
            interactive: bool = True) -> ExplorerGrids | HBox:
    """Notebook 05's explorer (:func:`i2s.widgets.explorer`): live sliders when ``interactive``,
    else the :class:`ExplorerGrids`, saved. The expression panel uses the same threshold rule
    as Fig. 7 (:func:`expression_rule`)."""
    from ..widgets import explorer

    shown = explorer(s, codes.w_plus, codes.labels, codes.names, styles.w_style, styles.style_names,
                     expressions.w_neutral, expressions.w_smiling, interactive=interactive, rule=expressions.rule)
    if interactive:
        return shown
    grids = ExplorerGrids(**shown)
    grids.save(s)
    return grids


@dataclass
class LatentDirections(Result):
    """Edit directions found from the generator alone (SeFa, GANSpace; :mod:`i2s.directions`):
    the top ones applied to an embedded face, as a grid, and what each moves."""

    directions: Any  # i2s.directions.Directions
    figure: Figure = figure_output("fig05_directions")
    table: pd.DataFrame = table_output("directions")


def latent_directions(s: Session, codes: EmbeddedClasses, method: str = "sefa", top: int = 5,
                      strengths: Sequence[float] = (-3, -1.5, 0, 1.5, 3)) -> LatentDirections:
    """The generator's ``top`` directions (``method`` "sefa": closed-form factorisation of the style
    affines, Shen & Zhou 2021; "ganspace": PCA of w, Härkönen et al. 2020) applied to the first
    embedded face by ``strengths`` standard deviations of w; the table gives each direction's score
    and the pixel RMS change (0-255) it makes at the largest strength."""
    from ..directions import apply, directions_for
    from ..plots import image_rows

    d = directions_for(s.G, method, k=max(16, top))
    face = next(i for i, lab in enumerate(codes.labels) if is_face(lab))
    w = codes.w_plus[face]
    rows, table = [], []
    with torch.no_grad():
        for k in range(top):
            imgs = s.G.synthesis(apply(w, d, k, torch.tensor(list(strengths))).to(s.device)).cpu()
            rows.append(imgs)
            change = ((imgs[-1] - imgs[len(strengths) // 2]) * 127.5).square().mean().sqrt().item()
            table.append({"direction": k, "method": method, "score": float(d.score[k]), "sigma": float(d.sigma[k]),
                          "layers": f"{d.layers[0]}-{d.layers[1] - 1}", f"rms_change_at_{max(strengths):g}std": change})
    fig = image_rows(rows, row_labels=[f"{method} {k}" for k in range(top)],
                     col_labels=[f"{v:+g} std" for v in strengths],
                     title=f"Directions from the generator alone ({method}; not in the paper), applied to {codes.names[face]}")
    return LatentDirections(d, fig, pd.DataFrame(table))
