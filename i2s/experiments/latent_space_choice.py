"""Notebook 04, §3.3 / §5.1 (Fig. 5 / 14, Table 2, Fig. 16): W vs W+, w̄ vs random
initialisation, trained vs random weights, and constant noise maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import pandas as pd
import torch

from ..embed import EmbedResult
from .common import Result, figure_output, first_of_each_class, result_table, table_output
from .session import REPO, Session

if TYPE_CHECKING:
    from matplotlib.figure import Figure



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
    from ..plots import image_rows
    from ..models import random_weights_like as random_weights  # StyleGAN v1 or StyleGAN2 alike

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

    from ..plots import image_rows

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
