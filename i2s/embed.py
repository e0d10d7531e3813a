"""Algorithm 1 of the paper: embed images into the latent space of a pre-trained StyleGAN.

    w* = argmin_w  L_percept(G(w), I) + lambda_mse / N * ||G(w) - I||^2        (Eq. 1)

optimised with Adam (lr 0.01, betas (0.9, 0.999), eps 1e-8) for 5000 steps from w̄, with
the generator's noise kept constant (§5, §5.3). :class:`EmbedSettings` holds these
hyper-parameters, defaults equal to the paper's; ``space`` picks the latent space of §3.3
(``"w+"``: one w per style layer, the paper's choice; ``"w"``: one w broadcast to every layer;
``"z"``: one z through the mapping network), ``init`` the initialisation of §5.1.

A batch of N images is N independent problems: the per-image losses are summed, so each
latent only receives the gradient of its own loss, and Adam's update is element-wise. With
``init="uniform"`` the seeded U[-1, 1] draw is the same for every image of the batch, so a
batch gives the same latents as N single runs with the same seed.

Infrastructure lives elsewhere: checkpoints in :mod:`i2s.checkpoint`, deferred Ctrl-C in
:mod:`i2s.signals`, memory/cuDNN/compile tuning in :mod:`i2s.runtime`, bf16 autocast in
:mod:`i2s.precision`, the disk cache in :mod:`i2s.cache`, chunking in :mod:`i2s.batching`.
Speed: the target's features are computed once, the batch is optimised together, and neither
generator nor loss weights get gradients (``docs/performance.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
from tqdm.auto import tqdm

from . import precision as _precision
from . import runtime
from .checkpoint import EmbedCheckpoint, run_key
from .loss import EmbeddingLoss, LossSettings, psnr
from .signals import DeferredSignals
from .stylegan import NoiseMode, StyleGAN

__all__ = ["EmbedSettings", "EmbedResult", "embed", "initial_latent", "to_w_plus", "learning_rate",
           "PAPER_STEPS", "PAPER_LR", "FAST_STEPS", "FAST_LR"]

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
        if base is None:
            return cls.fast(**overrides) if overrides.get("schedule") == "fast" else cls(**overrides)
        return replace(base, **overrides)

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


def _given_start(G: StyleGAN, images: torch.Tensor, s: EmbedSettings, loss_fn: EmbeddingLoss,
                 w_init: torch.Tensor | None, encoder) -> tuple[torch.Tensor | None, dict]:
    """The starting latent given by the caller or predicted by the encoder (``init="encoder"``:
    §5.1's initialisation replaced by a learned prediction), and the run identity."""
    if w_init is None and s.init == "encoder":
        from .encoder import encoder_init

        w_init, encoder_id = encoder_init(G, images, encoder, s.space)
        return w_init, s.identity(G, loss_fn, encoder=encoder_id)
    return w_init, s.identity(G, loss_fn, given_init=w_init is not None)


def embed(
    G: StyleGAN,
    images: torch.Tensor,
    settings: EmbedSettings | None = None,
    *,
    loss_fn: EmbeddingLoss | None = None,
    w_init: torch.Tensor | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 250,
    progress: bool = True,
    desc: str = "embed",
    compile: bool = False,
    channels_last: bool = False,
    encoder: "str | Path | torch.nn.Module | None" = None,
    **overrides,
) -> EmbedResult:
    """Algorithm 1: find w* with G(w*) ≈ I for each image of ``images`` ([N, 3, H, W] in [-1, 1]).

    ``settings`` (default: the paper's, :class:`EmbedSettings`) can be amended by keyword
    (``embed(G, x, steps=1000, init="uniform")``). ``loss_fn`` (default
    ``EmbeddingLoss(settings.loss)``) brings the perceptual network; its settings are the ones
    recorded. ``w_init`` starts from a given latent instead of ``init``; ``init="encoder"`` starts
    from the prediction of ``encoder`` (an :class:`i2s.encoder.Encoder` or its file; default: the
    one shipped for G, :func:`i2s.encoder.default_encoder`).

    Speed only, same numbers up to float rounding: ``compile`` (torch.compile of generator +
    loss; eager with a warning when it fails), ``channels_last``. ``precision="bf16"`` (the
    default on CUDA) runs generator and loss under bf16 autocast with the loss accumulated in
    float32; it changes the numbers by more than rounding and is recorded.

    With ``checkpoint`` the state is saved atomically every ``checkpoint_every`` steps, at the
    end and when the run is interrupted; the same call again resumes from it and gives the same
    latents as an uninterrupted run. SIGINT/SIGTERM are deferred to the end of the current step
    (a second Ctrl-C interrupts at once), then raised as ``KeyboardInterrupt`` / ``SystemExit(143)``.
    An image whose loss becomes NaN or infinite keeps its last good latent (``stopped_at``).
    """
    s = EmbedSettings.make(settings, **overrides)
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != G.resolution or images.shape[-2] != G.resolution:
        raise ValueError(f"images must be [N, 3, {G.resolution}, {G.resolution}] for this generator, got {tuple(images.shape)}")
    device, dtype = G.device, G.w_avg.dtype
    G.eval().requires_grad_(False)
    loss_fn = (loss_fn or EmbeddingLoss(s.loss)).to(device, dtype).requires_grad_(False)
    images, n = images.to(device, dtype), images.shape[0]
    precision = s.resolved_precision(device)
    autocast = lambda: _precision.autocast(precision, device)  # noqa: E731
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    w_init, identity = _given_start(G, images, s, loss_fn, w_init, encoder)

    # 1: initialise the latent code; the target's features are computed once
    latent = (w_init.detach().clone().to(device, dtype) if w_init is not None
              else initial_latent(G, n, s.space, s.init, s.seed)).requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=s.lr, betas=s.betas, eps=s.eps, **({"fused": True} if device.type == "cuda" else {}))
    with autocast():
        target = loss_fn.target(images.contiguous(memory_format=fmt))

    def forward(z: torch.Tensor, target: dict) -> torch.Tensor:
        """The per-image loss L(G(w), I) (float32 under autocast)."""
        with autocast():
            return loss_fn(G.synthesis(to_w_plus(G, z, s.space), noise_mode=s.noise_mode).contiguous(memory_format=fmt), target)

    step_loss = runtime.compiled(forward) if compile else forward
    curve = torch.zeros(s.steps, n, device=device, dtype=dtype)
    last_good, stopped_at = latent.detach().clone(), torch.full((n,), -1, dtype=torch.long, device=device)
    ckpt = EmbedCheckpoint(Path(checkpoint) if checkpoint is not None else None, run_key(identity, images, w_init),
                           identity, desc, bounds=(n, G, s.steps))
    start, last_good, stopped_at = ckpt.restore(device, latent, optimizer, curve, last_good, stopped_at)
    save = lambda step: ckpt.save(step, latent, optimizer, curve, last_good, stopped_at)  # noqa: E731

    # 2-5: while not converged: L <- L_percept + MSE;  w* <- w* - eta F'(grad L)
    # ``done`` steps are complete; what is saved on an interruption is always a whole number of steps.
    bar = tqdm(range(start, s.steps), desc=desc, disable=not progress, initial=start, total=s.steps)
    show_every = 1 if device.type == "cpu" else 50  # reading the loss back waits for a GPU
    done, saved_at, consistent = start, -1, True
    try:
        with DeferredSignals() as signals, runtime.tuned(device):
            for step in bar:
                optimizer.zero_grad(set_to_none=True)
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(s.schedule, step, s.steps, s.lr, s.rampdown)
                losses = step_loss(latent, target)
                finite = torch.isfinite(losses)
                torch.where(finite, losses, torch.zeros_like(losses)).sum().backward()
                consistent = False  # the state is being updated: not saveable until the step is done
                with torch.no_grad():
                    curve[step] = losses.detach()
                    stopped_at = torch.where((stopped_at < 0) & ~finite, step, stopped_at)
                    running = (stopped_at < 0).view(-1, *[1] * (latent.ndim - 1))
                    last_good = torch.where(running, latent, last_good)
                    optimizer.step()
                    latent.copy_(torch.where(running, latent, last_good))  # a blown-up image keeps its last good latent
                done, consistent = step + 1, True
                if ckpt.path is not None and (done % checkpoint_every == 0 or signals.pending or done == s.steps):
                    save(done)
                    saved_at = done
                if progress and (step % show_every == 0 or done == s.steps):
                    bar.set_postfix(loss=f"{losses.detach().mean().item():.4g}", refresh=False)
                signals.raise_pending()
            if ckpt.path is not None and saved_at != s.steps:
                save(s.steps)
    except BaseException as e:
        if ckpt.path is not None:
            if consistent and saved_at != done:
                save(done)  # keep the work done so far (Ctrl-C, SIGTERM, errors)
                saved_at = done
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                ckpt.interrupted(saved_at, s.steps)
        raise
    finally:
        bar.close()

    with torch.no_grad():
        w_plus = to_w_plus(G, latent, s.space)
        with autocast():
            recon = G.synthesis(w_plus, noise_mode=s.noise_mode)
            final = loss_fn(recon.contiguous(memory_format=fmt), target)
        recon = recon.to(dtype).contiguous()
        dist, quality = (w_plus - G.w_avg).flatten(1).norm(dim=1), psnr(recon, images)
    return EmbedResult(
        w_plus=w_plus.detach().cpu(), latent=latent.detach().cpu(), images=recon.cpu(), loss=final.cpu(),
        dist_to_w_avg=dist.cpu(), psnr=quality.cpu(),
        loss_curve=curve.cpu(), stopped_at=stopped_at.cpu(), settings=identity, resumed_from=start,
    )

