"""What one notebook run shares (:class:`Session`): the generator, the loss, the profile's step
counts (:data:`PROFILES`), the embedding cache and the output folders, named by the model, the
profile and the perceptual network that ran (:func:`run_folder`, :func:`figures_folder`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from ..embed import EmbedResult
from ..io import atomic_write_text, write_csv
from ..loss import EmbeddingLoss, LossSettings
from ..models import describe_tier, domain, load_generator, short_name
from ..runner import cached_embed
from ..stylegan import StyleGAN

if TYPE_CHECKING:

    from ..metrics import ImageMetrics


REPO = Path(__file__).resolve().parents[2]

PROFILES: dict[str, dict] = {
    # steps: Algorithm 1 iterations per embedding; the paper uses 5000 (§5.3).
    # quick: sized so that all seven notebooks run in under 30 minutes on a 2-core CPU with mini
    # (measured 21 min on the AVX-512 Xeon, 2026-12-02; each of Fig. 11's seven rounds gets fewer steps).
    # init_seeds: seeds of the random (U[-1, 1]) start of Table 2, each image embedded once per seed.
    "quick": {"steps": 140, "ablation_steps": 90, "iterations": 7, "iterative_steps": 100, "curve_steps": 250,
              "noise_seeds": 3, "init_seeds": 3},
    # full: this CPU's longer run (issue 17): 1000 steps per embedding, ~7x the quick profile's compute
    # (several hours on 2 cores; resumable through the embedding cache).
    "full": {"steps": 1000, "ablation_steps": 1000, "iterations": 7, "iterative_steps": 1000, "curve_steps": 1000,
             "noise_seeds": 5, "init_seeds": 3},
    "paper": {"steps": 5000, "ablation_steps": 5000, "iterations": 7, "iterative_steps": 5000, "curve_steps": 5000,
              "noise_seeds": 5, "init_seeds": 3},
}


#: The perceptual network of the plain ``<profile>`` folders: what ``auto`` resolves to without
#: the ImageNet VGG-16 file, the network of every committed run.
PLAIN_FOLDER_NET = "vgg16-random"


def run_folder(profile: str, perceptual_net: str = PLAIN_FOLDER_NET) -> str:
    """The results folder name of a run, named by the network that ran (the resolved
    ``perceptual_net``, never ``auto``, so no folder holds two networks' results): the profile for
    :data:`PLAIN_FOLDER_NET`, else ``<profile>-<short name>`` (``quick-efficientnet-lite0``,
    ``quick-vgg16-imagenet``)."""
    from ..loss import PERCEPTUAL_NETS

    return profile if perceptual_net == PLAIN_FOLDER_NET else f"{profile}-{PERCEPTUAL_NETS.get(perceptual_net, perceptual_net)}"


#: The run whose figures are a model's default (``figures/<model>/``, what the README shows): the
#: ``full`` profile, 1000 steps per embedding. Every other run (the ``quick`` smoke run CI makes,
#: ``paper``, other perceptual networks) writes to ``figures/<model>/<run>/``.
DEFAULT_FIGURES_RUN = "full"


def figures_folder(figures_dir: str | Path, model: str, run: str) -> Path:
    """Where a run's figures go: ``figures/<model>/`` for :data:`DEFAULT_FIGURES_RUN`,
    ``figures/<model>/<run>/`` for every other run (``quick``, ``paper``,
    ``quick-efficientnet-lite0``), so no run overwrites another's figures."""
    return Path(figures_dir) / model / ("" if run == DEFAULT_FIGURES_RUN else run)


@dataclass
class Session:
    """Everything one notebook run shares: generator, loss, settings, output folders."""

    G: StyleGAN
    loss_fn: EmbeddingLoss
    model: str
    profile: str
    steps: int
    seed: int
    device: str
    figures: Path
    results: Path
    params: dict = field(default_factory=dict)

    @classmethod
    def start(cls, model: str = "auto", profile: str = "quick", steps: int | None = None, device: str = "cpu",
              seed: int = 0, figures_dir: str | Path = REPO / "figures", results_dir: str | Path = REPO / "results",
              loss: LossSettings | None = None, perceptual: str = "auto") -> "Session":
        """``perceptual``: the network of Eq. 1's perceptual part, ``auto`` (ImageNet VGG-16 when
        its weights are cached, else ``vgg16-random``) or ``efficientnet-lite0`` (:mod:`i2s.loss`).
        The folders are named by the network that ran (:func:`run_folder`): ``vgg16-random`` in the
        committed ``<profile>`` folders, any other in ``<profile>-<network>`` folders of its own,
        which REPORT.md's sensitivity table compares."""
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
        G = load_generator(model, device=device)
        loss_fn = EmbeddingLoss(loss or LossSettings(), perceptual).to(device)
        name = short_name(G)
        run = run_folder(profile, loss_fn.perceptual_net)
        params = {**PROFILES[profile]}
        if steps is not None:  # one knob for every step count of the profile
            params.update(steps=steps, ablation_steps=steps, iterative_steps=steps, curve_steps=2 * steps)
        s = cls(G=G, loss_fn=loss_fn, model=name, profile=profile, steps=params["steps"], seed=seed, device=device,
                figures=figures_folder(figures_dir, name, run),
                results=Path(results_dir) / name / run, params=params)
        s.figures.mkdir(parents=True, exist_ok=True)
        s.results.mkdir(parents=True, exist_ok=True)
        print(f"[i2s] generator: {G.name} ({describe_tier(G)}); perceptual network: {loss_fn.perceptual_net}; "
              f"profile {profile}: {s.steps} steps")
        return s

    @cached_property
    def measure(self) -> "ImageMetrics":
        """The per-image metrics of every result table (:class:`i2s.metrics.ImageMetrics`)."""
        from ..metrics import ImageMetrics

        return ImageMetrics(self.loss_fn.perceptual_net, self.zoom, self.device)

    @property
    def zoom(self) -> float:
        """The face framing the generator was trained with (FFHQ: 1.0; mini: 0.7)."""
        return float(self.G.info.get("align_zoom", 1.0))

    @property
    def tag(self) -> dict:
        """Written into every table: which generator (and its domain) and perceptual network produced it."""
        return {"model": self.G.name, "tier": self.G.info.get("tier"), "domain": domain(self.G),
                "perceptual_net": self.loss_fn.perceptual_net, "profile": self.profile}

    def embed(self, images: torch.Tensor, steps: int | None = None, loss_fn: EmbeddingLoss | None = None,
              G: StyleGAN | None = None, **settings) -> EmbedResult:
        """Algorithm 1 with the session's defaults and the shared embedding cache."""
        settings.setdefault("seed", self.seed)
        return cached_embed(G or self.G, images.to(self.device), loss_fn=loss_fn or self.loss_fn,
                            steps=steps or self.steps, **settings)

    def save_table(self, df: pd.DataFrame, name: str) -> Path:
        """Save a table as CSV under results/<model>/<profile>/ with the session's tags added."""
        df = df.copy()
        for k, v in self.tag.items():
            df[k] = v
        path = self.results / f"{name}.csv"
        write_csv(path, df.to_dict("records"), list(df.columns))
        return path

    def save_json(self, obj: dict, name: str) -> Path:
        return atomic_write_text(self.results / f"{name}.json", json.dumps({**obj, **self.tag}, indent=2, default=str))

    def save_figure(self, fig, name: str) -> Path:
        """Save a matplotlib figure under figures/<model>/ (atomically, PNG)."""
        import io as _io

        from ..io import atomic_write_bytes

        buf = _io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        return atomic_write_bytes(self.figures / f"{name}.png", buf.getvalue())
