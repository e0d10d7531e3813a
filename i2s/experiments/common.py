"""What the notebooks' experiments share: named results whose fields carry their file names
(:class:`Result`, :func:`figure_output`, :func:`table_output`), the per-image result table, the
evaluation set framed for the session's generator, Table 1-3's comparison with the paper, and
rendering W+ codes."""

from __future__ import annotations

from dataclasses import field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import pandas as pd
import torch

from ..data import is_face
from ..embed import EmbedResult
from .session import REPO, Session

if TYPE_CHECKING:

    from ..metrics import ImageMetrics


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


def load_classes(s: Session, classes: Sequence[str] | None = None) -> tuple[list[str], list[str], torch.Tensor]:
    """The evaluation set (faces aligned with the generator's framing, others centre-cropped):
    (names, classes, images)."""
    from ..data import CLASSES, load_class_batch

    names, labels, imgs = [], [], []
    for cls in classes or CLASSES:
        n, x = load_class_batch(cls, s.G.resolution, zoom=s.zoom)
        names += n
        labels += [cls] * len(n)
        imgs.append(x)
    return names, labels, torch.cat(imgs)


def faces(s: Session) -> tuple[list[str], torch.Tensor]:
    from ..data import load_class_batch

    return load_class_batch("faces", s.G.resolution, zoom=s.zoom)


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


def render(s: Session, w: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """The images of W+ codes ``[..., layers, w_dim]``: ``[..., 3, H, W]`` on the CPU, rendered
    ``batch`` codes at a time without gradients."""
    flat = w.reshape(-1, *w.shape[-2:])
    with torch.no_grad():
        out = torch.cat([s.G.synthesis(flat[k:k + batch].to(s.device)).cpu() for k in range(0, len(flat), batch)])
    return out.reshape(*w.shape[:-2], *out.shape[1:])
