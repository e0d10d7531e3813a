"""Figure helpers: rows of images with labels, loss curves, distance heat maps.

Labels are never cut: a long label (an image's file name) is wrapped onto several lines at
``_``, ``/``, ``-`` or spaces (:func:`wrap_label`), so every character stays readable.
"""

from __future__ import annotations

import re
from pathlib import Path
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


def labelled_grid(rows: Sequence[Sequence[tuple[torch.Tensor | None, str] | None]], row_labels: Sequence[str],
                  caption: str, flagged: Sequence[Sequence[bool]] | None = None, cell: int = 256,
                  flag_text: str = "NOT A FACE"):
    """The grid image the ``i2s`` edit commands write (a PIL image, not a matplotlib figure).

    ``rows[i][j]`` is ``(image, label)`` with ``image`` [3, H, W] in [-1, 1] (every image the same
    size), ``(None, label)`` for a grey placeholder carrying only its label, or ``None`` (empty).
    Each image is enlarged by the integer factor ``cell // H`` with nearest-neighbour, so every
    generated pixel stays a visible square (images larger than ``cell`` are reduced to ``cell``);
    its label is written under it, ``row_labels[i]`` at the row's left, and ``caption`` above,
    followed by the true resolution and how it is shown. ``flagged[i][j]`` cells get a red frame
    and ``flag_text`` in red under their label. Labels are wrapped, never cut (:func:`wrap_label`).
    The image's ``info["i2s-grid"]`` is JSON: the caption, the row labels and every cell's row,
    column, label, flag and box (left, top, right, bottom) in the grid, for the PNG's text chunk.
    """
    import json

    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    images = [c[0] for r in rows for c in r if c is not None and c[0] is not None]
    if not images:
        raise ValueError("labelled_grid needs at least one image")
    res = images[0].shape[-1]
    factor = cell // res
    size = res * factor if factor >= 1 else cell
    shown = (f"{res} x {res} px each, shown {factor}x ({size} px) with nearest-neighbour" if factor > 1 else
             f"{res} x {res} px each, shown at true size" if factor == 1 else
             f"{res} x {res} px each, shown reduced to {size} px (the PNGs beside it are full size)")
    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fs = max(11, size // 16)
    font = ImageFont.truetype(str(fonts / "DejaVuSans.ttf"), fs)
    bold = ImageFont.truetype(str(fonts / "DejaVuSans-Bold.ttf"), fs)
    line_h, gap, frame = round(fs * 1.3), max(8, size // 32), max(3, size // 64)
    chars = max(8, int(size / (0.62 * fs)))
    n_cols = max(len(r) for r in rows)
    left = int(0.6 * size) if any(row_labels) else 0
    width = left + gap + n_cols * (size + gap)
    flags = [[bool(flagged and i < len(flagged) and j < len(flagged[i]) and flagged[i][j]) for j in range(len(r))]
             for i, r in enumerate(rows)]
    texts = [[wrap_label(c[1], chars).split("\n") if c is not None else [] for c in r] for r in rows]
    label_h = line_h * max([len(t) + f for tr, fr in zip(texts, flags) for t, f in zip(tr, fr)] + [1])
    cap_chars = max(20, int((width - 2 * gap) / (0.62 * fs)))
    cap_lines = [ln for para in (caption + "\n" + shown).split("\n") for ln in wrap_label(para, cap_chars).split("\n")]
    top = gap + line_h * len(cap_lines) + gap
    row_h = size + label_h + gap
    grid = Image.new("RGB", (width, top + len(rows) * row_h + gap), "white")
    draw = ImageDraw.Draw(grid)
    for k, ln in enumerate(cap_lines):
        draw.text((gap, gap + k * line_h), ln, fill="black", font=bold if k == 0 else font)
    cells = []
    for i, row in enumerate(rows):
        y = top + i * row_h
        if i < len(row_labels) and row_labels[i]:
            lines = wrap_label(row_labels[i], max(6, int(left / (0.62 * fs)))).split("\n")
            for k, ln in enumerate(lines):
                draw.text((gap, y + size // 2 - len(lines) * line_h // 2 + k * line_h), ln, fill="black", font=font)
        for j, c in enumerate(row):
            if c is None:
                continue
            x = left + gap + j * (size + gap)
            box = (x, y, x + size, y + size)
            if c[0] is None:
                draw.rectangle((x, y, x + size - 1, y + size - 1), fill=(232, 232, 232))
            else:
                arr = ((c[0].detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
                img = Image.fromarray(arr, "RGB")
                img = img.resize((size, size), Image.Resampling.NEAREST if factor >= 1 else Image.Resampling.LANCZOS)
                grid.paste(img, box[:2])
            for k, ln in enumerate(texts[i][j]):
                draw.text((x, y + size + 2 + k * line_h), ln, fill="black", font=font)
            if flags[i][j]:  # the frame lies in the gap around the image, never over it
                draw.rectangle((x - frame, y - frame, x + size + frame - 1, y + size + frame - 1), outline=(220, 0, 0),
                               width=frame)
                draw.text((x, y + size + 2 + len(texts[i][j]) * line_h), flag_text, fill=(220, 0, 0), font=bold)
            cells.append({"row": i, "col": j, "label": c[1], "flagged": flags[i][j], "box": list(box),
                          "image": c[0] is not None})
    grid.info["i2s-grid"] = json.dumps({"caption": caption, "shown": shown, "row_labels": list(row_labels),
                                        "cells": cells}, ensure_ascii=False)
    return grid
