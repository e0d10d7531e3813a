"""Notebook 02, §3.2 (Fig. 2, Table 1): how robust is the embedding of faces to affine
transformations, and Table 1's zoom-in taken apart (framing vs detail)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import torch

from .common import Result, beside_paper, faces, figure_output, result_table, table_output
from .session import Session

if TYPE_CHECKING:
    from matplotlib.figure import Figure



@dataclass
class AffineRobustness(Result):
    """Fig. 2 / Table 1: faces embedded after affine transformations."""

    per_image: pd.DataFrame = table_output("affine_per_image")
    table1: pd.DataFrame = table_output("table1_affine")  # beside the paper's Table 1
    figure: Figure = figure_output("fig02_affine")


def affine_robustness(s: Session) -> AffineRobustness:
    """Fig. 2 / Table 1: embed the faces after each affine transformation."""
    from ..plots import image_rows
    from ..stress import TRANSFORMS, affine_transforms

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

    from ..data import eval_images, load_target
    from ..plots import image_rows
    from ..stress import zoom_in_2x

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
