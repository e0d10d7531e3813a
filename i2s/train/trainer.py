"""The training loop: :class:`Trainer` (G, D, G_ema, Adam, the schedule and the data stream),
one D + G step, the EMA generator, sample grids, log lines, and checkpoints that resume a run
exactly (networks, optimisers, RNG states and the data position).

Checkpoint format (``torch.load(path, weights_only=True)``): ``{"format":
"i2s-train-checkpoint", "format_version": 1, "config", "G", "D", "G_ema", "opt_G", "opt_D",
"state", "rng", "args"}``, plus ``"D_pixel", "opt_D_pixel"`` in a run with ``--d-pixel``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import precision as _precision
from ..runtime import resolve_device
from ..stylegan import StyleGAN, StyleGANConfig, upscale2d
from .augment import diff_augment
from .data import BatchStream, open_dataset
from .discriminator import Discriminator
from .files import (CARRY_FORMAT, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, D_FORMAT, EXPORT_FORMAT, as_float,
                    atomic_save, fixed_tensors_sha256, load_run_file, plain)
from .schedule import Schedule, parse_batch, parse_schedule

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "TrainState", "Trainer", "ema_update", "load_run_file"]

SAMPLE_GRID = 8  # 8x8 sample grids
SAMPLE_SEED_OFFSET = 1_000_003  # fixed sample z's come from seed + this (not the training stream)


@torch.no_grad()
def ema_update(G_ema: StyleGAN, G: StyleGAN, beta: float) -> None:
    """``G_ema <- beta * G_ema + (1 - beta) * G`` for parameters (the official ``Gs``,
    ``setup_as_moving_average_of``); buffers (``w_avg``, the stored noise) are copied,
    as ``beta_nontrainable = 0`` does."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.lerp_(p, 1.0 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


@dataclass
class TrainState:
    """Everything besides networks, optimisers and RNGs that a resume needs."""

    images_seen: int = 0
    iterations: int = 0
    d_steps: int = 0
    data_epoch: int = 0
    data_pos: int = 0
    wall_time: float = 0.0  # seconds of training, summed over resumes
    phase_index: int = 0
    phase_stage: int = -1  # 0 fade-in, 1 stable, -1 not started
    next_ckpt: int = 0  # images at which the next checkpoint / sample grid / log line is due
    next_sample: int = 0
    next_log: int = 0
    d_warmup_left: int = 0  # --d-warmup-kimg: images of D-only steps still due (G, G_ema and images_seen wait)


#: ``--d-flip``'s default probability of an upside-down flip (see :func:`random_flips`).
VERTICAL_FLIP_P = 0.2


def layout(x: torch.Tensor, res: int) -> torch.Tensor:
    """An image's layout at ``res`` px, free of its colours: the grey image, average-pooled to
    ``res`` x ``res`` and standardised per image (zero mean, unit spread; +0.1 keeps flat images finite)."""
    g = F.adaptive_avg_pool2d(x.float().mean(dim=1, keepdim=True), res)
    g = g - g.mean(dim=(2, 3), keepdim=True)
    return g / (g.std(dim=(2, 3), keepdim=True) + 0.1)


def random_flips(x: torch.Tensor, p_vertical: float = VERTICAL_FLIP_P) -> torch.Tensor:
    """Flip each image left-right with probability 1/2 and upside down with ``p_vertical``
    (differentiable).

    For the projected D (``--d-flip``): EfficientNet's TensorFlow "same" padding pads only the
    bottom and right edges of its stride-2 layers, and the trained heads end up least sensitive
    to the bottom-right corner (measured: 0.6 of the mean input gradient at 15k images). Seen
    through random flips, every corner of G's image is sometimes the top-left of D's view.
    Upside-down flips at 1/2 leak (Karras et al. 2020, ADA §2.2: D then sees upright and
    upside-down images equally often, real or fake, and cannot tell them apart): a mini v3 arm at
    1/2 drew every face upside down by 30k images. Below 1/2 the upright image stays the more
    likely one, so only it is real to D."""
    n = x.shape[0]
    h = (torch.rand(n, device=x.device) < 0.5).view(-1, 1, 1, 1)
    v = (torch.rand(n, device=x.device) < p_vertical).view(-1, 1, 1, 1)
    x = torch.where(h, x.flip(3), x)
    return torch.where(v, x.flip(2), x)


def range_penalty(x: torch.Tensor) -> torch.Tensor:
    """``mean relu(|x| - 1)^2``: how far G's pixels stray outside the image range [-1, 1].

    The projected D sees pixels through a frozen network whose ReLU6 units saturate: a pixel
    pushed far outside the range (v2's corner patch reached -33, v3 run 1's black blob -53, in
    [-1, 1] units) no longer changes D's features, so D's gradient there is zero and nothing
    brings it back (``--range-penalty``)."""
    return F.relu(x.float().abs() - 1.0).square().mean()


class Trainer:
    """Holds G, D, G_ema, the optimisers, the schedule and the data stream.

    ``Trainer(args)`` builds fresh networks from ``args.seed``; :meth:`from_checkpoint`
    restores one exactly. :meth:`training_step` is one D step and one G step;
    :meth:`train` runs the loop with checkpoints, sample grids, logs and signals.
    """

    def __init__(self, args: argparse.Namespace, data: np.ndarray | None = None) -> None:
        self.args = args
        self.device = resolve_device(args.device)
        self.cfg = StyleGANConfig(resolution=args.resolution, fmap_base=args.fmap_base, fmap_max=args.fmap_max)
        self.phases = parse_schedule(args.schedule, args.fade_frac)
        self.schedule = Schedule(self.phases)
        self.batch_sizes = parse_batch(args.batch)
        for p in self.phases:
            if p.res > self.cfg.resolution:
                raise ValueError(f"schedule reaches {p.res} px but the model is {self.cfg.resolution} px")
            if p.res not in self.batch_sizes:
                raise ValueError(f"no batch size for {p.res} px in --batch {args.batch!r}")
        if args.augment not in ("none", "diffaug"):
            raise ValueError(f"--augment must be none or diffaug, got {args.augment!r}")
        unknown = set(filter(None, getattr(args, "diffaug_policy", "").split(","))) - {"color", "translation", "cutout"}
        if unknown:
            raise ValueError(f"--diffaug-policy: unknown operation(s) {', '.join(sorted(unknown))}; "
                             f"use a comma list of color, translation, cutout")
        if not 0.0 <= getattr(args, "d_flip_v", VERTICAL_FLIP_P) < 0.5:
            raise ValueError(f"--d-flip-v {args.d_flip_v}: give a probability from 0 to below 0.5 (at 0.5 or more "
                             "D cannot tell upright from upside-down faces)")
        if getattr(args, "proj_mbstd", 0) < 0:
            raise ValueError(f"--proj-mbstd {args.proj_mbstd}: give a group size of 2 or more, or 0 for none")
        for flag in ("range_penalty", "d_pixel", "locality"):
            if not getattr(args, flag, 0.0) >= 0:  # also NaN
                raise ValueError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: give a weight of 0 or more")

        if data is None:
            data = open_dataset(args.data)
        if data.shape[1] % self.cfg.resolution or data.shape[1] < self.cfg.resolution:
            raise ValueError(f"data is {data.shape[1]} px, the model {self.cfg.resolution} px")
        self.data = data

        torch.manual_seed(args.seed)
        self.G = StyleGAN(self.cfg).to(self.device)
        self.projected = getattr(args, "d_arch", "stylegan") == "projected"
        if self.projected:
            from ..projected import ProjectedDiscriminator

            self.D = ProjectedDiscriminator(args.proj_res, csm=args.csm, proj_seed=args.seed,
                                            width=getattr(args, "d_width", 1.0),
                                            mbstd_group=getattr(args, "proj_mbstd", 0)).to(self.device)
        else:
            self.D = Discriminator(self.cfg, args.mbstd_group, args.d_down).to(self.device)
        # --d-pixel: beside the projected D, a small pixel-space StyleGAN D (Kumari et al. 2022 keep
        # the GAN's own D beside the pretrained-feature ones): what the frozen features cannot see,
        # such as a patch drawn into every sample, it can
        self.D_pixel: Discriminator | None = None
        if self.projected and getattr(args, "d_pixel", 0.0) > 0:
            pixel_cfg = StyleGANConfig(resolution=args.resolution, fmap_base=args.d_pixel_fmap, fmap_max=args.fmap_max)
            self.D_pixel = Discriminator(pixel_cfg, args.mbstd_group, args.d_down).to(self.device)
        self.precision = _precision.resolve(getattr(args, "precision", "float32"), self.device)
        self.d_precision = self.precision if getattr(args, "d_precision", "same") == "same" else "float32"
        if self.d_precision != self.precision:  # D's own arithmetic: float32 in channels-last order
            self.D = self.D.to(memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        betas = (args.beta1, args.beta2)
        # One plain lr for all of G: mapping lrmul 0.01 is in its runtime weight scale.
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=args.lr, betas=betas, eps=1e-8)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=args.lr, betas=betas, eps=1e-8)
        self.opt_D_pixel = (torch.optim.Adam(self.D_pixel.parameters(), lr=args.lr, betas=betas, eps=1e-8)
                            if self.D_pixel is not None else None)
        self.state = TrainState()
        self.stream = BatchStream(len(self.data), args.seed)
        g = torch.Generator().manual_seed(args.seed + SAMPLE_SEED_OFFSET)
        self.sample_z = torch.randn(SAMPLE_GRID**2, self.cfg.z_dim, generator=g)
        self.out = Path(args.out) if args.out else None
        self._stop_signal: int | None = None
        # what the step calls: the networks, or their torch.compile'd forms (same parameters)
        self._synthesis = torch.compile(self.G.synthesis) if getattr(args, "compile", False) else self.G.synthesis
        self._meter = {"t": time.perf_counter(), "images": 0, "sums": {}, "n": 0}

    # ---------------------------------------------------------------- pieces of a step

    def batch_size(self, block: int) -> int:
        return self.batch_sizes[4 * 2**block]

    def prepare_reals(self, images: np.ndarray, block: int, alpha: float) -> torch.Tensor:
        """uint8 [N, H, W, 3] -> float NCHW in [-1, 1] at ``4 * 2**block`` px: random x-flip,
        2x2 average pooling down to the training resolution and, during a fade-in, the
        blend with the 2x-down-then-up-sampled image (v1 ``process_reals``), so reals
        fade exactly like G's output does."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        x = x.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        res = 4 * 2**block
        if x.shape[-1] != res:
            x = F.avg_pool2d(x, x.shape[-1] // res)
        if self.args.xflip:
            flip = torch.rand(x.shape[0], device=self.device) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        if block > 0 and alpha < 1.0:
            x = torch.lerp(upscale2d(F.avg_pool2d(x, 2)), x, alpha)
        return x

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.args.augment != "diffaug":
            return x
        return diff_augment(x, getattr(self.args, "diffaug_policy", "color,translation,cutout"))

    def discriminate(self, x: torch.Tensor, block: int, alpha: float) -> Any:
        """D's logits under the run's precision (float32 out): one tensor for the StyleGAN D, a
        list of logit maps (one per feature scale) for the projected D, which always sees the
        model resolution (lower-resolution phases are nearest-up-sampled)."""
        with _precision.autocast(self.d_precision, self.device):
            if self.d_precision != self.precision:
                x = x.contiguous(memory_format=torch.channels_last)
            if not self.projected:
                return self.D(self.augment(x), block, alpha).float()
            if x.shape[-1] != self.cfg.resolution:
                x = upscale2d(x, self.cfg.resolution // x.shape[-1])
            if getattr(self.args, "d_flip", False):
                x = random_flips(x, getattr(self.args, "d_flip_v", VERTICAL_FLIP_P))
            return [o.float() for o in self.D(self.augment(x))]

    def sample_w(self, G: StyleGAN, n: int, block: int, track: bool = True) -> torch.Tensor:
        """Random W+ codes with style-mixing regularisation (Karras et al. 2019 §3.1): with
        probability ``--style-mixing`` a second z takes over from a random crossover layer
        in ``[1, active layers)``. Updates G's ``w_avg`` (the official ``dlatent_avg``) if ``track``."""
        z = torch.randn(n, self.cfg.z_dim, device=self.device)
        w = G.mapping(z, update_w_avg=track)
        if self.args.style_mixing > 0 and float(torch.rand(())) < self.args.style_mixing:
            active = 2 * (block + 1)
            cut = int(torch.randint(1, active, ())) if active > 1 else 1
            w2 = G.mapping(torch.randn(n, self.cfg.z_dim, device=self.device))
            w = torch.cat([w[:, :cut], w2[:, cut:]], dim=1)
        return w

    def locality_loss(self, n: int) -> torch.Tensor:
        """Layer locality (mini v3, issue 31), for the fully grown generator. ``n`` pairs of
        samples (a, b) are rendered with the stored noise: as a, as b, as a with every row but the
        coarse ones (0-3) from b, and as a with b's two finest rows. The penalty is the share of
        the pair's colour-free :func:`layout` difference that the swaps carry over:

            |layout8(a, rows 4.. from b) - layout8(a)|^2 / |layout8(b) - layout8(a)|^2
          + |layout16(a, fine rows from b) - layout16(a)|^2 / |layout16(b) - layout16(a)|^2

        so the 8-px layout is decided by the coarse rows and the 16-px one before the 64-px rows,
        as in StyleGAN's FFHQ models (Karras et al. 2019, Fig. 3: coarse styles carry pose and face
        shape, fine ones colour). A ratio, not a difference: an absolute penalty was met by giving
        every sample the same layout (measured: layout diversity fell to a fifth in 10k images);
        the ratio is not lowered that way, and its denominator asks for layouts that differ."""
        L = self.cfg.num_layers
        w = self.G.mapping(torch.randn(2 * n, self.cfg.z_dim, device=self.device))
        w_a, w_b = w[:n], w[n:]
        w_n, w_f = w_a.clone(), w_a.clone()
        w_n[:, 4:] = w_b[:, 4:]
        w_f[:, L - 2:] = w_b[:, L - 2:]
        with _precision.autocast(self.precision, self.device):
            x = self._synthesis(torch.cat([w_a, w_b, w_n, w_f]), noise_mode="const").float()
        x_a, x_b, x_n, x_f = x.split(n)

        def share(x_swap: torch.Tensor, res: int) -> torch.Tensor:
            base = layout(x_a, res)
            return (layout(x_swap, res) - base).square().mean() / ((layout(x_b, res) - base).square().mean() + 1e-4)

        return share(x_n, 8) + share(x_f, 16)

    def generate(self, G: StyleGAN, n: int, block: int, alpha: float, track: bool = True) -> torch.Tensor:
        w = self.sample_w(G, n, block, track)  # the mapping (and w̄ tracking) stays in float32
        synthesis = self._synthesis if G is self.G else G.synthesis
        with _precision.autocast(self.precision, self.device):
            return synthesis(w, noise_mode="random", block=block, alpha=alpha).float()

    def ema_beta(self, batch: int) -> float:
        """``0.5 ** (batch / ema_nimg)``; half-life ``--ema-kimg`` (v1's ``G_smoothing_kimg``),
        ramped up as ``min(ema_nimg, images * ema_rampup)`` (StyleGAN2-ADA)."""
        ema_nimg = self.args.ema_kimg * 1000.0
        if self.args.ema_rampup and self.args.ema_rampup > 0:
            ema_nimg = min(ema_nimg, self.state.images_seen * self.args.ema_rampup)
        return 0.5 ** (batch / max(ema_nimg, 1e-8))

    def _enter_phase(self, key: tuple[int, int]) -> None:
        st = self.state
        if (st.phase_index, st.phase_stage) == key:
            return
        if st.phase_stage != -1 and self.args.reset_opt:
            # v1 reset_opt_for_new_lod: fresh Adam moments whenever lod crosses an integer.
            self.opt_G.state.clear()
            self.opt_D.state.clear()
            if self.opt_D_pixel is not None:
                self.opt_D_pixel.state.clear()
        st.phase_index, st.phase_stage = key

    # ---------------------------------------------------------------- the step

    def training_step(self) -> dict[str, float]:
        """One D step and one G step on one minibatch (v1 ``training_loop``: D first, then G,
        then the ``Gs`` moving average). Returns the losses as floats."""
        st, args, G, D = self.state, self.args, self.G, self.D
        block, alpha, key = self.schedule.at(st.images_seen)
        self._enter_phase(key)
        batch = self.batch_size(block)
        reals = self.prepare_reals(self.data[np.sort(self.stream.next(batch))], block, alpha)

        D.requires_grad_(True)
        if st.d_warmup_left > 0:  # --d-warmup-kimg: a fresh D learns the trained G's fakes before G moves
            return self._d_warmup_step(reals, batch, block, alpha)
        if getattr(args, "one_g_pass", False):  # the G step below reuses these fakes (and their graph)
            fakes_g = self.generate(G, batch, block, alpha)
            fakes = fakes_g.detach()
        else:
            fakes_g = None
            with torch.no_grad():
                fakes = self.generate(G, batch, block, alpha)
        if self.projected:
            return self._projected_step(reals, fakes, fakes_g, batch, block, alpha)
        loss_D, r1, real_logits, fake_logits = self._logistic_d_loss(lambda x: self.discriminate(x, block, alpha),
                                                                    reals, fakes)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()
        st.d_steps += 1

        # G: non-saturating logistic, softplus(-D(G(z)))
        D.requires_grad_(False)
        fakes = fakes_g if fakes_g is not None else self.generate(G, batch, block, alpha)
        loss_G = F.softplus(-self.discriminate(fakes, block, alpha)).mean()
        self._g_update(loss_G, batch, fakes)
        return {"loss_G": float(loss_G.detach()), "loss_D": float(loss_D.detach()),
                "r1": float(r1.detach()) if r1 is not None else float("nan"), **self._penalty_log(),
                "real_logit": float(real_logits.detach().mean()), "fake_logit": float(fake_logits.detach().mean())}

    def _d_warmup_step(self, reals: torch.Tensor, batch: int, block: int, alpha: float) -> dict[str, float]:
        """One D step on G's fakes with G, G_ema and the image count left alone (``--d-warmup-kimg``,
        after ``--transfer`` of an exported generator: D starts fresh against a trained G)."""
        from ..projected import hinge_d_loss

        with torch.no_grad():
            fakes = self.generate(self.G, batch, block, alpha, track=False)  # G, w̄ included, stays as it is
        if self.projected:
            real_logits, fake_logits = self.discriminate(reals, block, alpha), self.discriminate(fakes, block, alpha)
            loss_D = hinge_d_loss(real_logits, fake_logits)
            real, fake = (float(sum(x.detach().mean() for x in ls) / len(ls)) for ls in (real_logits, fake_logits))
        else:
            loss_D, _, real_logits, fake_logits = self._logistic_d_loss(lambda x: self.discriminate(x, block, alpha),
                                                                        reals, fakes)
            real, fake = float(real_logits.detach().mean()), float(fake_logits.detach().mean())
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()
        pixel = self._pixel_d_step(reals, fakes) if self.D_pixel is not None else {}
        st = self.state
        st.d_steps += 1
        st.d_warmup_left = max(st.d_warmup_left - batch, 0)
        if st.d_warmup_left == 0:
            print(f"\n[i2s.train] D warm-up done after {st.d_steps} D steps: G trains from here",
                  file=sys.stderr, flush=True)
        return {"loss_D": float(loss_D.detach()), "real_logit": real, "fake_logit": fake, **pixel}

    def _g_update(self, loss_G: torch.Tensor, batch: int, fakes: torch.Tensor | None = None) -> None:
        """Backward and Adam for G (with the lazy locality penalty when due, and the range penalty
        on the step's ``fakes``), then G_ema."""
        args, st = self.args, self.state
        block = self.schedule.at(st.images_seen)[0]
        self._range = None
        if getattr(args, "range_penalty", 0.0) > 0 and fakes is not None:
            self._range = range_penalty(fakes)
            loss_G = loss_G + args.range_penalty * self._range
        self._locality = None
        if (getattr(args, "locality", 0.0) > 0 and block == len(self.G.synthesis.torgb) - 1
                and st.iterations % args.locality_interval == 0):
            self._locality = self.locality_loss(max(batch // 4, 2))
            loss_G = loss_G + self._locality * (args.locality * args.locality_interval)
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)
        ema_update(self.G_ema, self.G, self.ema_beta(batch))
        self.state.images_seen += batch
        self.state.iterations += 1

    def _projected_step(self, reals: torch.Tensor, fakes: torch.Tensor, fakes_g: torch.Tensor | None, batch: int,
                        block: int, alpha: float) -> dict[str, float]:
        """Projected GAN (Sauer et al. 2021): hinge loss on the multi-scale logits of the
        projected D, no R1 (the frozen features and spectral-norm heads keep D smooth)."""
        from ..projected import hinge_d_loss, hinge_g_loss

        real_logits = self.discriminate(reals, block, alpha)
        fake_logits = self.discriminate(fakes, block, alpha)
        loss_D = hinge_d_loss(real_logits, fake_logits)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()
        pixel = self._pixel_d_step(reals, fakes) if self.D_pixel is not None else {}
        self.state.d_steps += 1

        self.D.requires_grad_(False)
        if fakes_g is None:
            fakes_g = self.generate(self.G, batch, block, alpha)
        loss_G = hinge_g_loss(self.discriminate(fakes_g, block, alpha))
        if self.D_pixel is not None:  # --d-pixel: plus the pixel D's non-saturating loss, weighted
            self.D_pixel.requires_grad_(False)
            loss_G_pixel = F.softplus(-self._pixel_logits(fakes_g)).mean()
            loss_G = loss_G + self.args.d_pixel * loss_G_pixel
            pixel["loss_G_pixel"] = float(loss_G_pixel.detach())
        self._g_update(loss_G, batch, fakes_g)
        if self.D_pixel is not None:
            self.D_pixel.requires_grad_(True)
        mean = lambda ls: float(sum(x.detach().mean() for x in ls) / len(ls))  # noqa: E731
        return {"loss_G": float(loss_G.detach()), "loss_D": float(loss_D.detach()), "r1": float("nan"),
                "real_logit": mean(real_logits), "fake_logit": mean(fake_logits), **pixel, **self._penalty_log()}

    def _pixel_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The pixel D's logits (``--d-pixel``) on DiffAugment'ed images at the model resolution."""
        if x.shape[-1] != self.cfg.resolution:
            x = upscale2d(x, self.cfg.resolution // x.shape[-1])
        last = len(self.G.synthesis.torgb) - 1
        with _precision.autocast(self.precision, self.device):
            return self.D_pixel(self.augment(x), last, 1.0).float()

    def _logistic_d_loss(self, logits: Callable[[torch.Tensor], torch.Tensor], reals: torch.Tensor,
                         fakes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """v1's D loss, ``softplus(D(fake)) + softplus(-D(real))``, plus the lazy R1 penalty
        ``gamma/2 |grad D(real)|^2`` every ``--r1-interval`` D steps (scaled up by the interval).
        Returns (loss, R1 or None when not due, real logits, fake logits)."""
        args = self.args
        do_r1 = args.r1_gamma > 0 and self.state.d_steps % args.r1_interval == 0
        reals_in = reals.detach().requires_grad_(do_r1)
        real_logits = logits(reals_in)
        fake_logits = logits(fakes)
        loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        r1 = None
        if do_r1:
            (grad,) = torch.autograd.grad(real_logits.sum(), reals_in, create_graph=True)
            r1 = grad.square().sum(dim=(1, 2, 3)).mean()
            loss = loss + r1 * (args.r1_gamma / 2 * args.r1_interval)
        return loss, r1, real_logits, fake_logits

    def _pixel_d_step(self, reals: torch.Tensor, fakes: torch.Tensor) -> dict[str, float]:
        """One step of the pixel D (``--d-pixel``): the StyleGAN D's logistic loss with lazy R1."""
        loss, r1, _, _ = self._logistic_d_loss(self._pixel_logits, reals, fakes)
        out = {"loss_D_pixel": float(loss.detach())}  # with R1 when due, as the StyleGAN D's loss_D
        if r1 is not None:
            out["r1_pixel"] = float(r1.detach())
        self.opt_D_pixel.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_D_pixel.step()
        return out

    def _penalty_log(self) -> dict[str, float]:
        out = {}
        for name in ("locality", "range"):
            v = getattr(self, f"_{name}", None)
            if v is not None:
                out[name] = float(v.detach())
        return out

    # ---------------------------------------------------------------- outputs

    @torch.no_grad()
    def sample_grid(self, path: Path) -> None:
        """8x8 grid from the fixed z's: ``G_ema``, psi 1, stored noise, at the current
        resolution/alpha, nearest-up-sampled to the model resolution."""
        from PIL import Image

        block, alpha, _ = self.schedule.at(self.state.images_seen)
        imgs = []
        for z in self.sample_z.split(16):
            w = self.G_ema.mapping(z.to(self.device))
            x = self.G_ema.synthesis(w, noise_mode="const", block=block, alpha=alpha)
            imgs.append(x.cpu())
        x = torch.cat(imgs)
        f = self.cfg.resolution // x.shape[-1]
        if f > 1:
            x = upscale2d(x, f)
        x = (x * 127.5 + 127.5).clamp(0, 255).to(torch.uint8)
        n, c, h, w_ = x.shape
        grid = x.view(SAMPLE_GRID, SAMPLE_GRID, c, h, w_).permute(0, 3, 1, 4, 2).reshape(SAMPLE_GRID * h, SAMPLE_GRID * w_, c)
        import io as _io

        from ..io import atomic_write

        buf = _io.BytesIO()
        Image.fromarray(grid.numpy()).save(buf, format="PNG")
        atomic_write(path, buf.getvalue())

    def checkpoint_dict(self) -> dict:
        self.state.data_epoch, self.state.data_pos = self.stream.epoch, self.stream.pos
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
            "config": self.cfg.to_dict(),
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "state": asdict(self.state), "rng": rng, "args": plain(vars(self.args)),
            **({"D_pixel": self.D_pixel.state_dict(), "opt_D_pixel": self.opt_D_pixel.state_dict()}
               if self.D_pixel is not None else {}),
        }

    def save_checkpoint(self, out: Path | None = None) -> Path:
        """Atomically write ``OUT/checkpoint.pt``, keeping the previous as ``checkpoint-prev.pt``."""
        out = Path(out) if out is not None else self.out
        if out is None:
            raise ValueError("no output directory")
        path = out / "checkpoint.pt"
        atomic_save(self.checkpoint_dict(), path, keep_prev=out / "checkpoint-prev.pt")
        return path

    def keep_snapshot(self, checkpoint: Path) -> Path:
        """``--keep-every``: the checkpoint's G_ema exported (as ``--export`` does) to
        ``OUT/snapshots/<k>k.pt``, where k is the thousands of images seen (``164k.pt``)."""
        from .export import export_from_checkpoint

        out = checkpoint.parent / "snapshots" / f"{self.state.images_seen / 1000:g}k.pt"
        out.parent.mkdir(exist_ok=True)
        return export_from_checkpoint(checkpoint, out)

    def load_checkpoint(self, ckpt: dict) -> None:
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not an i2s training checkpoint")
        if ckpt["config"] != self.cfg.to_dict():
            raise ValueError(f"checkpoint config {ckpt['config']} differs from {self.cfg.to_dict()}")
        self.G.load_state_dict(ckpt["G"])
        self.D.load_state_dict(ckpt["D"])
        self.G_ema.load_state_dict(ckpt["G_ema"])
        self.opt_G.load_state_dict(ckpt["opt_G"])
        self.opt_D.load_state_dict(ckpt["opt_D"])
        if self.D_pixel is not None:
            if "D_pixel" not in ckpt:
                raise ValueError("the checkpoint has no pixel D (--d-pixel): resume it without --d-pixel, or start "
                                 "from it with --transfer")
            self.D_pixel.load_state_dict(ckpt["D_pixel"])
            self.opt_D_pixel.load_state_dict(ckpt["opt_D_pixel"])
        # Adam's saved param groups carry the old run's lr and betas: the arguments win (the
        # checkpoint's own unless --lr/--beta1/--beta2 were given on resume), so a run can be
        # continued at a lower lr.
        for opt in (self.opt_G, self.opt_D, self.opt_D_pixel):
            for group in opt.param_groups if opt is not None else ():
                group["lr"], group["betas"] = self.args.lr, (self.args.beta1, self.args.beta2)
        self.state = TrainState(**ckpt["state"])
        self.stream = BatchStream(len(self.data), self.args.seed, self.state.data_epoch, self.state.data_pos)
        torch.set_rng_state(ckpt["rng"]["torch"])
        if "cuda" in ckpt["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], self.device)

    def transfer_from(self, ckpt: dict) -> tuple[int, int]:
        """Start from another run's checkpoint whose networks differ in shape (for example a
        smaller ``--fmap-base`` above some resolution): every tensor of G, D and G_ema whose name
        and shape match is copied, the others keep their fresh initialisation, and the training
        state (images seen, data position, phase) carries over so the schedule goes on where the
        old run stopped. Adam's moments start afresh (v1 resets them at every phase anyway).
        An exported generator (``data/models/*.pt``) also works: G and G_ema start from it and D
        from scratch; a carried state (``--export-carry``, small enough to commit) restores D too,
        which is how a run carries over to a new machine without its checkpoint.
        Returns (tensors copied, tensors left fresh)."""
        if ckpt.get("format") == EXPORT_FORMAT:  # an exported generator: G and G_ema start from it, D afresh
            sd = as_float(ckpt["state_dict"])
            ckpt = {"G": sd, "G_ema": sd, "D": {},
                    "state": {"images_seen": int(ckpt.get("info", {}).get("images_seen", 0))}}
        elif ckpt.get("format") not in (CHECKPOINT_FORMAT, CARRY_FORMAT):
            raise ValueError("not an i2s training checkpoint, carried state or exported generator")
        copied = fresh = 0
        for name in ("G", "D", "G_ema") + (("D_pixel",) if self.D_pixel is not None else ()):
            net = getattr(self, name)
            own = net.state_dict()
            take = {k: v for k, v in ckpt.get(name, {}).items() if k in own and own[k].shape == v.shape}
            net.load_state_dict(take, strict=False)
            copied += len(take)
            fresh += len(own) - len(take)
        self.state = TrainState(**ckpt["state"])
        self.stream = BatchStream(len(self.data), self.args.seed, self.state.data_epoch, self.state.data_pos)
        return copied, fresh

    def transfer_discriminator(self, obj: dict, source: str = "the D file") -> int:
        """Take D's trained tensors from an ``--export-d`` file (after :meth:`transfer_from` an
        exported generator, which leaves D fresh). Every trainable tensor must be there with its
        shape, and this D's fixed projections must be the ones the file's D had (same arguments);
        otherwise one ``ValueError`` line naming ``source``. Returns the tensors taken."""
        if obj.get("format") != D_FORMAT:
            raise ValueError(f"{source}: not a discriminator file (write one with python -m i2s.train --out RUN --export-d F)")
        own = self.D.state_dict()
        if obj.get("proj_sha256") != fixed_tensors_sha256(own):
            raise ValueError(f"{source}: its D was built with other fixed projections (another --d-arch, --proj-res, "
                             "--d-width or --seed): train with the arguments of the run it came from")
        take = as_float(obj.get("D", {}))
        want = {k: v.shape for k, v in own.items() if not k.startswith("proj.")}
        bad = sorted(k for k in want if k not in take or take[k].shape != want[k]) + sorted(set(take) - set(want))
        if bad:
            raise ValueError(f"{source}: {len(bad)} tensors of D missing or of another shape ({bad[0]}, ...): "
                             "train with the arguments of the run it came from")
        self.D.load_state_dict(take, strict=False)
        if self.D_pixel is not None and "D_pixel" in obj:
            self.D_pixel.load_state_dict(as_float(obj["D_pixel"]))
        return len(take)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, args: argparse.Namespace | None = None,
                        data: np.ndarray | None = None) -> "Trainer":
        """Restore a trainer exactly; ``args`` default to the ones stored in the checkpoint."""
        ckpt = load_run_file(path)
        if args is None:
            args = argparse.Namespace(**ckpt["args"])
        trainer = cls(args, data)
        trainer.load_checkpoint(ckpt)
        return trainer

    def _log(self, metrics: dict[str, float], batch: int) -> None:
        m = self._meter
        m["images"] += batch
        m["n"] += 1
        for k, v in metrics.items():
            if not math.isnan(v):
                s = m["sums"].setdefault(k, [0.0, 0])
                s[0] += v
                s[1] += 1

    def _flush_log(self, pbar: Any = None) -> dict:
        m, st = self._meter, self.state
        now = time.perf_counter()
        block, alpha, _ = self.schedule.at(max(st.images_seen - 1, 0))
        rec = {"kimg": round(st.images_seen / 1000, 3), "images_seen": st.images_seen,
               "resolution": 4 * 2**block, "alpha": round(alpha, 4), "iterations": st.iterations}
        rec.update({k: s[0] / s[1] for k, s in m["sums"].items() if s[1]})
        rec["images_per_s"] = m["images"] / max(now - m["t"], 1e-9)
        rec["wall_time_s"] = round(st.wall_time, 1)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
        if pbar is not None:
            pbar.set_postfix({"res": rec["resolution"], "a": f"{alpha:.2f}", "G": f"{rec.get('loss_G', 0):.3f}",
                              "D": f"{rec.get('loss_D', 0):.3f}", "img/s": f"{rec['images_per_s']:.1f}"}, refresh=False)
        self._meter = {"t": now, "images": 0, "sums": {}, "n": 0}
        return rec

    # ---------------------------------------------------------------- the loop

    def _kimg_tag(self, images: int) -> str:
        """``000120`` (kimg) for sample names; with 3 decimals when grids come more often than 1 kimg."""
        if self.args.sample_every >= 1:
            return f"{images // 1000:06d}"
        return f"{images / 1000:010.3f}"

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal is not None:  # second signal: give up at once
            raise KeyboardInterrupt
        self._stop_signal = signum
        print(f"\n[i2s.train] signal {signum}: saving a checkpoint and stopping", file=sys.stderr, flush=True)

    def train(self, max_iterations: int | None = None) -> TrainState:
        """Run until ``--total-kimg`` (or ``max_iterations`` more steps), writing checkpoints
        every ``--ckpt-every`` kimg, sample grids every ``--sample-every`` kimg, a log line
        every ``--log-every`` kimg, and a checkpoint on SIGINT/SIGTERM."""
        from tqdm.auto import tqdm

        args, st = self.args, self.state
        total = int(round(args.total_kimg * 1000))
        every = lambda kimg: max(int(round(kimg * 1000)), 1)  # noqa: E731
        if self.out is not None and st.images_seen == 0 and st.iterations == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            self.sample_grid(self.out / f"samples-{self._kimg_tag(0)}.png")
            st.next_ckpt = every(args.ckpt_every)
            st.next_sample = every(args.sample_every)
            st.next_log = every(args.log_every)
        old = {}
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, self._on_signal)
        pbar = tqdm(total=total, initial=min(st.images_seen, total), unit="img", unit_scale=True,
                    dynamic_ncols=True, disable=args.no_progress, desc="i2s.train")
        self._meter = {"t": time.perf_counter(), "images": 0, "sums": {}, "n": 0}
        keep = every(args.keep_every) if getattr(args, "keep_every", 0) else 0
        kept = st.images_seen // keep if keep else 0  # the multiples of --keep-every already passed
        steps = 0
        try:
            deadline = time.monotonic() + args.minutes * 60 if getattr(args, "minutes", None) else math.inf
            while st.images_seen < total and (max_iterations is None or steps < max_iterations):
                if time.monotonic() >= deadline and self._stop_signal is None:
                    print(f"\n[i2s.train] --minutes {args.minutes} reached: saving a checkpoint and stopping",
                          file=sys.stderr, flush=True)
                    self._stop_signal = 0
                t0 = time.perf_counter()
                before = st.images_seen
                metrics = self.training_step()
                st.wall_time += time.perf_counter() - t0
                steps += 1
                self._log(metrics, st.images_seen - before)
                pbar.update(min(st.images_seen, total) - min(before, total))
                done = st.images_seen >= total
                if st.images_seen >= st.next_log or done or self._stop_signal is not None:
                    self._flush_log(pbar)
                    st.next_log = (st.images_seen // every(args.log_every) + 1) * every(args.log_every)
                if self.out is not None and (st.images_seen >= st.next_sample or done):
                    self.sample_grid(self.out / f"samples-{self._kimg_tag(st.images_seen)}.png")
                    st.next_sample = (st.images_seen // every(args.sample_every) + 1) * every(args.sample_every)
                if self.out is not None and (st.images_seen >= st.next_ckpt or done or self._stop_signal is not None):
                    st.next_ckpt = (st.images_seen // every(args.ckpt_every) + 1) * every(args.ckpt_every)
                    path = self.save_checkpoint()
                    if keep and st.images_seen // keep > kept:
                        kept = st.images_seen // keep
                        self.keep_snapshot(path)
                if self._stop_signal is not None:
                    if self.out is not None:
                        self.sample_grid(self.out / f"samples-{self._kimg_tag(st.images_seen)}.png")
                    break
        finally:
            pbar.close()
            for sig, h in old.items():
                signal.signal(sig, h)
        return st
