"""Notebook 03, §3.2 (Fig. 3, Table 3): faces with eyes, nose or mouth removed, embedded; does the
damage stay local?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from .common import Result, beside_paper, figure_output, result_table, table_output
from .session import Session

if TYPE_CHECKING:
    from matplotlib.figure import Figure



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
    from ..data import eval_images
    from ..plots import image_rows
    from ..stress import DEFECTS, NON_DEFECTIVE, aligned_face_and_landmarks, defect_inputs, defect_masks

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
