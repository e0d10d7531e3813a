"""Notebook 06, Fig. 20: the distances between all W+ embeddings, within and across classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import torch

from ..data import image_stem
from .common import Result, figure_output, table_output

if TYPE_CHECKING:
    from matplotlib.figure import Figure



@dataclass
class PairwiseDistances(Result):
    """Fig. 20: distances between all W+ embeddings."""

    distances: np.ndarray  # [N, N] L2 distances
    means: pd.DataFrame = table_output("pairwise_class_means")  # per (class_a, class_b): intra / inter mean
    pairs: pd.DataFrame = table_output("pairwise_distances")  # one row per pair of images (the claims' numbers)
    figure: Figure = figure_output("fig20_distances")

    @property
    def class_matrix(self) -> pd.DataFrame:
        """The class-pair means as a class x class matrix."""
        return self.means.pivot(index="class_a", columns="class_b", values="mean_dist")


def pairwise_distances(names: Sequence[str], labels: Sequence[str], w_plus: torch.Tensor) -> PairwiseDistances:
    """Fig. 20: L2 distances between all W+ embeddings; intra- and inter-class means, and every
    pair of images (what the REPORT's cluster claims resample)."""
    from ..plots import distance_heatmap

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
    pairs = pd.DataFrame([{"image_a": names[i], "image_b": names[j], "class_a": labels[i], "class_b": labels[j],
                           "dist": float(dist[i, j])} for i in range(len(names)) for j in range(i + 1, len(names))])
    fig = distance_heatmap(dist, [image_stem(n) for n in names])
    return PairwiseDistances(dist, pd.DataFrame(rows), pairs, fig)
