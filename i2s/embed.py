"""Algorithm 1 of the paper: embed images into the latent space of a pre-trained StyleGAN.

    w* = argmin_w  L_percept(G(w), I) + lambda_mse / N * ||G(w) - I||^2        (Eq. 1)

optimised with Adam (lr 0.01, betas (0.9, 0.999), eps 1e-8) for 5000 steps from w̄, with
the generator's noise kept constant (§5, §5.3). :class:`EmbedSettings` holds these
hyper-parameters, defaults equal to the paper's; ``space`` picks the latent space of §3.3
(``"w+"``: one w per style layer, the paper's choice; ``"w"``: one w broadcast to every layer;
``"z"``: one z through the mapping network), ``init`` the initialisation of §5.1.
:func:`embed` is the algorithm itself, on one screen.

A batch of N images is N independent problems: the per-image losses are summed, so each
latent only receives the gradient of its own loss, and Adam's update is element-wise. With
``init="uniform"`` the seeded U[-1, 1] draw is the same for every image of the batch, so a
batch gives the same latents as N single runs with the same seed.

What surrounds a run attaches through the ``on_step`` hook (as diffusers pipelines' step
callbacks): :mod:`i2s.runner` puts checkpoints (:mod:`i2s.checkpoint`), deferred Ctrl-C
(:mod:`i2s.signals`) and progress there, and adds the encoder's start, batching with the
out-of-memory fallback and the disk cache. Speed: the target's features are computed once, the
batch is optimised together, and neither generator nor loss weights get gradients
(``docs/performance.md``); memory and cuDNN tuning in :mod:`i2s.runtime`, bf16 autocast in
:mod:`i2s.precision`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Callable, Literal

import torch

from . import precision as _precision
from . import runtime
from .loss import EmbeddingLoss, LossSettings, psnr
from .stylegan import NoiseMode, StyleGAN

__all__ = ["EmbedSettings", "EmbedResult", "EmbedState", "embed", "initial_latent", "to_w_plus", "learning_rate",
           "check_images", "PAPER_STEPS", "PAPER_LR", "FAST_STEPS", "FAST_LR"]

Space = Literal["w+", "w", "z"]
Init = Literal["mean", "uniform", "normal", "encoder"]
Schedule = Literal["paper", "fast"]

PAPER_STEPS, PAPER_LR = 5000, 0.01
# The opt-in fast schedule (stylegan2-ada's projector ramp): peak learning rate FAST_LR, linear
# warm-up over the first FAST_RAMPUP of the steps, cosine ramp-down over the last FAST_RAMPDOWN.
# Chosen by benchmarks/time_to_quality.py on the mini model (peak lr 0.05-1.6, ramp-down 0.25-1,
# 1250 steps = a quarter of the paper's): docs/performance.md.
FAST_STEPS, FAST_LR, FAST_RAMPUP, FAST_RAMPDOWN = 1250, 0.8, 0.05, 0.25


def learning_rate(schedule: Schedule, step: int, steps: int, lr: float, rampdown: float = FAST_RAMPDOWN) -> float:
    """The learning rate of step ``step`` (0-based) of ``steps``: constant ``lr`` for the paper's
    protocol; for ``"fast"`` ``lr`` times a linear warm-up (the first FAST_RAMPUP of the steps)
    and a cosine ramp-down over the last ``rampdown`` of them."""
    if schedule == "paper":
        return lr
    if schedule != "fast":
        raise ValueError(f"schedule must be 'paper' or 'fast', got {schedule!r}")
    t = step / steps
    ramp = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / rampdown))
    return lr * ramp * min(1.0, (step + 1) / max(1.0, FAST_RAMPUP * steps))


@dataclass(frozen=True)
class EmbedSettings:
    """Everything that decides an embedding; the defaults are the paper's (§5, Algorithm 1).

    The one definition of a run's identity (:meth:`identity`): latent-file metadata, the
    checkpoint key and the cache key all derive from it. Options that only change speed
    (``compile``, ``channels_last``, progress bars, checkpoint paths) are not settings."""

    space: Space = "w+"  # §3.3: one w per style layer ("w": one w for all; "z": through the mapping)
    init: Init = "mean"  # §5.1: start at w̄ ("uniform": U[-1, 1]; "normal": N(0, 1); "encoder": i2s.encoder)
    steps: int = PAPER_STEPS  # Algorithm 1's 5000 gradient steps
    lr: float = PAPER_LR  # Adam's learning rate (the peak for schedule="fast")
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's betas
    eps: float = 1e-8  # Adam's epsilon
    noise_mode: NoiseMode = "const"  # §5.3: the generator's per-layer noise stays fixed
    seed: int = 0  # the draw of init="uniform"/"normal" (unused by w̄)
    schedule: Schedule = "paper"  # "fast": opt-in lr ramp, latents land farther from w̄
    rampdown: float = FAST_RAMPDOWN  # schedule="fast": the last share of the steps over which lr ramps down
    loss: LossSettings = field(default_factory=LossSettings)  # Eq. 1 (i2s.loss)
    precision: str = "auto"  # "float32" | "bf16" autocast | "auto": bf16 on CUDA, float32 elsewhere

    def __post_init__(self) -> None:
        if self.space not in ("w+", "w", "z"):
            raise ValueError(f"space must be 'w+', 'w' or 'z', got {self.space!r}")
        if self.init not in ("mean", "uniform", "normal", "encoder"):
            raise ValueError(f"init must be 'mean', 'uniform', 'normal' or 'encoder', got {self.init!r}")
        if self.init == "encoder" and self.space == "z":
            raise ValueError("init='encoder' predicts a W+ code: use space 'w+' or 'w'")
        if self.schedule not in ("paper", "fast"):
            raise ValueError(f"schedule must be 'paper' or 'fast', got {self.schedule!r}")
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 0:
            raise ValueError(f"steps must be a whole number >= 0, got {self.steps!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not 0 < self.rampdown <= 1:
            raise ValueError(f"rampdown must be in (0, 1], got {self.rampdown!r}")
        if self.precision not in ("auto", "float32", "bf16"):
            raise ValueError(f"precision must be auto, float32 or bf16, got {self.precision!r}")
        object.__setattr__(self, "betas", (float(self.betas[0]), float(self.betas[1])))

    @classmethod
    def fast(cls, **overrides) -> "EmbedSettings":
        """The opt-in fast schedule: FAST_STEPS steps, peak lr FAST_LR (docs/performance.md)."""
        return cls(**{"steps": FAST_STEPS, "lr": FAST_LR, "schedule": "fast", **overrides})

    @classmethod
    def make(cls, base: "EmbedSettings | None" = None, **overrides) -> "EmbedSettings":
        """``base`` (default: the paper's, or :meth:`fast` for ``schedule="fast"``) with keyword
        overrides; ``steps=None``/``lr=None`` keep the schedule's own, ``amp=True/False/None``
        is the older spelling of ``precision="bf16"/"float32"/"auto"``."""
        if "amp" in overrides:
            amp = overrides.pop("amp")
            overrides["precision"] = "auto" if amp is None else ("bf16" if amp else "float32")
        overrides = {k: v for k, v in overrides.items() if not (k in ("steps", "lr") and v is None)}
        if "steps" in overrides:
            overrides["steps"] = int(overrides["steps"])
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"not settings of Algorithm 1: {', '.join(unknown)} (EmbedSettings has "
                            f"{', '.join(f.name for f in fields(cls))}; how a run is carried out, such as progress "
                            "and checkpoint, is i2s.runner.RunOptions)")
        if base is None:
            return cls.fast(**overrides) if overrides.get("schedule") == "fast" else cls(**overrides)
        return replace(base, **overrides) if overrides else base

    def resolved_precision(self, device: torch.device) -> str:
        """float32 or bf16 on ``device``. CPU bf16 stays opt-in until benchmarks/bf16_quality.py
        shows it within float32's own spread after the paper's 5000 steps (docs/performance.md)."""
        if self.precision == "auto":
            return "bf16" if device.type == "cuda" and _precision.bf16_supported(device) else "float32"
        return self.precision

    def identity(self, G: StyleGAN, loss_fn: EmbeddingLoss, given_init: bool = False,
                 encoder: str | None = None) -> dict:
        """The run identity, as every latent file records it: the generator, every setting that
        changes the result, and the perceptual network. Keys that only differ from the paper's
        protocol in float32 are written only when they do (older files keep their meaning)."""
        out = {"model": G.name, "model_tier": G.info.get("tier"), "resolution": G.resolution,
               "space": self.space, "init": "given" if given_init else self.init, "steps": self.steps,
               "optimizer": "adam", "lr": float(self.lr), "betas": list(self.betas), "eps": self.eps,
               "noise_mode": self.noise_mode, "seed": self.seed, "loss": loss_fn.settings.to_dict(),
               "perceptual_net": loss_fn.perceptual_net}
        if self.schedule != "paper":
            out.update(schedule=self.schedule, rampup=FAST_RAMPUP, rampdown=float(self.rampdown))
        if self.resolved_precision(G.device) == "bf16":
            out["amp"] = "bf16"
        if self.init == "encoder" and not given_init:
            out["encoder_sha256"] = encoder  # which encoder predicted the start
        return out


@dataclass
class EmbedResult:
    """What Algorithm 1 returns, per image of the batch (all tensors on the CPU).

    ``w_plus``: the embedded W+ codes [N, num_layers, w_dim] (for ``w``/``z`` spaces the one
    code broadcast to every layer); ``latent``: the optimised variable itself;
    ``images``: the reconstructions G(w*) [N, 3, H, W] in [-1, 1]; ``loss``: the final loss L
    (Eq. 1, paper units: divide by 1e5 for the tables); ``dist_to_w_avg``: ||w* - w̄|| (the L2
    norm of the whole W+ difference); ``psnr``: dB; ``loss_curve``: [steps, N], the loss at
    each step before its update (Fig. 10); ``stopped_at``: the step at which an image's loss
    became NaN/inf (its latent is the last good one), -1 if never; ``resumed_from``: the step a
    checkpoint resumed the run from (0 for a fresh run).
    """

    w_plus: torch.Tensor
    latent: torch.Tensor
    images: torch.Tensor
    loss: torch.Tensor
    dist_to_w_avg: torch.Tensor
    psnr: torch.Tensor
    loss_curve: torch.Tensor
    stopped_at: torch.Tensor
    settings: dict = field(default_factory=dict)
    resumed_from: int = 0

    def __repr__(self) -> str:
        n = self.w_plus.shape[0]
        loss = ", ".join(f"{v:.4g}" for v in self.loss.tolist()[:4]) + (", ..." if n > 4 else "")
        return (f"EmbedResult({n} image{'s' * (n != 1)}, w_plus {tuple(self.w_plus.shape)}, "
                f"{self.settings.get('steps', '?')} steps in {self.settings.get('space', '?')}, loss [{loss}], "
                f"mean ‖w*−w̄‖ {self.dist_to_w_avg.mean().item():.4g}, mean PSNR {self.psnr.mean().item():.2f} dB)")

    @property
    def messages(self) -> list[str]:
        """One line per image whose loss became NaN/inf: the step, and that its last good latent is kept."""
        return [f"image {i}: loss became non-finite (NaN/inf) at step {int(s)}; optimisation of this image "
                + (f"stopped there and its last good latent (that of step {int(s) - 1}) is kept" if s > 0 else
                   "stopped at once: its initial latent is kept (check the image and the settings)")
                for i, s in enumerate(self.stopped_at) if s >= 0]


@dataclass
class EmbedState:
    """Algorithm 1 between two steps: what an ``on_step`` hook sees, once before the first step
    (``step`` 0: a checkpoint hook may put a saved run's state in here) and after every step."""

    step: int  # whole steps done
    steps: int  # of this many
    latent: torch.Tensor  # the variable being optimised (w+, w or z), [N, ...]
    optimizer: torch.optim.Optimizer
    loss_curve: torch.Tensor  # [steps, N]: the loss at each step before its update
    last_good: torch.Tensor  # each image's latent before its loss first became NaN/inf
    stopped_at: torch.Tensor  # [N]: that step, -1 while the loss is finite
    losses: torch.Tensor | None = None  # the last step's loss per image
    updating: bool = False  # the state is being changed: not a whole step, nothing to save


OnStep = Callable[[EmbedState], None]


def check_images(G: StyleGAN, images: torch.Tensor) -> None:
    """ValueError unless ``images`` is a batch [N, 3, R, R] at the generator's resolution R."""
    r = G.resolution
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != r or images.shape[-2] != r:
        raise ValueError(f"images must be [N, 3, {r}, {r}] for this generator, got {tuple(images.shape)}")


def initial_latent(G: StyleGAN, n: int, space: Space, init: Init, seed: int) -> torch.Tensor:
    """The starting point of §5.1: ``mean`` = w̄, ``uniform`` = U[-1, 1] per element.

    ``normal`` = N(0, 1) per element (for Z). One draw per seed, shared by the N images.
    """
    shape = {"w+": (1, G.num_layers, G.w_dim), "w": (1, G.w_dim), "z": (1, G.z_dim)}[space]
    gen = torch.Generator().manual_seed(seed)
    if init == "mean":
        if space == "z":
            raise ValueError("init='mean' is w̄, a point of W; there is no mean code in Z: use init='normal' or 'uniform'")
        x = G.w_avg.detach().cpu().float().expand(shape)
    elif init == "uniform":
        x = torch.rand(shape, generator=gen) * 2 - 1
    elif init == "normal":
        x = torch.randn(shape, generator=gen)
    elif init == "encoder":
        raise ValueError("init='encoder' starts from the encoder's prediction: give it as w_init, or embed through "
                         "i2s.runner.embed, which predicts it")
    else:
        raise ValueError(f"init must be 'mean', 'uniform' or 'normal', got {init!r}")
    return x.expand(n, *shape[1:]).clone().to(G.device, G.w_avg.dtype)


def to_w_plus(G: StyleGAN, latent: torch.Tensor, space: Space) -> torch.Tensor:
    """The W+ code the synthesis network sees for a latent of the given space."""
    if space == "w+":
        return latent
    if space == "w":
        return latent.unsqueeze(1).expand(-1, G.num_layers, -1)
    if space == "z":
        return G.mapping(latent)
    raise ValueError(f"space must be 'w+', 'w' or 'z', got {space!r}")


def embed(G: StyleGAN, images: torch.Tensor, settings: EmbedSettings | None = None, *,
          loss_fn: EmbeddingLoss | None = None, w_init: torch.Tensor | None = None, identity: dict | None = None,
          on_step: OnStep | None = None, compile: bool = False, channels_last: bool = False,
          **overrides) -> EmbedResult:
    """Algorithm 1: find w* with G(w*) ≈ I for each image of ``images`` ([N, 3, R, R] in [-1, 1]).

    ``settings`` (default: the paper's) can be amended by keyword (``steps=1000``); ``loss_fn``
    (default ``EmbeddingLoss(settings.loss)``) brings the perceptual network; ``w_init`` starts
    from a given latent. ``on_step(state)`` runs before the first step and after every step.
    An image whose loss becomes NaN/inf keeps its last good latent (``stopped_at``). Speed only:
    ``compile`` (torch.compile), ``channels_last``; ``identity``: the run's record, if known.
    """
    s = EmbedSettings.make(settings, **overrides)
    check_images(G, images)
    device, dtype, n = G.device, G.w_avg.dtype, images.shape[0]
    G.eval().requires_grad_(False)
    loss_fn = (loss_fn or EmbeddingLoss(s.loss)).to(device, dtype).requires_grad_(False)
    images = images.to(device, dtype)
    identity = identity or s.identity(G, loss_fn, given_init=w_init is not None)
    precision, fmt = s.resolved_precision(device), torch.channels_last if channels_last else torch.contiguous_format

    # 1: initialise w* (w̄ in the paper); the target's features are computed once
    latent = (w_init.detach().clone().to(device, dtype) if w_init is not None
              else initial_latent(G, n, s.space, s.init, s.seed)).requires_grad_(True)
    with _precision.autocast(precision, device):
        target = loss_fn.target(images.contiguous(memory_format=fmt))

    def loss_of(w: torch.Tensor) -> torch.Tensor:  # L(G(w), I) per image (Eq. 1), float32 under autocast
        with _precision.autocast(precision, device):
            return loss_fn(G.synthesis(to_w_plus(G, w, s.space), noise_mode=s.noise_mode)
                           .contiguous(memory_format=fmt), target)

    adam = torch.optim.Adam([latent], lr=s.lr, betas=s.betas, eps=s.eps, **({"fused": True} if device.type == "cuda" else {}))
    st = EmbedState(0, s.steps, latent, adam, torch.zeros(s.steps, n, device=device, dtype=dtype),
                    latent.detach().clone(), torch.full((n,), -1, dtype=torch.long, device=device))
    step_loss, on_step = runtime.compiled(loss_of) if compile else loss_of, on_step or (lambda state: None)
    on_step(st)
    start = st.step
    with runtime.tuned(device):
        for step in range(start, s.steps):
            # 2: L = L_percept(G(w*), I) + lambda_mse / N ||G(w*) - I||^2, one loss per image
            adam.zero_grad(set_to_none=True)
            for group in adam.param_groups:
                group["lr"] = learning_rate(s.schedule, step, s.steps, s.lr, s.rampdown)
            losses = step_loss(latent)
            finite = torch.isfinite(losses)
            torch.where(finite, losses, torch.zeros_like(losses)).sum().backward()
            # 3: w* <- w* - Adam(dL/dw*); an image whose loss is NaN/inf keeps its last good latent
            st.updating = True
            with torch.no_grad():
                st.loss_curve[step] = losses.detach()
                st.stopped_at = torch.where((st.stopped_at < 0) & ~finite, step, st.stopped_at)
                running = (st.stopped_at < 0).view(-1, *[1] * (latent.ndim - 1))
                st.last_good = torch.where(running, latent, st.last_good)
                adam.step()
                latent.copy_(torch.where(running, latent, st.last_good))
            st.step, st.losses, st.updating = step + 1, losses.detach(), False
            on_step(st)
    return _result(G, s, loss_fn, st, images, target, identity, start, precision, fmt)


def _result(G: StyleGAN, s: EmbedSettings, loss_fn: EmbeddingLoss, st: EmbedState, images: torch.Tensor,
            target: dict, identity: dict, start: int, precision: str, fmt: torch.memory_format) -> EmbedResult:
    """w* in W+, G(w*), the final loss, ‖w* − w̄‖ and PSNR, on the CPU."""
    with torch.no_grad():
        w_plus = to_w_plus(G, st.latent, s.space)
        with _precision.autocast(precision, G.device):
            recon = G.synthesis(w_plus, noise_mode=s.noise_mode)
            final = loss_fn(recon.contiguous(memory_format=fmt), target)
        recon = recon.to(G.w_avg.dtype).contiguous()
        dist, quality = (w_plus - G.w_avg).flatten(1).norm(dim=1), psnr(recon, images)
    return EmbedResult(w_plus=w_plus.detach().cpu(), latent=st.latent.detach().cpu(), images=recon.cpu(),
                       loss=final.cpu(), dist_to_w_avg=dist.cpu(), psnr=quality.cpu(), loss_curve=st.loss_curve.cpu(),
                       stopped_at=st.stopped_at.cpu(), settings=identity, resumed_from=start)
