"""Figure helpers: rows of images with labels, loss curves, distance heat maps.

Labels are never cut: a long label (an image's file name) is wrapped onto several lines at
``_``, ``/``, ``-`` or spaces (:func:`wrap_label`), so every character stays readable.
"""

from __future__ import annotations

import re
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def to_numpy_image(x: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [-1, 1] -> HxWx3 float in [0, 1]."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()


def wrap_label(text: str, width: int = 16) -> str:
    """``text`` on lines of at most ``width`` characters, broken after ``_``, ``/``, ``-`` or a
    space (a word longer than ``width`` is split inside); no character is dropped: removing the
    inserted newlines gives ``text`` back."""
    lines: list[str] = []
    line = ""
    for token in re.findall(r"[^_/ \-]+[_/ \-]*|[_/ \-]+", text):
        while len(token) > width:  # one very long word: split it
            if line:
                lines.append(line)
                line = ""
            lines.append(token[:width])
            token = token[width:]
        if line and len(line) + len(token) > width:
            lines.append(line)
            line = ""
        line += token
    if line or not lines:
        lines.append(line)
    return "\n".join(lines)


def image_rows(rows: Sequence[torch.Tensor | Sequence[torch.Tensor | None]], row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, title: str | None = None, cell: float = 1.3,
               cell_labels: Sequence[Sequence[str | None] | None] | None = None):
    """A grid figure: ``rows[i]`` is [N_i, 3, H, W] (or a list whose ``None`` entries are blank
    cells); cells past a row's end stay blank. ``col_labels`` title the top row, ``row_labels``
    the first column, ``cell_labels[i][j]`` (optional) is written under cell (i, j). Every label
    is shown in full (wrapped, never cut)."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    width = max(10, int(cell * 13))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols, cell * n_rows), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(row) and row[j] is not None:
                ax.imshow(to_numpy_image(row[j]), interpolation="nearest")
            if j == 0 and row_labels is not None:
                ax.set_ylabel(wrap_label(row_labels[i], width), fontsize=7)
            if i == 0 and col_labels is not None and j < len(col_labels):
                ax.set_title(wrap_label(col_labels[j], width), fontsize=7)
            if cell_labels is not None and cell_labels[i] is not None and j < len(cell_labels[i]) and cell_labels[i][j]:
                ax.set_xlabel(wrap_label(cell_labels[i][j], width), fontsize=7)
    if title:
        fig.suptitle(wrap_label(title, int(max(60, 15 * cell * n_cols))), fontsize=9)
    fig.tight_layout()
    return fig


def loss_curves(curves: dict[str, np.ndarray], title: str = "Loss vs. optimisation steps (Fig. 10)"):
    """One line per label: a [steps] array of L (paper units), or [steps, k] for k images of a
    class, drawn as their median with the band from the lowest to the highest curve."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, c in curves.items():
        c = np.asarray(c, dtype=float).reshape(len(c), -1) / 1e5
        steps = np.arange(1, len(c) + 1)
        line, = ax.plot(steps, np.median(c, 1), label=f"{label} (n = {c.shape[1]})" if c.shape[1] > 1 else label)
        if c.shape[1] > 1:
            ax.fill_between(steps, c.min(1), c.max(1), color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xlabel("step")
    ax.set_ylabel("L (×10^5)")
    ax.set_yscale("log")
    ax.set_title(title + ("\nmedian per class, band: lowest to highest image" if any(
        np.asarray(c).ndim > 1 and np.asarray(c).shape[1] > 1 for c in curves.values()) else ""), fontsize=10)
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
