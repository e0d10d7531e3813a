"""Figure helpers: rows of images with labels, loss curves, distance heat maps."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def to_numpy_image(x: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [-1, 1] -> HxWx3 float in [0, 1]."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()


def image_rows(rows: Sequence[torch.Tensor], row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, title: str | None = None, cell: float = 1.3):
    """A grid figure: ``rows[i]`` is [N_i, 3, H, W]; empty cells stay blank."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols, cell * n_rows), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(row):
                ax.imshow(to_numpy_image(row[j]), interpolation="nearest")
            if j == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[i], fontsize=8)
            if i == 0 and col_labels is not None and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def loss_curves(curves: dict[str, np.ndarray], title: str = "Loss vs. optimisation steps (Fig. 10)"):
    """One line per label (each a [steps] array of L in paper units)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, c in curves.items():
        ax.plot(np.arange(1, len(c) + 1), c / 1e5, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("L (×10^5)")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def distance_heatmap(dist: np.ndarray, labels: Sequence[str], title: str = "L2 distance between embeddings (Fig. 20)"):
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(8, 7))
    sns.heatmap(dist, xticklabels=labels, yticklabels=labels, cmap="viridis", square=True, ax=ax,
                cbar_kws={"label": "‖w_i − w_j‖"})
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
