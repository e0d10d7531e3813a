"""The paper's experiments as functions the notebooks call (no logic lives only in a notebook).

``session = Session.start(model=..., profile=..., ...)`` loads the generator and the loss,
prints which tier ran, and gives every experiment the same settings, cache and output folders:
figures under ``figures/<model>/``, numbers under ``results/<model>/<profile>/``.

Profiles: ``quick`` (the mini model on a CPU: few enough steps that all seven notebooks run in
about half an hour, enough that the pictures mean something) and ``paper`` (5000 steps, the
paper's settings; for a GPU and the official weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .cache import cached_embed
from .embed import EmbedResult
from .io import atomic_write_text, write_csv
from .loss import EmbeddingLoss, LossSettings
from .models import describe_tier, load_generator
from .stylegan import StyleGAN

REPO = Path(__file__).resolve().parents[1]

PROFILES: dict[str, dict] = {
    # steps: Algorithm 1 iterations per embedding; the paper uses 5000 (§5.3).
    # quick: sized so that all seven notebooks run in under 30 minutes on a 2-core CPU with mini
    # (measured ~28 min; each embedding of Fig. 11's seven rounds gets fewer steps than the rest).
    "quick": {"steps": 140, "ablation_steps": 90, "iterations": 7, "iterative_steps": 100, "curve_steps": 250,
              "noise_seeds": 3},
    "paper": {"steps": 5000, "ablation_steps": 5000, "iterations": 7, "iterative_steps": 5000, "curve_steps": 5000,
              "noise_seeds": 5},
}


@dataclass
class Session:
    """Everything one notebook run shares: generator, loss, settings, output folders."""

    G: StyleGAN
    loss_fn: EmbeddingLoss
    model: str
    profile: str
    steps: int
    seed: int
    device: str
    figures: Path
    results: Path
    params: dict = field(default_factory=dict)

    @classmethod
    def start(cls, model: str = "auto", profile: str = "quick", steps: int | None = None, device: str = "cpu",
              seed: int = 0, figures_dir: str | Path = REPO / "figures", results_dir: str | Path = REPO / "results",
              loss: LossSettings | None = None) -> "Session":
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
        G = load_generator(model, device=device)
        loss_fn = EmbeddingLoss(loss or LossSettings()).to(device)
        name = {"mini-faces64": "mini", "stylegan1-ffhq-1024": "ffhq"}.get(G.name, G.name)
        params = {**PROFILES[profile]}
        if steps is not None:  # one knob for every step count of the profile
            params.update(steps=steps, ablation_steps=steps, iterative_steps=steps, curve_steps=2 * steps)
        s = cls(G=G, loss_fn=loss_fn, model=name, profile=profile, steps=params["steps"], seed=seed, device=device,
                figures=Path(figures_dir) / name, results=Path(results_dir) / name / profile, params=params)
        s.figures.mkdir(parents=True, exist_ok=True)
        s.results.mkdir(parents=True, exist_ok=True)
        print(f"[i2s] generator: {G.name} ({describe_tier(G)}); perceptual network: {loss_fn.perceptual_net}; "
              f"profile {profile}: {s.steps} steps")
        return s

    @property
    def zoom(self) -> float:
        """The face framing the generator was trained with (FFHQ: 1.0; mini: 0.7)."""
        return float(self.G.info.get("align_zoom", 1.0))

    @property
    def tag(self) -> dict:
        """Written into every table: which generator and perceptual network produced it."""
        return {"model": self.G.name, "tier": self.G.info.get("tier"), "perceptual_net": self.loss_fn.perceptual_net,
                "profile": self.profile}

    def embed(self, images: torch.Tensor, steps: int | None = None, loss_fn: EmbeddingLoss | None = None,
              G: StyleGAN | None = None, **settings) -> EmbedResult:
        """Algorithm 1 with the session's defaults and the shared embedding cache."""
        settings.setdefault("seed", self.seed)
        return cached_embed(G or self.G, images.to(self.device), loss_fn=loss_fn or self.loss_fn,
                            steps=steps or self.steps, **settings)

    def save_table(self, df: pd.DataFrame, name: str) -> Path:
        """Save a table as CSV under results/<model>/<profile>/ with the session's tags added."""
        df = df.copy()
        for k, v in self.tag.items():
            df[k] = v
        path = self.results / f"{name}.csv"
        write_csv(path, df.to_dict("records"), list(df.columns))
        return path

    def save_json(self, obj: dict, name: str) -> Path:
        return atomic_write_text(self.results / f"{name}.json", json.dumps({**obj, **self.tag}, indent=2, default=str))

    def save_figure(self, fig, name: str) -> Path:
        """Save a matplotlib figure under figures/<model>/ (atomically, PNG)."""
        import io as _io

        from .io import atomic_write_bytes

        buf = _io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        return atomic_write_bytes(self.figures / f"{name}.png", buf.getvalue())


def result_table(names: Sequence[str], res: EmbedResult, **columns) -> pd.DataFrame:
    """Per-image numbers of an embedding run: L (paper units and ×1e5), ‖w* − w̄‖, PSNR."""
    df = pd.DataFrame({"image": list(names), "loss": res.loss.numpy(), "loss_x1e5": res.loss.numpy() / 1e5,
                       "dist_to_w_avg": res.dist_to_w_avg.numpy(), "psnr_db": res.psnr.numpy()})
    for k, v in columns.items():
        df[k] = v
    return df


# ----------------------------------------------------------------------------- §3.1, Fig. 1 / 17


def load_classes(s: Session, classes: Sequence[str] | None = None) -> tuple[list[str], list[str], torch.Tensor]:
    """The evaluation set (faces aligned with the generator's framing, others centre-cropped):
    (names, classes, images)."""
    from .data import CLASSES, load_class_batch

    names, labels, imgs = [], [], []
    for cls in classes or CLASSES:
        n, x = load_class_batch(cls, s.G.resolution, zoom=s.zoom)
        names += n
        labels += [cls] * len(n)
        imgs.append(x)
    return names, labels, torch.cat(imgs)


def class_embedding(s: Session, **embed_settings):
    """Fig. 1 / Fig. 17: embed every image of the five classes into W+ (w̄ init).

    Returns (per-image table, per-class summary, figure, names, labels, images, result)."""
    from .plots import image_rows

    names, labels, imgs = load_classes(s)
    res = s.embed(imgs, **embed_settings)
    df = result_table(names, res, **{"class": labels})
    summary = df.groupby("class", sort=False)[["loss_x1e5", "dist_to_w_avg", "psnr_db"]].mean().reset_index()
    rows, row_labels = [], []
    for cls in dict.fromkeys(labels):
        idx = [i for i, c in enumerate(labels) if c == cls]
        rows += [imgs[idx], res.images[idx]]
        row_labels += [f"{cls}: input", f"{cls}: embedded"]
    fig = image_rows(rows, row_labels, title=f"Embedding the five classes into W+ ({s.G.name}, {s.steps} steps)")
    return df, summary, fig, names, labels, imgs, res


# ----------------------------------------------------------------------------- §3.2, Fig. 2 / Table 1


def faces(s: Session) -> tuple[list[str], torch.Tensor]:
    from .data import load_class_batch

    return load_class_batch("faces", s.G.resolution, zoom=s.zoom)


def affine_robustness(s: Session):
    """Fig. 2 / Table 1: embed the faces after each affine transformation.

    Returns (per-image table, Table 1 beside the paper's, figure)."""
    from .plots import image_rows
    from .stress import TRANSFORMS, affine_transforms

    names, imgs = faces(s)
    inputs = {"original": imgs, **affine_transforms(imgs)}
    tables, outputs = [], {}
    for label, x in inputs.items():
        res = s.embed(x)
        outputs[label] = res.images
        tables.append(result_table(names, res, transform=label))
    df = pd.concat(tables, ignore_index=True)
    table1 = beside_paper(df, "transform", "table1_affine.csv", order=("original",) + TRANSFORMS)
    # Fig. 2 shows one face: inputs on top, embeddings below
    fig = image_rows([torch.stack([x[0] for x in inputs.values()]), torch.stack([y[0] for y in outputs.values()])],
                     ["input", "embedded"], list(inputs), title="Embedding transformed faces (Fig. 2)")
    return df, table1, fig


# ----------------------------------------------------------------------------- Fig. 3 / Table 3


def defects(s: Session):
    """Fig. 3 / Table 3: embed faces with eyes, nose, mouth (and combinations) removed.

    Besides L and ‖w* − w̄‖, measures whether the damage stays local (§3.2: "the embeddings of
    different facial features are independent of each other"): the mean squared difference, in
    0-255 units, between the embedding of the defective face and that of the intact face, inside
    the removed region and outside it. Returns (per-image table, Table 3 beside the paper's, figure)."""
    from .data import eval_images
    from .plots import image_rows
    from .stress import DEFECTS, NON_DEFECTIVE, aligned_face_and_landmarks, defect_inputs, defect_masks

    per_face, masks = [], []
    for item in eval_images(("faces",)):
        try:
            per_face.append((item.name, defect_inputs(item.path, s.G.resolution, zoom=s.zoom)))
            _, lm = aligned_face_and_landmarks(item.path, s.G.resolution, zoom=s.zoom)
            masks.append(defect_masks(lm, s.G.resolution))
        except ValueError as e:  # no face found: report and go on
            print(f"[i2s] skipped {item.name}: {e}")
    labels = (NON_DEFECTIVE,) + DEFECTS
    tables, shown, intact = [], {}, None
    for label in labels:
        x = torch.cat([d[label] for _, d in per_face])
        res = s.embed(x)
        df = result_table([n for n, _ in per_face], res, defect=label)
        if label == NON_DEFECTIVE:
            intact = res.images
        else:
            diff = ((res.images - intact) * 127.5).square().mean(1)  # [N, H, W], 0-255 units
            m = torch.from_numpy(np.stack([mk[label] for mk in masks]))
            df["mse_vs_intact_inside"] = [diff[k][m[k]].mean().item() for k in range(len(per_face))]
            df["mse_vs_intact_outside"] = [diff[k][~m[k]].mean().item() for k in range(len(per_face))]
        tables.append(df)
        shown[label] = (x[0], res.images[0])
    df = pd.concat(tables, ignore_index=True)
    table3 = beside_paper(df, "defect", "table3_defects.csv", order=labels)
    local = df.groupby("defect", sort=False)[["mse_vs_intact_inside", "mse_vs_intact_outside"]].mean()
    table3 = table3.merge(local.reset_index(), on="defect", how="left")
    fig = image_rows([torch.stack([shown[k][0] for k in labels]), torch.stack([shown[k][1] for k in labels])],
                     ["input", "embedded"], list(labels), title="Embedding defective faces (Fig. 3)")
    return df, table3, fig


def beside_paper(df: pd.DataFrame, key: str, paper_csv: str, order: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean L (×1e5) and ‖w* − w̄‖ per ``key`` beside the paper's table of the same name."""
    ours = df.groupby(key, sort=False)[["loss_x1e5", "dist_to_w_avg", "psnr_db"]].mean()
    ours.columns = ["ours_loss_x1e5", "ours_dist", "ours_psnr_db"]
    paper = pd.read_csv(REPO / "data" / "paper" / paper_csv).set_index(key)
    paper.columns = ["paper_" + ("loss_x1e5" if c == "loss_x1e5" else "dist") for c in paper.columns]
    out = ours.join(paper, how="left")
    if order is not None:
        out = out.reindex([k for k in order if k in out.index])
    return out.reset_index()


# ----------------------------------------------------------------------------- §3.3 / §5.1


def latent_space_choice(s: Session, names: Sequence[str], labels: Sequence[str], imgs: torch.Tensor):
    """Fig. 5 / Fig. 14: one image per class embedded (b) into W of a random-weights generator,
    (c) into W from w̄, (d) into W from a random code, (e) into W+ of the random-weights generator,
    (f) into W+ from w̄, (g) into W+ from a random code. Returns (table, figure)."""
    from .plots import image_rows
    from .stylegan import random_weights

    first = [labels.index(c) for c in dict.fromkeys(labels)]
    x = imgs[first]
    R = random_weights(s.G, seed=s.seed)
    columns = {
        "(b) W, random weights": dict(space="w", G=R),
        "(c) W, w̄ init": dict(space="w"),
        "(d) W, random init": dict(space="w", init="uniform"),
        "(e) W+, random weights": dict(space="w+", G=R),
        "(f) W+, w̄ init": dict(space="w+"),
        "(g) W+, random init": dict(space="w+", init="uniform"),
    }
    outs, tables = {}, []
    for label, kw in columns.items():
        res = s.embed(x, **kw)
        outs[label] = res.images
        tables.append(result_table([names[i] for i in first], res, setting=label, **{"class": [labels[i] for i in first]}))
    rows = [torch.stack([x[k]] + [outs[c][k] for c in columns]) for k in range(len(first))]
    fig = image_rows(rows, [labels[i] for i in first], ["(a) input"] + list(columns),
                     title="Which latent space? W vs W+, w̄ vs random init, random weights (Fig. 5 / 14)")
    return pd.concat(tables, ignore_index=True), fig


def init_per_class(s: Session, names: Sequence[str], labels: Sequence[str], imgs: torch.Tensor,
                   mean_result: EmbedResult | None = None):
    """Table 2: W+ embeddings from w̄ vs from U[-1, 1], mean L and ‖w* − w̄‖ per class."""
    tables = []
    for init in ("mean", "uniform"):
        res = mean_result if (init == "mean" and mean_result is not None) else s.embed(imgs, init=init)
        tables.append(result_table(names, res, init=init, **{"class": list(labels)}))
    df = pd.concat(tables, ignore_index=True)
    ours = df.groupby(["class", "init"], sort=False)[["loss_x1e5", "dist_to_w_avg", "psnr_db"]].mean()
    ours.columns = ["ours_loss_x1e5", "ours_dist", "ours_psnr_db"]
    paper = pd.read_csv(REPO / "data" / "paper" / "table2_init.csv").set_index(["class", "init"])
    paper.columns = ["paper_loss_x1e5", "paper_dist"]
    return df, ours.join(paper, how="left").reset_index()


def noise_variation(s: Session, image: torch.Tensor, seeds: Sequence[int] = (0, 1, 2)):
    """Fig. 16: the same face embedded with different constant noise maps (the stored noise
    buffers re-drawn with each seed). Returns (table, figure)."""
    import copy

    from .plots import image_rows

    outs, rows = [], []
    for seed in seeds:
        Gn = copy.deepcopy(s.G)
        g = torch.Generator().manual_seed(seed)
        for layer in Gn.synthesis.layers:
            buf = layer.epilogue.noise_const
            buf.copy_(torch.randn(buf.shape, generator=g).to(buf))
        Gn.info = {**s.G.info, "name": f"{s.G.name}-noise{seed}"}
        Gn.info.pop("weights_sha256", None)
        res = s.embed(image, G=Gn)
        outs.append(res.images[0])
        rows.append({"noise_seed": seed, "loss_x1e5": res.loss[0].item() / 1e5, "dist_to_w_avg": res.dist_to_w_avg[0].item(),
                     "psnr_db": res.psnr[0].item()})
    fig = image_rows([torch.stack([image[0]] + outs)], None, ["input"] + [f"noise seed {k}" for k in seeds],
                     title="Embedding with different constant noise (Fig. 16)")
    return pd.DataFrame(rows), fig


# ----------------------------------------------------------------------------- §4 applications


def morph_rows(s: Session, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], frames: int = 7) -> torch.Tensor:
    """§4.1 / Fig. 4: for each (w1, w2) pair of W+ codes, ``frames`` images from λ = 1 (w1) to 0 (w2).
    Returns [pairs, frames, 3, H, W]."""
    from .edits import morph

    lams = torch.linspace(1.0, 0.0, frames)
    with torch.no_grad():
        return torch.stack([s.G.synthesis(morph(w1, w2, lams).to(s.device)).cpu() for w1, w2 in pairs])


def crossover_grid(s: Session, w_styles: torch.Tensor, w_contents: torch.Tensor, layer: int | None = None) -> torch.Tensor:
    """§4.2 / Fig. 6 / Fig. 8: image [i, j] keeps the coarse layers of content j and takes the
    fine layers of style i. Returns [styles, contents, 3, H, W]."""
    from .edits import crossover

    with torch.no_grad():
        return torch.stack([s.G.synthesis(crossover(w_contents, ws.expand_as(w_contents), layer).to(s.device)).cpu()
                            for ws in w_styles])


def expression_rows(s: Session, w_targets: torch.Tensor, w_neutral: torch.Tensor, w_expressive: torch.Tensor,
                    lams: Sequence[float], threshold: float = 1.0, normalize: str = "global") -> torch.Tensor:
    """§4.3 / Fig. 7: each target moved along the (thresholded, normalised) neutral → expressive
    direction by each λ (negative λ: the opposite direction). Returns [targets, len(lams), 3, H, W]."""
    from .edits import expression_transfer

    lam = torch.tensor(list(lams), dtype=w_targets.dtype)
    with torch.no_grad():
        return torch.stack([s.G.synthesis(expression_transfer(w, w_neutral, w_expressive, lam, threshold, normalize)
                                          .to(s.device)).cpu() for w in w_targets])


def load_expression_pairs(s: Session) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """(people, neutral images, smiling images), aligned like the generator's training faces."""
    from .data import expression_pairs, load_target

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
    from .data import load_target, style_images

    items = style_images()
    return [i.name for i in items], torch.cat([load_target(i, s.G.resolution, s.zoom, align=False) for i in items])


# ----------------------------------------------------------------------------- Fig. 20


def pairwise_distances(names: Sequence[str], labels: Sequence[str], w_plus: torch.Tensor):
    """Fig. 20: L2 distances between all W+ embeddings; intra- and inter-class means.
    Returns (distance matrix, per-class-pair mean table, figure)."""
    from .plots import distance_heatmap

    flat = w_plus.flatten(1).double()
    dist = torch.cdist(flat, flat).numpy()
    classes = list(dict.fromkeys(labels))
    lab = pd.Series(list(labels))
    rows = []
    for a in classes:
        for b in classes:
            ia, ib = lab.index[lab == a].to_numpy(), lab.index[lab == b].to_numpy()
            block = dist[np.ix_(ia, ib)]
            vals = block[~np.eye(len(ia), dtype=bool)] if a == b else block.ravel()
            rows.append({"class_a": a, "class_b": b, "kind": "intra" if a == b else "inter", "mean_dist": float(vals.mean())})
    fig = distance_heatmap(dist, [n.split("/")[-1][:18] for n in names])
    return dist, pd.DataFrame(rows), fig


# ----------------------------------------------------------------------------- §5


def loss_ablation(s: Session, names: Sequence[str], labels: Sequence[str], imgs: torch.Tensor):
    """Fig. 9 / Fig. 22: one image per class embedded with each loss variant.

    Returns (table, figure). L is always measured with the full loss (Eq. 1), so the variants
    can be compared; PSNR beside it."""
    from .loss import VARIANTS, EmbeddingLoss, LossSettings
    from .metrics import ssim
    from .plots import image_rows

    order = ["mse", "conv3_2", "mse+conv3_2", "perceptual", "full"]
    assert set(order) == set(VARIANTS)
    first = [labels.index(c) for c in dict.fromkeys(labels)]
    x = imgs[first]
    vgg = s.loss_fn.slices  # reuse the loaded VGG: rebuild the full feature stack from the session's slices
    full_vgg = torch.nn.Sequential(*[m for sl in vgg for m in sl])
    outs, rows = {}, []
    for variant in order:
        lf = EmbeddingLoss(LossSettings(variant=variant), vgg=full_vgg, vgg_label=s.loss_fn.perceptual_net).to(s.device)
        res = s.embed(x, steps=s.params["ablation_steps"], loss_fn=lf)
        outs[variant] = res.images
        with torch.no_grad():
            full_l = s.loss_fn(res.images.to(s.device), x.to(s.device)).cpu()
        q = ssim(res.images, x)
        for k, i in enumerate(first):
            rows.append({"image": names[i], "class": labels[i], "variant": variant, "full_loss_x1e5": full_l[k].item() / 1e5,
                         "psnr_db": res.psnr[k].item(), "ssim": q[k].item()})
    grid = [torch.stack([x[k]] + [outs[v][k] for v in order]) for k in range(len(first))]
    fig = image_rows(grid, [labels[i] for i in first], ["input", "MSE only", "conv3_2 only", "MSE + conv3_2",
                                                         "perceptual (Eq. 2)", "full (Eq. 1)"],
                     title="Loss ablation (Fig. 9)")
    return pd.DataFrame(rows), fig


def iterative_embedding(s: Session, x: torch.Tensor, row_labels: Sequence[str], times: int = 7):
    """Fig. 11: embed, take the embedding as the new input, repeat ``times`` times, each round with
    the profile's ``iterative_steps``. Returns (table, figure)."""
    from .plots import image_rows

    current, cols, rows = x, [x], []
    for k in range(1, times + 1):
        res = s.embed(current.clamp(-1, 1), steps=s.params.get("iterative_steps", s.steps))
        current = res.images
        cols.append(current)
        for j, name in enumerate(row_labels):
            rows.append({"image": name, "iteration": k, "loss_x1e5": res.loss[j].item() / 1e5, "psnr_vs_original_db":
                         float(10 * torch.log10(4 / ((current[j].clamp(-1, 1) - x[j]).square().mean()))),
                         "dist_to_w_avg": res.dist_to_w_avg[j].item()})
    grid = [torch.stack([c[j] for c in cols]) for j in range(len(row_labels))]
    fig = image_rows(grid, list(row_labels), ["original"] + [f"×{k}" for k in range(1, times + 1)],
                     title="Iterative embedding (Fig. 11)")
    return pd.DataFrame(rows), fig


def loss_vs_steps(s: Session, names: Sequence[str], labels: Sequence[str], imgs: torch.Tensor):
    """Fig. 10: the loss against the number of steps, one image per class, over ``curve_steps``.
    Returns (table of steps-to-convergence per class, figure). Convergence: the first step whose
    loss is within 5 % (of the total drop) of the final loss."""
    from .plots import loss_curves

    first = [labels.index(c) for c in dict.fromkeys(labels)]
    res = s.embed(imgs[first], steps=s.params["curve_steps"])
    curves = {labels[i]: res.loss_curve[:, k].numpy() for k, i in enumerate(first)}
    rows = []
    for cls, c in curves.items():
        drop = c[0] - c[-1]
        conv = int(np.argmax(c - c[-1] <= 0.05 * drop)) + 1 if drop > 0 else 1
        rows.append({"class": cls, "image": names[labels.index(cls)], "start_loss_x1e5": c[0] / 1e5,
                     "final_loss_x1e5": c[-1] / 1e5, "steps_to_95pct": conv})
    return pd.DataFrame(rows), loss_curves(curves)


def resize_trick(s: Session, x: torch.Tensor, labels: Sequence[str]):
    """Fig. 12: the perceptual loss on images shrunk to 256 x 256 vs on the full resolution.
    Only meaningful above 256 px (the official 1024-px model); returns None below."""
    from .loss import EmbeddingLoss, LossSettings
    from .plots import image_rows

    if s.G.resolution <= 256:
        print(f"[i2s] Fig. 12 needs a generator above 256 px; {s.G.name} is {s.G.resolution} px, so the perceptual "
              "loss already sees the full image. Run this notebook with model='ffhq'.")
        return None, None
    full_vgg = torch.nn.Sequential(*[m for sl in s.loss_fn.slices for m in sl])
    native = EmbeddingLoss(LossSettings(resize=None), vgg=full_vgg, vgg_label=s.loss_fn.perceptual_net).to(s.device)
    a, b = s.embed(x), s.embed(x, loss_fn=native)
    df = pd.concat([result_table(list(labels), a, perceptual="resized to 256"),
                    result_table(list(labels), b, perceptual=f"full {s.G.resolution}")], ignore_index=True)
    fig = image_rows([torch.stack([x[k], a.images[k], b.images[k]]) for k in range(len(x))], list(labels),
                     ["original", "perceptual at 256", f"perceptual at {s.G.resolution}"], title="The resize trick (Fig. 12)")
    return df, fig
