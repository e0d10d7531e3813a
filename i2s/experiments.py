"""The paper's experiments as functions the notebooks call (no logic lives only in a notebook).

``session = Session.start(model=..., profile=..., ...)`` loads the generator and the loss,
prints which tier ran, and gives every experiment the same settings, cache and output folders:
figures under ``figures/<model>/``, numbers under ``results/<model>/<profile>/``.

Every experiment returns a named result (a dataclass such as :class:`ClassEmbedding`) whose
figure and table fields carry the file names they are saved under; ``result.save(session)``
writes them all. :data:`NOTEBOOK_RESULTS` lists which results each notebook produces, and
:func:`expected_outputs` derives from it the files a complete run must leave behind (what
:mod:`i2s.report` checks), so every output name is written down exactly once.

Profiles (:data:`PROFILES`): ``quick`` (the mini model on a CPU: few enough steps that all
seven notebooks run in about half an hour, enough that the pictures mean something), ``full``
(1000 steps: this CPU's longer run, hours) and ``paper`` (5000 steps, the paper's settings; for a
GPU and the official weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np
import pandas as pd
import torch

from .data import image_stem, is_face
from .embed import EmbedResult
from .io import atomic_write_text, write_csv
from .loss import EmbeddingLoss, LossSettings
from .models import describe_tier, load_generator, short_name
from .runner import cached_embed
from .stylegan import StyleGAN

if TYPE_CHECKING:
    from ipywidgets import HBox
    from matplotlib.figure import Figure

    from .metrics import ImageMetrics
    from .stats import Comparison

REPO = Path(__file__).resolve().parents[1]

PROFILES: dict[str, dict] = {
    # steps: Algorithm 1 iterations per embedding; the paper uses 5000 (§5.3).
    # quick: sized so that all seven notebooks run in under 30 minutes on a 2-core CPU with mini
    # (measured 21 min on the AVX-512 Xeon, 2026-12-02; each of Fig. 11's seven rounds gets fewer steps).
    # init_seeds: seeds of the random (U[-1, 1]) start of Table 2, each image embedded once per seed.
    "quick": {"steps": 140, "ablation_steps": 90, "iterations": 7, "iterative_steps": 100, "curve_steps": 250,
              "noise_seeds": 3, "init_seeds": 3},
    # full: this CPU's longer run (issue 17): 1000 steps per embedding, ~7x the quick profile's compute
    # (several hours on 2 cores; resumable through the embedding cache).
    "full": {"steps": 1000, "ablation_steps": 1000, "iterations": 7, "iterative_steps": 1000, "curve_steps": 1000,
             "noise_seeds": 5, "init_seeds": 3},
    "paper": {"steps": 5000, "ablation_steps": 5000, "iterations": 7, "iterative_steps": 5000, "curve_steps": 5000,
              "noise_seeds": 5, "init_seeds": 3},
}


#: The perceptual network of the plain ``<profile>`` folders: what ``auto`` resolves to without
#: the ImageNet VGG-16 file, the network of every committed run.
PLAIN_FOLDER_NET = "vgg16-random"


def run_folder(profile: str, perceptual_net: str = PLAIN_FOLDER_NET) -> str:
    """The results folder name of a run, named by the network that ran (the resolved
    ``perceptual_net``, never ``auto``, so no folder holds two networks' results): the profile for
    :data:`PLAIN_FOLDER_NET`, else ``<profile>-<short name>`` (``quick-efficientnet-lite0``,
    ``quick-vgg16-imagenet``)."""
    from .loss import PERCEPTUAL_NETS

    return profile if perceptual_net == PLAIN_FOLDER_NET else f"{profile}-{PERCEPTUAL_NETS.get(perceptual_net, perceptual_net)}"


def figures_folder(figures_dir: str | Path, model: str, run: str) -> Path:
    """Where a run's figures go: ``figures/<model>/`` for the quick profile with the default
    network (what CI and ``make reproduce`` regenerate), ``figures/<model>/<run>/`` for every
    other run (``full``, ``quick-efficientnet-lite0``), so no run overwrites another's figures."""
    return Path(figures_dir) / model / ("" if run == "quick" else run)


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
              loss: LossSettings | None = None, perceptual: str = "auto") -> "Session":
        """``perceptual``: the network of Eq. 1's perceptual part, ``auto`` (ImageNet VGG-16 when
        its weights are cached, else ``vgg16-random``) or ``efficientnet-lite0`` (:mod:`i2s.loss`).
        The folders are named by the network that ran (:func:`run_folder`): ``vgg16-random`` in the
        committed ``<profile>`` folders, any other in ``<profile>-<network>`` folders of its own,
        which REPORT.md's sensitivity table compares."""
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
        G = load_generator(model, device=device)
        loss_fn = EmbeddingLoss(loss or LossSettings(), perceptual).to(device)
        name = short_name(G)
        run = run_folder(profile, loss_fn.perceptual_net)
        params = {**PROFILES[profile]}
        if steps is not None:  # one knob for every step count of the profile
            params.update(steps=steps, ablation_steps=steps, iterative_steps=steps, curve_steps=2 * steps)
        s = cls(G=G, loss_fn=loss_fn, model=name, profile=profile, steps=params["steps"], seed=seed, device=device,
                figures=figures_folder(figures_dir, name, run),
                results=Path(results_dir) / name / run, params=params)
        s.figures.mkdir(parents=True, exist_ok=True)
        s.results.mkdir(parents=True, exist_ok=True)
        print(f"[i2s] generator: {G.name} ({describe_tier(G)}); perceptual network: {loss_fn.perceptual_net}; "
              f"profile {profile}: {s.steps} steps")
        return s

    @cached_property
    def measure(self) -> "ImageMetrics":
        """The per-image metrics of every result table (:class:`i2s.metrics.ImageMetrics`)."""
        from .metrics import ImageMetrics

        return ImageMetrics(self.loss_fn.perceptual_net, self.zoom, self.device)

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


# ----------------------------------------------------------------------------- named results

OutputKind = Literal["figure", "table"]


def figure_output(name: str, required: bool = True) -> Any:
    """A result field holding a matplotlib figure, saved as ``figures/<model>/<name>.png``.
    ``required=False``: the experiment may leave it ``None`` (then nothing is written)."""
    return field(metadata={"output": "figure", "name": name, "required": required})


def table_output(name: str, required: bool = True) -> Any:
    """A result field holding a DataFrame, saved as ``results/<model>/<profile>/<name>.csv``."""
    return field(metadata={"output": "table", "name": name, "required": required})


class Result:
    """Base of the experiments' results (each a dataclass). Fields declared with :func:`figure`
    or :func:`table` are outputs with a file name; the other fields carry what a later cell
    needs (images, latents, names)."""

    @classmethod
    def outputs(cls, required_only: bool = False) -> list[tuple[str, OutputKind, str]]:
        """``(field, kind, file name)`` of every output field, in declaration order."""
        return [(f.name, f.metadata["output"], f.metadata["name"]) for f in fields(cls)  # type: ignore[arg-type]
                if "output" in f.metadata and (f.metadata["required"] or not required_only)]

    @classmethod
    def output_name(cls, field_name: str) -> str:
        """The file name (without extension) that the output field ``field_name`` is saved under."""
        for name, _, file_name in cls.outputs():
            if name == field_name:
                return file_name
        raise KeyError(f"{cls.__name__} has no output field {field_name!r}")

    def save(self, s: Session) -> list[Path]:
        """Write every output that is not ``None`` through the session; returns the paths."""
        paths = []
        for name, kind, file_name in self.outputs():
            value = getattr(self, name)
            if value is not None:
                paths.append(s.save_figure(value, file_name) if kind == "figure" else s.save_table(value, file_name))
        return paths


def first_of_each_class(labels: Sequence[str]) -> list[int]:
    """Index of the first image of each class, in class order (the one-image-per-class subsets)."""
    return [list(labels).index(c) for c in dict.fromkeys(labels)]


def result_table(names: Sequence[str], res: EmbedResult, targets: torch.Tensor | None = None,
                 measure: "ImageMetrics | None" = None, **columns) -> pd.DataFrame:
    """Per-image numbers of an embedding run: L (paper units and ×1e5), ‖w* − w̄‖, PSNR, and with
    ``targets`` and ``measure`` the columns of :class:`i2s.metrics.ImageMetrics` (MSE, SSIM, a
    second perceptual distance, identity distance for faces, LPIPS on the paper tier)."""
    df = pd.DataFrame({"image": list(names), "loss": res.loss.numpy(), "loss_x1e5": res.loss.numpy() / 1e5,
                       "dist_to_w_avg": res.dist_to_w_avg.numpy(), "psnr_db": res.psnr.numpy()})
    if targets is not None and measure is not None:
        faces = [is_face(n) for n in names]
        for k, v in measure(res.images, targets, faces).items():
            df[k] = v
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


@dataclass
class ClassEmbedding(Result):
    """Fig. 1 / Fig. 17: every image of the five classes embedded into W+."""

    per_image: pd.DataFrame = table_output("class_embedding")
    summary: pd.DataFrame = table_output("class_embedding_summary")  # per-class means
    figure: Figure = figure_output("fig01_class_embedding")
    names: list[str]
    labels: list[str]  # the class of each image
    images: torch.Tensor  # the inputs [N, 3, H, W]
    result: EmbedResult


def class_embedding(s: Session, **embed_settings) -> ClassEmbedding:
    """Fig. 1 / Fig. 17: embed every image of the five classes into W+ (w̄ init)."""
    from .plots import image_rows

    names, labels, imgs = load_classes(s)
    res = s.embed(imgs, **embed_settings)
    df = result_table(names, res, imgs, s.measure, **{"class": labels})
    summary = df.groupby("class", sort=False)[["loss_x1e5", "dist_to_w_avg", "psnr_db"]].mean().reset_index()
    rows, row_labels = [], []
    for cls in dict.fromkeys(labels):
        idx = [i for i, c in enumerate(labels) if c == cls]
        rows += [imgs[idx], res.images[idx]]
        row_labels += [f"{cls}: input", f"{cls}: embedded"]
    fig = image_rows(rows, row_labels, title=f"Embedding the five classes into W+ ({s.G.name}, {s.steps} steps)")
    return ClassEmbedding(df, summary, fig, names, labels, imgs, res)


# ----------------------------------------------------------------------------- §3.2, Fig. 2 / Table 1


def faces(s: Session) -> tuple[list[str], torch.Tensor]:
    from .data import load_class_batch

    return load_class_batch("faces", s.G.resolution, zoom=s.zoom)


@dataclass
class AffineRobustness(Result):
    """Fig. 2 / Table 1: faces embedded after affine transformations."""

    per_image: pd.DataFrame = table_output("affine_per_image")
    table1: pd.DataFrame = table_output("table1_affine")  # beside the paper's Table 1
    figure: Figure = figure_output("fig02_affine")


def affine_robustness(s: Session) -> AffineRobustness:
    """Fig. 2 / Table 1: embed the faces after each affine transformation."""
    from .plots import image_rows
    from .stress import TRANSFORMS, affine_transforms

    names, imgs = faces(s)
    inputs = {"original": imgs, **affine_transforms(imgs)}
    tables, outputs = [], {}
    for label, x in inputs.items():
        res = s.embed(x)
        outputs[label] = res.images
        tables.append(result_table(names, res, x, s.measure, transform=label))
    df = pd.concat(tables, ignore_index=True)
    table1 = beside_paper(df, "transform", "table1_affine.csv", order=("original",) + TRANSFORMS)
    # Fig. 2 shows one face: inputs on top, embeddings below
    fig = image_rows([torch.stack([x[0] for x in inputs.values()]), torch.stack([y[0] for y in outputs.values()])],
                     ["input", "embedded"], list(inputs), title="Embedding transformed faces (Fig. 2)")
    return AffineRobustness(df, table1, fig)


@dataclass
class ZoomExplanation(Result):
    """Table 1's zoom-in, taken apart: is it the closer framing or the lost detail? (issue 17)"""

    per_image: pd.DataFrame = table_output("zoom_explanation")
    figure: Figure = figure_output("fig02_zoom_explanation")


#: the inputs of :func:`zoom_explanation`, in order
ZOOM_INPUTS = ("original", "zoom_in_2x", "framed_2x_closer", "blurred_2x")


def zoom_explanation(s: Session) -> ZoomExplanation:
    """Table 1's ``zoom_in_2x`` up-samples the central half of the aligned face: the face is
    framed twice as close *and* its detail is halved. Where it embeds better than the original
    (against §3.2), two more inputs tell the causes apart:

    * ``framed_2x_closer``: the same photo aligned again with the quad halved (zoom ``s.zoom / 2``):
      as close as the zoom-in, with the photo's full detail (the framing alone);
    * ``blurred_2x``: the original down-sampled 2x (area) and up-sampled back (bicubic): the
      zoom-in's loss of detail at the original framing (the blur alone).

    Each is embedded like Table 1's inputs (W+, w̄, the profile's steps)."""
    import torch.nn.functional as F

    from .data import eval_images, load_target
    from .plots import image_rows
    from .stress import zoom_in_2x

    names, imgs = faces(s)
    items = {it.name: it for it in eval_images("faces")}
    res_px = s.G.resolution
    framed = torch.cat([load_target(items[n], res_px, zoom=s.zoom / 2) for n in names])
    blurred = F.interpolate(F.interpolate(imgs, scale_factor=0.5, mode="area"), size=(res_px, res_px),
                            mode="bicubic", align_corners=False).clamp(-1, 1)
    inputs = dict(zip(ZOOM_INPUTS, (imgs, zoom_in_2x(imgs), framed, blurred)))
    tables, outputs = [], {}
    for label, x in inputs.items():
        res = s.embed(x)
        outputs[label] = res.images
        tables.append(result_table(names, res, x, s.measure, input=label))
    fig = image_rows([torch.stack([x[0] for x in inputs.values()]), torch.stack([y[0] for y in outputs.values()])],
                     ["input", "embedded"], list(inputs),
                     title="Why does zoom-in embed better here? Framing vs detail (Table 1, zoom-in taken apart)")
    return ZoomExplanation(pd.concat(tables, ignore_index=True), fig)


# ----------------------------------------------------------------------------- Fig. 3 / Table 3


@dataclass
class Defects(Result):
    """Fig. 3 / Table 3: faces with features removed, embedded."""

    per_image: pd.DataFrame = table_output("defects_per_image")
    table3: pd.DataFrame = table_output("table3_defects")  # beside the paper's Table 3, with the locality columns
    figure: Figure = figure_output("fig03_defects")


def defects(s: Session) -> Defects:
    """Fig. 3 / Table 3: embed faces with eyes, nose, mouth (and combinations) removed.

    Besides L and ‖w* − w̄‖, measures whether the damage stays local (§3.2: "the embeddings of
    different facial features are independent of each other"): the mean squared difference, in
    0-255 units, between the embedding of the defective face and that of the intact face, inside
    the removed region and outside it."""
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
        df = result_table([n for n, _ in per_face], res, x, s.measure, defect=label)
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
    return Defects(df, table3, fig)


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


@dataclass
class LatentSpaceChoice(Result):
    """Fig. 5 / Fig. 14: W vs W+, w̄ vs random init, trained vs random weights."""

    table: pd.DataFrame = table_output("latent_space_choice")  # one row per image and setting
    figure: Figure = figure_output("fig05_latent_space")

    @property
    def by_setting(self) -> pd.DataFrame:
        """Mean L, ‖w* − w̄‖ and PSNR per setting, in the figure's column order."""
        return self.table.groupby("setting", sort=False)[["loss_x1e5", "dist_to_w_avg", "psnr_db"]].mean()


def latent_space_choice(s: Session, names: Sequence[str], labels: Sequence[str],
                        imgs: torch.Tensor) -> LatentSpaceChoice:
    """Fig. 5 / Fig. 14: one image per class embedded (b) into W of a random-weights generator,
    (c) into W from w̄, (d) into W from a random code, (e) into W+ of the random-weights generator,
    (f) into W+ from w̄, (g) into W+ from a random code."""
    from .plots import image_rows
    from .stylegan import random_weights

    first = first_of_each_class(labels)
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
        tables.append(result_table([names[i] for i in first], res, x, s.measure, setting=label, **{"class": [labels[i] for i in first]}))
    rows = [torch.stack([x[k]] + [outs[c][k] for c in columns]) for k in range(len(first))]
    fig = image_rows(rows, [labels[i] for i in first], ["(a) input"] + list(columns),
                     title="Which latent space? W vs W+, w̄ vs random init, random weights (Fig. 5 / 14)")
    return LatentSpaceChoice(pd.concat(tables, ignore_index=True), fig)


@dataclass
class InitPerClass(Result):
    """Table 2: w̄ vs random initialisation, per class."""

    per_image: pd.DataFrame = table_output("init_per_image")
    table2: pd.DataFrame = table_output("table2_init")  # per class and init, beside the paper's Table 2


def init_per_class(s: Session, names: Sequence[str], labels: Sequence[str], imgs: torch.Tensor,
                   mean_result: EmbedResult | None = None) -> InitPerClass:
    """Table 2: W+ embeddings from w̄ vs from U[-1, 1], mean L and ‖w* − w̄‖ per class. The
    random start is drawn with the profile's ``init_seeds`` seeds (s.seed, s.seed + 1, ...), one
    row per image and seed; w̄ draws nothing, so it runs once."""
    tables = [result_table(names, mean_result if mean_result is not None else s.embed(imgs, init="mean"), imgs,
                           s.measure, init="mean", seed=s.seed, **{"class": list(labels)})]
    for seed in range(s.seed, s.seed + int(s.params.get("init_seeds", 1))):
        res = s.embed(imgs, init="uniform", seed=seed)
        tables.append(result_table(names, res, imgs, s.measure, init="uniform", seed=seed, **{"class": list(labels)}))
    df = pd.concat(tables, ignore_index=True)
    ours = df.groupby(["class", "init"], sort=False)[["loss_x1e5", "dist_to_w_avg", "psnr_db"]].mean()
    ours.columns = ["ours_loss_x1e5", "ours_dist", "ours_psnr_db"]
    paper = pd.read_csv(REPO / "data" / "paper" / "table2_init.csv").set_index(["class", "init"])
    paper.columns = ["paper_loss_x1e5", "paper_dist"]
    return InitPerClass(df, ours.join(paper, how="left").reset_index())


@dataclass
class NoiseVariation(Result):
    """Fig. 16: one face embedded with different constant noise maps."""

    table: pd.DataFrame = table_output("noise_variation")  # one row per noise seed
    figure: Figure = figure_output("fig16_noise")


def noise_variation(s: Session, image: torch.Tensor, seeds: Sequence[int] = (0, 1, 2)) -> NoiseVariation:
    """Fig. 16: the same face embedded with different constant noise maps (the stored noise
    buffers re-drawn with each seed)."""
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
    return NoiseVariation(pd.DataFrame(rows), fig)


# ----------------------------------------------------------------------------- §4 applications


def render(s: Session, w: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """The images of W+ codes ``[..., layers, w_dim]``: ``[..., 3, H, W]`` on the CPU, rendered
    ``batch`` codes at a time without gradients."""
    flat = w.reshape(-1, *w.shape[-2:])
    with torch.no_grad():
        out = torch.cat([s.G.synthesis(flat[k:k + batch].to(s.device)).cpu() for k in range(0, len(flat), batch)])
    return out.reshape(*w.shape[:-2], *out.shape[1:])


def _descriptors(images: torch.Tensor, zoom: float) -> np.ndarray:
    """dlib face descriptors (:func:`i2s.identity.descriptors`), NaN rows where they cannot be computed."""
    from . import identity

    return identity.or_nan("identity distance", lambda: identity.descriptors(images, zoom), (len(images), 128))


def _smile_ratios(images: torch.Tensor, zoom: float) -> np.ndarray:
    """:func:`i2s.identity.smile_ratio`, NaN where it cannot be measured."""
    from . import identity

    return identity.or_nan("smile ratio", lambda: identity.smile_ratio(images, zoom), (len(images),))


def morph_rows(s: Session, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], frames: int = 7) -> torch.Tensor:
    """§4.1 / Fig. 4: for each (w1, w2) pair of W+ codes, ``frames`` images from λ = 1 (w1) to 0 (w2).
    Returns [pairs, frames, 3, H, W]."""
    from .edits import morph

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


def crossover_grid(s: Session, w_styles: torch.Tensor, w_contents: torch.Tensor, layer: int | None = None) -> torch.Tensor:
    """§4.2 / Fig. 6 / Fig. 8: image [i, j] keeps the coarse layers of content j and takes the
    fine layers of style i. Returns [styles, contents, 3, H, W]."""
    from .edits import crossover

    return torch.stack([render(s, crossover(w_contents, ws.expand_as(w_contents), layer)) for ws in w_styles])


def crossover_splits(num_layers: int) -> list[int]:
    """The split layers that :func:`crossover_measures` compares: the default split
    (:func:`i2s.edits.default_crossover_layer`, L/2: the paper's 9 of 18) and two layers either
    side (L/2 − 2: less from the content, L/2 + 2: more), kept inside [1, L − 1]."""
    from .edits import default_crossover_layer

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
      towards the style's colours).
    """
    from .edits import default_crossover_layer
    from .identity import SAME_PERSON

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
        colour = colour_distance(flat, styles_flat)
        for i, style in enumerate(style_names):
            for j, name in enumerate(content_names):
                f = i * n_c + j
                rows.append({"content": name, "style": style, "split_layer": k,
                             "default_split": k == default_crossover_layer(n_layers),
                             "content_layers": f"0-{k - 1} of {n_layers}", "identity_to_content": float(ident[f]),
                             "same_person": bool(ident[f] < SAME_PERSON), "colour_to_style": float(colour[f]),
                             "colour_content_to_style": float(baseline[f]),
                             "colour_gain": float(baseline[f] - colour[f])})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ExpressionRule:
    """How §4.3's direction is made (:func:`i2s.edits.expression_direction`):
    ``relative=False``: rows of w3 − w2 with an L2 norm below ``threshold`` are zeroed (the
    paper's rule); ``relative=True``: rows below ``threshold`` x the mean row norm are;
    ``normalize``: what λ = 1 means (``"none"``: the source's own change)."""

    threshold: float = 1.0
    relative: bool = False
    normalize: str = "none"

    def describe(self) -> str:
        """The rule in words, for figure titles and tables."""
        if self.relative:
            rows = f"rows of w3 − w2 kept where ‖row‖ ≥ {self.threshold:g} × mean row norm (relative threshold)"
        else:
            rows = f"rows of w3 − w2 kept where ‖row‖ ≥ {self.threshold:g} (the paper's absolute threshold)"
        units = {"none": "λ = 1: the source's own change", "global": "d of unit norm",
                 "per_layer": "each kept row of unit norm"}[self.normalize]
        return f"{rows}; {units}"


def expression_rule(G: StyleGAN, threshold: float | None = None) -> ExpressionRule:
    """§4.3's threshold, read for the generator at hand.

    The paper: "a lower bound threshold on the L2-norm of the channels of the difference latent
    code, below which the channel is replaced by a zero vector ... the threshold is 1". That 1 is
    in the units of the official FFHQ-1024 model's 5000-step embeddings, so the paper tier
    (``G.info["tier"] == "paper"``) keeps it as an absolute bound (default 1.0). Every other tier
    (``mini``, random weights) scales it with the difference's own row norms (``relative=True``:
    keep the rows that change at least ``threshold`` x the average; default 0.5): at mini's scale
    every row of w3 − w2 is below 1.0, and the absolute rule would zero the whole direction.

    Why 0.5 (issue 17, mini v1, 20 source/target pairs of 5 people, full-profile embeddings): at
    1.0 one pair's direction widened other people's smiles by +0.039 [0.019, 0.059] (mouth/eye
    ratio, λ > 0) but the mean of the other pairs' by an inconclusive +0.010; at 0.5 both agree
    (+0.067 [0.032, 0.103] and +0.061 [0.010, 0.104]): the smile lives partly in rows whose
    change is below the average."""
    paper = G.info.get("tier") == "paper"
    return ExpressionRule((1.0 if paper else 0.5) if threshold is None else threshold, relative=not paper)


def expression_rows(s: Session, w_targets: torch.Tensor, w_neutral: torch.Tensor, w_expressive: torch.Tensor,
                    lams: Sequence[float], rule: ExpressionRule | None = None) -> torch.Tensor:
    """§4.3 / Fig. 7: each target moved along the (thresholded) neutral → expressive direction
    by each λ (negative λ: the opposite direction); ``rule`` defaults to :func:`expression_rule`
    of the session's generator. Returns [targets, len(lams), 3, H, W]."""
    from .edits import expression_transfer

    rule = rule or expression_rule(s.G)
    lam = torch.tensor(list(lams), dtype=w_targets.dtype)
    return torch.stack([render(s, expression_transfer(w, w_neutral, w_expressive, lam, rule.threshold,
                                                      rule.normalize, rule.relative))  # type: ignore[arg-type]
                        for w in w_targets])


PAIR, AVERAGE = "one pair (§4.3)", "mean of the other pairs"  # the sources of expression_smile


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
    and ``source_kind`` (:data:`PAIR` or :data:`AVERAGE`)."""
    from .edits import expression_transfer

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
    rows = [{"source": src, "target": tgt, "lam": lam, "smile_ratio": float(smile[k, m]),
             "delta_smile_ratio": float(smile[k, m] - smile[k, ref]), "identity_distance": float(ident[k, m]),
             "source_kind": AVERAGE if average else PAIR,
             "rule": "relative" if rule.relative else "absolute", "threshold": rule.threshold,
             "normalize": rule.normalize}
            for k, (src, tgt) in enumerate(keys) for m, lam in enumerate(lam_all)]
    return pd.DataFrame(rows)


def smile_comparison(table: pd.DataFrame, lam: float | None = None) -> tuple[Comparison, pd.DataFrame] | None:
    """The paired comparison behind Fig. 7's claim, from one source kind of
    :func:`expression_smile`'s table: each source/target pair's smile ratio at ``lam`` (None:
    its mean over every λ > 0) against the same pair's λ = 0, images resampled by target
    (:func:`i2s.stats.paired_comparison`); λ > 0 should widen the smile (``greater``), λ < 0
    narrow it (``less``). Returns (comparison, per-pair smile and identity) or None when no
    row has that λ or a value is missing."""
    from .stats import paired_comparison

    base = table[table["lam"] == 0].set_index(["source", "target"])["smile_ratio"]
    sub = table[table["lam"] > 0] if lam is None else table[table["lam"] == lam]
    if sub.empty:
        return None
    per_pair = sub.groupby(["source", "target"], sort=False).agg(smile=("smile_ratio", "mean"),
                                                                  ident=("identity_distance", "mean"))
    a, b = per_pair["smile"].to_numpy(), base.reindex(per_pair.index).to_numpy()
    if not np.isfinite(a - b).all():
        return None
    per_pair["delta"] = a - b
    c = paired_comparison(a, b, "less" if lam is not None and lam < 0 else "greater",
                          groups=per_pair.index.get_level_values("target").tolist())
    return c, per_pair


def smile_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The claim behind Fig. 7, decided from :func:`expression_smile`'s table: per source kind,
    per λ ≠ 0 and pooled over all λ > 0 (each source/target pair's mean), the Δ smile ratio (λ
    minus λ = 0): its mean, standard deviation and range over the source/target pairs, and
    :func:`smile_comparison`'s interval and verdict. With the identity distance to the target
    beside it (the edit should change the expression, not the person)."""
    from .identity import SAME_PERSON

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
    smoothness: pd.DataFrame = table_output("morph_smoothness")  # one row per morph (:func:`morph_smoothness`)
    frames: torch.Tensor  # [pairs, frames, 3, H, W]
    labels: list[str]  # "A → B" per morph


def morphing(s: Session, codes: EmbeddedClasses, frames: int = 7) -> Morphing:
    """Up to three face-to-face morphs, one between the first images of two other classes and
    one from a face to the last other class, each over ``frames`` values of λ from 1 to 0, with
    the input photos at both ends; measured by :func:`morph_smoothness`."""
    from .plots import image_rows

    faces, others = codes.faces, codes.others
    pairs = [(faces[k], faces[k + 1]) for k in range(min(3, len(faces) - 1))]
    pairs += [(others[0], others[1]), (faces[0], others[-1])]
    labels = [f"{codes.names[a]} → {codes.names[b]}" for a, b in pairs]
    rows = morph_rows(s, [(codes.w_plus[a], codes.w_plus[b]) for a, b in pairs], frames=frames)
    lams = torch.linspace(1, 0, frames).tolist()
    grid = [torch.cat([codes.images[a][None], rows[k], codes.images[b][None]]) for k, (a, b) in enumerate(pairs)]
    fig = image_rows(grid, labels, ["photo A"] + [f"λ={l:.2f}" for l in lams] + ["photo B"],
                     title="Fig. 4 / Fig. 15 (§4.1): morphing w = λ·w_A + (1 − λ)·w_B between embeddings, "
                           "λ = 1 (A) to 0 (B); the input photos at both ends")
    return Morphing(fig, morph_smoothness(rows, labels), rows, labels)


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


def style_transfer(s: Session, codes: EmbeddedClasses) -> StyleTransfer:
    """Embed the style images, then give every face the fine layers of every style (Fig. 6),
    and the first three faces the fine layers of each other class (Fig. 8); measure identity and
    colour per split layer (:func:`crossover_measures`)."""
    from .edits import default_crossover_layer
    from .plots import image_rows

    w, faces, others = codes.w_plus, codes.faces, codes.others
    n_layers = w.shape[-2]
    k = default_crossover_layer(n_layers)
    split = f"layers 0–{k - 1} of {n_layers} from the content (columns), {k}–{n_layers - 1} from the style (rows)"
    style_names, style_imgs = load_styles(s)
    w_style = s.embed(style_imgs).w_plus
    content = render(s, w[faces])
    face_names = [image_stem(codes.names[i]) for i in faces]
    grid = crossover_grid(s, w_style, w[faces])
    fig6 = image_rows([[None, *content]] + [torch.cat([style_imgs[j:j + 1], grid[j]]) for j in range(len(style_names))],
                      ["content: embedding"] + [f"style: {image_stem(n)}" for n in style_names],
                      ["style photo"] + face_names, title=f"Fig. 6 (§4.2): style transfer by crossover — {split}")
    grid8 = crossover_grid(s, w[others], w[faces[:3]])
    other_emb = render(s, w[others])
    fig8 = image_rows([[None, *content[:3]]] + [torch.cat([other_emb[j:j + 1], grid8[j]]) for j in range(len(others))],
                      ["content: embedding"] + [f"{codes.labels[i]}: {image_stem(codes.names[i])}" for i in others],
                      ["other class: embedding"] + face_names[:3],
                      title=f"Fig. 8 (§4.2): crossover between classes — {split}")
    measures = crossover_measures(s, [codes.names[i] for i in faces], w[faces], style_names, w_style, style_imgs)
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
    from .edits import expression_direction
    from .plots import image_rows

    people, neutral, smiling = load_expression_pairs(s)
    wn, wm = s.embed(neutral).w_plus, s.embed(smiling).w_plus
    rule = expression_rule(s.G)
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
                           f"{rule.describe()}: {kept} of {n_layers} rows kept for {people[0]}")
    smile = pd.concat([expression_smile(s, people, wn, wm, lams, rule),
                       expression_smile(s, people, wn, wm, lams, rule, average=True)], ignore_index=True)
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
    from .widgets import explorer

    return explorer(s, codes.w_plus, codes.labels, codes.names, styles.w_style, styles.style_names,
                    expressions.w_neutral, expressions.w_smiling, interactive=interactive,
                    rule=expressions.rule)


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
    from .directions import apply, directions_for
    from .plots import image_rows

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


# ----------------------------------------------------------------------------- Fig. 20


@dataclass
class PairwiseDistances(Result):
    """Fig. 20: distances between all W+ embeddings."""

    distances: np.ndarray  # [N, N] L2 distances
    means: pd.DataFrame = table_output("pairwise_class_means")  # per (class_a, class_b): intra / inter mean
    figure: Figure = figure_output("fig20_distances")

    @property
    def class_matrix(self) -> pd.DataFrame:
        """The class-pair means as a class x class matrix."""
        return self.means.pivot(index="class_a", columns="class_b", values="mean_dist")


def pairwise_distances(names: Sequence[str], labels: Sequence[str], w_plus: torch.Tensor) -> PairwiseDistances:
    """Fig. 20: L2 distances between all W+ embeddings; intra- and inter-class means."""
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
    fig = distance_heatmap(dist, [image_stem(n) for n in names])
    return PairwiseDistances(dist, pd.DataFrame(rows), fig)


# ----------------------------------------------------------------------------- §5


@dataclass
class LossAblation(Result):
    """Fig. 9 / Fig. 22: the loss variants compared."""

    table: pd.DataFrame = table_output("loss_ablation")  # one row per image and variant
    figure: Figure = figure_output("fig09_loss_ablation")

    @property
    def by_variant(self) -> pd.DataFrame:
        """Mean full loss, PSNR and SSIM per variant."""
        return self.table.groupby("variant", sort=False)[["full_loss_x1e5", "psnr_db", "ssim"]].mean()


def loss_ablation(s: Session, names: Sequence[str], labels: Sequence[str], imgs: torch.Tensor) -> LossAblation:
    """Fig. 9 / Fig. 22: one image per class embedded with each loss variant.

    L is always measured with the full loss (Eq. 1), so the variants can be compared; PSNR and
    SSIM beside it."""
    from .loss import VARIANTS, EmbeddingLoss, LossSettings
    from .metrics import ssim
    from .plots import image_rows

    order = ["mse", "conv3_2", "mse+conv3_2", "perceptual", "full"]
    assert set(order) == set(VARIANTS)
    first = first_of_each_class(labels)
    x = imgs[first]
    vgg = s.loss_fn.slices  # reuse the loaded VGG: rebuild the full feature stack from the session's slices
    full_vgg = torch.nn.Sequential(*[m for sl in vgg for m in sl])
    outs, rows = {}, []
    for variant in order:
        lf = EmbeddingLoss(LossSettings(variant=variant), (full_vgg, s.loss_fn.perceptual_net)).to(s.device)
        res = s.embed(x, steps=s.params["ablation_steps"], loss_fn=lf)
        outs[variant] = res.images
        with torch.no_grad():
            full_l = s.loss_fn(res.images.to(s.device), x.to(s.device)).cpu()
        q = ssim(res.images, x)
        more = s.measure(res.images, x, [is_face(labels[i]) for i in first])
        more.pop("ssim")
        for k, i in enumerate(first):
            rows.append({"image": names[i], "class": labels[i], "variant": variant, "full_loss_x1e5": full_l[k].item() / 1e5,
                         "psnr_db": res.psnr[k].item(), "ssim": q[k].item(), **{c: v[k] for c, v in more.items()}})
    grid = [torch.stack([x[k]] + [outs[v][k] for v in order]) for k in range(len(first))]
    fig = image_rows(grid, [labels[i] for i in first], ["input", "MSE only", "conv3_2 only", "MSE + conv3_2",
                                                         "perceptual (Eq. 2)", "full (Eq. 1)"],
                     title="Loss ablation (Fig. 9)")
    return LossAblation(pd.DataFrame(rows), fig)


@dataclass
class IterativeEmbedding(Result):
    """Fig. 11: embedding the embedding, round after round."""

    table: pd.DataFrame = table_output("iterative_embedding")  # one row per image and round
    figure: Figure = figure_output("fig11_iterative")

    @property
    def psnr_by_iteration(self) -> pd.DataFrame:
        """PSNR against the original, rounds x images."""
        return self.table.pivot(index="iteration", columns="image", values="psnr_vs_original_db")


def iterative_embedding(s: Session, x: torch.Tensor, row_labels: Sequence[str], times: int = 7) -> IterativeEmbedding:
    """Fig. 11: embed, take the embedding as the new input, repeat ``times`` times, each round with
    the profile's ``iterative_steps``."""
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
    return IterativeEmbedding(pd.DataFrame(rows), fig)


@dataclass
class LossVsSteps(Result):
    """Fig. 10: the loss against the number of steps."""

    table: pd.DataFrame = table_output("loss_vs_steps")  # steps to convergence per class
    figure: Figure = figure_output("fig10_loss_vs_steps")


def loss_vs_steps(s: Session, names: Sequence[str], labels: Sequence[str], imgs: torch.Tensor) -> LossVsSteps:
    """Fig. 10: the loss against the number of steps, every image, over ``curve_steps``; the
    figure shows each class's median curve and its spread (min to max over the class's images).
    Convergence per image: the first step whose loss is within 5 % (of the total drop) of the
    final loss."""
    from .plots import loss_curves

    res = s.embed(imgs, steps=s.params["curve_steps"])
    rows, curves = [], {}
    for j, (name, cls) in enumerate(zip(names, labels)):
        c = res.loss_curve[:, j].numpy()
        drop = c[0] - c[-1]
        conv = int(np.argmax(c - c[-1] <= 0.05 * drop)) + 1 if drop > 0 else 1
        rows.append({"class": cls, "image": name, "start_loss_x1e5": c[0] / 1e5, "final_loss_x1e5": c[-1] / 1e5,
                     "steps_to_95pct": conv})
        curves.setdefault(cls, []).append(c)
    return LossVsSteps(pd.DataFrame(rows), loss_curves({k: np.stack(v, 1) for k, v in curves.items()}))


@dataclass
class ResizeTrick(Result):
    """Fig. 12: the perceptual loss at 256 px vs at full resolution (both ``None`` at or below
    256 px, where there is nothing to compare)."""

    table: pd.DataFrame | None = table_output("resize_trick", required=False)
    figure: Figure | None = figure_output("fig12_resize_trick", required=False)


def resize_trick(s: Session, x: torch.Tensor, labels: Sequence[str]) -> ResizeTrick:
    """Fig. 12: the perceptual loss on images shrunk to 256 x 256 vs on the full resolution.
    Only meaningful above 256 px (the official 1024-px model); an empty result below."""
    from .loss import EmbeddingLoss, LossSettings
    from .plots import image_rows

    if s.G.resolution <= 256:
        print(f"[i2s] Fig. 12 needs a generator above 256 px; {s.G.name} is {s.G.resolution} px, so the perceptual "
              "loss already sees the full image. Run this notebook with model='ffhq'.")
        return ResizeTrick(None, None)
    full_vgg = torch.nn.Sequential(*[m for sl in s.loss_fn.slices for m in sl])
    native = EmbeddingLoss(LossSettings(resize=None), (full_vgg, s.loss_fn.perceptual_net)).to(s.device)
    a, b = s.embed(x), s.embed(x, loss_fn=native)
    df = pd.concat([result_table(list(labels), a, x, s.measure, perceptual="resized to 256"),
                    result_table(list(labels), b, x, s.measure, perceptual=f"full {s.G.resolution}")], ignore_index=True)
    fig = image_rows([torch.stack([x[k], a.images[k], b.images[k]]) for k in range(len(x))], list(labels),
                     ["original", "perceptual at 256", f"perceptual at {s.G.resolution}"], title="The resize trick (Fig. 12)")
    return ResizeTrick(df, fig)


# ----------------------------------------------------------------------------- what each notebook writes

NOTEBOOK_RESULTS: dict[str, tuple[type[Result], ...]] = {
    "01_class_embedding": (ClassEmbedding,),
    "02_affine_robustness": (AffineRobustness, ZoomExplanation),
    "03_defects": (Defects,),
    "04_latent_space_choice": (LatentSpaceChoice, InitPerClass, NoiseVariation),
    "05_applications": (Morphing, StyleTransfer, ExpressionEditing, LatentDirections, ExplorerGrids),
    "06_pairwise_distances": (PairwiseDistances,),
    "07_embedding_algorithm": (LossAblation, LossVsSteps, IterativeEmbedding, ResizeTrick),
}


def expected_outputs() -> dict[str, dict[str, list[str]]]:
    """Per notebook, the figures (``figures/<model>/<name>.png``) and tables
    (``results/<model>/<profile>/<name>.csv``) a complete run writes: the required output
    fields of the results in :data:`NOTEBOOK_RESULTS`."""
    out: dict[str, dict[str, list[str]]] = {}
    for notebook, results in NOTEBOOK_RESULTS.items():
        outputs = [o for r in results for o in r.outputs(required_only=True)]
        out[notebook] = {"figures": [name for _, kind, name in outputs if kind == "figure"],
                         "tables": [name for _, kind, name in outputs if kind == "table"]}
    return out
