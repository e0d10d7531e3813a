"""Notebook 07, §5 (Fig. 9-12): the loss ablation, the loss against the steps, iterative
embedding, and the resize trick."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import torch

from ..data import is_face
from .common import Result, figure_output, first_of_each_class, result_table, table_output
from .session import Session

if TYPE_CHECKING:
    from matplotlib.figure import Figure



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
    from ..loss import VARIANTS, EmbeddingLoss, LossSettings
    from ..metrics import ssim
    from ..plots import image_rows

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
                         "dist_to_w_avg": res.dist_to_w_avg[k].item(), "psnr_db": res.psnr[k].item(), "ssim": q[k].item(), **{c: v[k] for c, v in more.items()}})
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
    from ..plots import image_rows

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
    from ..plots import loss_curves

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
    from ..loss import EmbeddingLoss, LossSettings
    from ..plots import image_rows

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
