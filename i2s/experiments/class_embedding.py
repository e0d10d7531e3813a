"""Notebook 01, §3.1 (Fig. 1 / Fig. 17): which images can be embedded? Every image of the five
classes embedded into W+."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import torch

from ..embed import EmbedResult
from .common import Result, figure_output, load_classes, result_table, table_output
from .session import Session

if TYPE_CHECKING:
    from matplotlib.figure import Figure



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
    from ..plots import image_rows

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
