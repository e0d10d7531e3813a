"""Training the kit's ``mini`` StyleGAN v1 (64x64 faces) on a CPU: ``python -m i2s.train``.

The recipe is StyleGAN v1's (Karras, Laine, Aila, "A Style-Based Generator Architecture for
Generative Adversarial Networks", CVPR 2019; NVlabs/stylegan ``training/``), scaled down:

* generator: :class:`i2s.stylegan.StyleGAN` with the mini config (channels 128 at 4-32 px,
  64 at 64 px; z, w 512-d; 8 mapping layers);
* discriminator: :class:`Discriminator`, the ``D_basic`` of networks_stylegan.py with
  equalized learning rate, minibatch standard deviation at 4x4 and the same channel counts
  (down-sampling by blur + stride-2 conv by default, a quarter of v1's conv-then-pool
  multiply-adds; ``--d-down pool`` for v1's);
* progressive growing (Karras et al. 2018, kept by StyleGAN v1): training starts at 8x8 and
  each new resolution is faded in linearly, in G (``Synthesis.forward(block, alpha)``), in D
  (:meth:`Discriminator.forward`) and in the reals; Adam's state is reset at every phase
  change (``reset_opt_for_new_lod``);
* loss: non-saturating logistic for G and D, R1 penalty on reals (``D_logistic_simplegp``),
  applied lazily every ``--r1-interval`` D steps with the penalty scaled by the interval
  (StyleGAN2's lazy regularisation);
* style-mixing regularisation (probability 0.9, crossover at a random active layer);
* the long-term average ``G_ema`` (the official ``Gs``, half-life 10k images, with
  StyleGAN2-ADA's ramp-up) which also carries ``w_avg`` (w̄) and the stored noise of G;
* Adam lr 0.002, betas (0, 0.99), eps 1e-8 for every parameter (the mapping network's
  lrmul 0.01 lives in its equalized-lr runtime scale, so one plain lr is the official rule);
* augmentation for a small data set: x-flips of the reals plus DiffAugment-style
  differentiable colour / translation / cutout (Zhao et al., NeurIPS 2020) on everything D
  sees (``--augment diffaug``).

The measured costs that shape this (docs: cpu-training-notes.md) say images at 8-32 px are
many times cheaper than at 64 px, so most images are shown at low resolution.

Typical use::

    python -m i2s.train --data faces64.npy --out train-runs/mini --threads 2
    python -m i2s.train --out train-runs/mini --resume          # continue exactly
    python -m i2s.train --out train-runs/mini --export data/models/mini-faces64.pt
    python -m i2s.train --bench                                   # images/s per resolution
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import precision as _precision
from .stylegan import Conv2d, Dense, StyleGAN, StyleGANConfig, blur2d, upscale2d

__all__ = [
    "Discriminator", "diff_augment", "Schedule", "Phase", "parse_schedule", "parse_batch",
    "Trainer", "TrainState", "ema_update", "export_generator", "build_parser", "parse_args",
    "main", "EXPORT_FORMAT", "EXPORT_FORMAT_VERSION",
]

EXPORT_FORMAT = "i2s-stylegan1"
EXPORT_FORMAT_VERSION = 1
CHECKPOINT_FORMAT = "i2s-train-checkpoint"
CHECKPOINT_VERSION = 1
SAMPLE_GRID = 8  # 8x8 sample grids
SAMPLE_SEED_OFFSET = 1_000_003  # fixed sample z's come from seed + this (not the training stream)


# --------------------------------------------------------------------------- discriminator


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Minibatch standard deviation layer (Karras et al. 2018; networks_stylegan
    ``minibatch_stddev_layer`` with one new feature map).

    Samples are split into groups of ``group_size`` (strided, as the official reshape
    ``[G, -1, ...]`` does); the std over each group, averaged over C, H, W, is appended as
    one constant feature map. The group shrinks to the largest divisor of N not above
    ``group_size``.
    """
    n, c, h, w = x.shape
    g = min(group_size, n)
    while n % g:
        g -= 1
    y = x.reshape(g, -1, c, h, w)
    y = y - y.mean(dim=0, keepdim=True)
    y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [M, C, H, W]
    y = y.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)  # [M, 1, 1, 1]
    y = y.repeat(g, 1, h, w)  # sample i gets group (i mod M), as tf.tile does
    return torch.cat([x, y], dim=1)


DownMode = Literal["none", "pool", "stride"]


class DConv(nn.Module):
    """Equalized-lr convolution + bias + leaky ReLU (``act(apply_bias(conv2d(...)))``).

    ``down="pool"`` is v1's ``conv2d_downscale2d`` below 128 px: blur, 3x3 conv, 2x2 average
    pool. ``down="stride"``: blur, then the 3x3 conv with stride 2 (StyleGAN2's down-sampling
    conv), a quarter of the multiply-adds, which matters on a CPU.
    """

    def __init__(self, in_c: int, out_c: int, kernel: int, down: DownMode = "none") -> None:
        super().__init__()
        self.conv = Conv2d(in_c, out_c, kernel)  # gain sqrt(2), runtime-scaled like G's
        self.bias = nn.Parameter(torch.zeros(out_c))
        if down not in ("none", "pool", "stride"):
            raise ValueError(f"down must be none, pool or stride, got {down!r}")
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down == "pool":
            x = F.avg_pool2d(self.conv(blur2d(x)), 2)
        elif self.down == "stride":
            x = F.conv2d(blur2d(x), self.conv.weight * self.conv.weight_gain, stride=2, padding=self.conv.kernel // 2)
        else:
            x = self.conv(x)
        return _lrelu(x + self.bias.view(1, -1, 1, 1))


class DBlock(nn.Module):
    """One resolution of ``D_basic`` (8x8 and up): Conv0 (3x3) then Conv1_down (blur, 3x3, down)."""

    def __init__(self, in_c: int, out_c: int, down: DownMode = "pool") -> None:
        super().__init__()
        self.conv0 = DConv(in_c, in_c, 3)
        self.conv1_down = DConv(in_c, out_c, 3, down=down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1_down(self.conv0(x))


class DEpilogue(nn.Module):
    """The 4x4 block of ``D_basic``: minibatch stddev, 3x3 conv, dense, dense -> 1 logit."""

    def __init__(self, channels: int, dense_fmaps: int, mbstd_group_size: int = 4) -> None:
        super().__init__()
        self.mbstd_group_size = mbstd_group_size
        extra = 1 if mbstd_group_size > 1 else 0
        self.conv = DConv(channels + extra, channels, 3)
        self.dense0 = Dense(channels * 16, dense_fmaps, gain=math.sqrt(2))
        self.dense1 = Dense(dense_fmaps, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size)
        x = self.conv(x)
        x = _lrelu(self.dense0(x.flatten(1)))
        return self.dense1(x)


class Discriminator(nn.Module):
    """StyleGAN v1 ``D_basic`` with equalized learning rate and progressive growing.

    Channel counts mirror the generator config: ``fromrgb[b]`` maps RGB at resolution
    ``4 * 2**b`` to ``cfg.channels(res)`` features; ``blocks[b]`` (b >= 1) takes them to
    ``cfg.channels(res / 2)`` at half the resolution; ``epilogue`` is the 4x4 head with
    ``nf(0) = min(fmap_base, fmap_max)`` dense features. Output: one logit per image [N, 1].
    ``down`` picks the down-sampling conv of the blocks (see :class:`DConv`).
    """

    def __init__(self, cfg: StyleGANConfig, mbstd_group_size: int = 4, down: DownMode = "stride") -> None:
        super().__init__()
        self.cfg = cfg
        self.down = down
        n_blocks = cfg.log2_res - 1  # blocks 0 (4x4) .. log2(res) - 2
        self.fromrgb = nn.ModuleList(
            DConv(cfg.num_channels, cfg.channels(4 * 2**b), 1) for b in range(n_blocks))
        self.blocks = nn.ModuleList([nn.Identity()] + [
            DBlock(cfg.channels(4 * 2**b), cfg.channels(4 * 2 ** (b - 1)), down) for b in range(1, n_blocks)])
        dense_fmaps = min(int(cfg.fmap_base), cfg.fmap_max)  # nf(0)
        self.epilogue = DEpilogue(cfg.channels(4), dense_fmaps, mbstd_group_size)

    @property
    def max_block(self) -> int:
        return len(self.fromrgb) - 1

    def forward(self, img: torch.Tensor, block: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """Score images of resolution ``4 * 2**block`` (default: full resolution).

        During a fade-in (``alpha < 1``) the features of the new top block are blended with
        ``fromrgb[block - 1]`` of the 2x average-pooled image, mirroring the generator (the
        official 'linear' structure, ``Grow_lod``).
        """
        block = self.max_block if block is None else block
        res = 4 * 2**block
        if img.shape[-1] != res or img.shape[-2] != res:
            raise ValueError(f"D at block {block} expects {res}x{res} images, got {tuple(img.shape)}")
        x = self.fromrgb[block](img)
        if block > 0:
            x = self.blocks[block](x)
            if alpha < 1.0:
                x = torch.lerp(self.fromrgb[block - 1](F.avg_pool2d(img, 2)), x, alpha)
            for b in range(block - 1, 0, -1):
                x = self.blocks[b](x)
        return self.epilogue(x)


# --------------------------------------------------------------------------- augmentation


def _aug_color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)  # brightness
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + m  # saturation
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - m) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + m  # contrast
    return x


def _aug_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size; vacated pixels become zero."""
    n, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    src_y = torch.arange(h, device=x.device).view(1, h, 1) - ty  # output (y, x) reads (y - ty, x - tx)
    src_x = torch.arange(w, device=x.device).view(1, 1, w) - tx
    inside = ((src_y >= 0) & (src_y < h) & (src_x >= 0) & (src_x < w)).to(x.dtype)  # [N, H, W]
    idx = (src_y.clamp(0, h - 1) * w + src_x.clamp(0, w - 1)).view(n, 1, h * w).expand(n, c, h * w)
    out = x.reshape(n, c, h * w).gather(2, idx).view(n, c, h, w)
    return out * inside.unsqueeze(1)


def _aug_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ``ratio`` times the image size per image, centred anywhere."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1) - (cy - ch // 2)
    xs = torch.arange(w, device=x.device).view(1, 1, w) - (cx - cw // 2)
    hole = (ys >= 0) & (ys < ch) & (xs >= 0) & (xs < cw)
    return x * (~hole).to(x.dtype).unsqueeze(1)


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout") -> torch.Tensor:
    """Differentiable augmentation applied to every image D sees, real or fake (DiffAugment,
    Zhao et al. 2020): brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5];
    translation by up to 1/8 with zero padding; cutout of a square of half the size.
    Random parameters are drawn per image from torch's global generator."""
    for op in filter(None, policy.split(",")):
        if op == "color":
            x = _aug_color(x)
        elif op == "translation":
            x = _aug_translation(x)
        elif op == "cutout":
            x = _aug_cutout(x)
        else:
            raise ValueError(f"unknown DiffAugment op {op!r}")
    return x


# --------------------------------------------------------------------------- schedule


def _parse_count(s: str) -> int:
    """'40k' -> 40000, '1.5M' -> 1500000, '300' -> 300 (images)."""
    s = s.strip().lower()
    mult = 1
    if s.endswith("k"):
        mult, s = 1000, s[:-1]
    elif s.endswith("m"):
        mult, s = 1_000_000, s[:-1]
    return int(round(float(s) * mult))


@dataclass(frozen=True)
class Phase:
    """One resolution of the progressive schedule: images ``[start, end)``, the first
    ``fade`` of them fading the new resolution in (alpha 0 -> 1)."""

    res: int
    start: int
    fade: int
    end: float  # math.inf for the open-ended last phase

    @property
    def block(self) -> int:
        return int(math.log2(self.res)) - 2


def parse_schedule(spec: str, fade_frac: float = 0.5) -> list[Phase]:
    """``"8:40k,16:60k,32:80k,64:rest"`` -> phases by images shown.

    Each entry is ``RES:LEN`` or ``RES:LEN/FADE``; every phase after the first starts with a
    fade-in of ``FADE`` images (default ``fade_frac * LEN``). ``rest`` (last entry only)
    lasts until the end of training; its fade-in defaults to ``fade_frac`` times the previous
    phase's length.
    """
    phases: list[Phase] = []
    start = 0
    entries = [e for e in spec.split(",") if e.strip()]
    if not entries:
        raise ValueError("empty schedule")
    prev_len = 0
    for i, entry in enumerate(entries):
        try:
            res_s, rest = entry.split(":")
            res = int(res_s)
        except ValueError:
            raise ValueError(f"bad schedule entry {entry!r} (want RES:LEN[/FADE])") from None
        if res < 4 or 2 ** int(math.log2(res)) != res:
            raise ValueError(f"schedule resolution must be a power of two >= 4, got {res}")
        if phases and res != 2 * phases[-1].res:
            raise ValueError(f"schedule resolutions must double each phase: {phases[-1].res} -> {res}")
        len_s, _, fade_s = rest.partition("/")
        if len_s.strip().lower() == "rest":
            if i != len(entries) - 1:
                raise ValueError("'rest' is only allowed for the last schedule entry")
            length: float = math.inf
            fade = _parse_count(fade_s) if fade_s else int(round(fade_frac * prev_len))
        else:
            length = _parse_count(len_s)
            fade = _parse_count(fade_s) if fade_s else int(round(fade_frac * length))
        if i == 0:
            fade = 0
        if fade > length:
            raise ValueError(f"fade-in longer than its phase in {entry!r}")
        phases.append(Phase(res, start, fade, start + length))
        start = start + length  # type: ignore[assignment]
        prev_len = int(length) if length != math.inf else prev_len
    return phases


class Schedule:
    """Where in progressive growing a given number of images shown falls."""

    def __init__(self, phases: Sequence[Phase]) -> None:
        self.phases = list(phases)

    def at(self, images: int) -> tuple[int, float, tuple[int, int]]:
        """-> (block, alpha, key); ``key = (phase index, 0 fade-in | 1 stable)``."""
        for i, p in enumerate(self.phases):
            if images < p.end or i == len(self.phases) - 1:
                t = images - p.start
                if t < p.fade:
                    return p.block, t / p.fade, (i, 0)
                return p.block, 1.0, (i, 1)
        raise AssertionError("unreachable")


def parse_batch(spec: str) -> dict[int, int]:
    """``"8:64,16:64,32:32,64:32"`` (or one number for all) -> {res: batch}."""
    spec = spec.strip()
    if ":" not in spec:
        b = int(spec)
        return {4 * 2**k: b for k in range(0, 12)}
    out: dict[int, int] = {}
    for entry in spec.split(","):
        res, b = entry.split(":")
        out[int(res)] = int(b)
    return out


# --------------------------------------------------------------------------- data


def open_dataset(path: str | os.PathLike) -> np.ndarray:
    """The packed uint8 array ``[N, H, W, 3]`` (memory-mapped ``.npy``)."""
    arr = np.load(path, mmap_mode="r")
    if arr.ndim != 4 or arr.shape[3] != 3 or arr.dtype != np.uint8 or arr.shape[1] != arr.shape[2]:
        raise ValueError(f"{path}: want a uint8 array [N, H, W, 3] with H == W, got {arr.dtype} {arr.shape}")
    return arr


class BatchStream:
    """Deterministic batch order: epoch ``e`` visits the images in a permutation drawn from
    ``(seed, e)``; the position (epoch, index) is all the state there is."""

    def __init__(self, n: int, seed: int, epoch: int = 0, pos: int = 0) -> None:
        if n <= 0:
            raise ValueError("empty data set")
        self.n, self.seed, self.epoch, self.pos = n, seed, epoch, pos
        self._perm = self._permutation(epoch)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def next(self, batch: int) -> np.ndarray:
        idx: list[np.ndarray] = []
        need = batch
        while need:
            take = min(need, self.n - self.pos)
            idx.append(self._perm[self.pos:self.pos + take])
            self.pos += take
            need -= take
            if self.pos == self.n:
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm = self._permutation(self.epoch)
        return np.concatenate(idx)


# --------------------------------------------------------------------------- EMA


@torch.no_grad()
def ema_update(G_ema: StyleGAN, G: StyleGAN, beta: float) -> None:
    """``G_ema <- beta * G_ema + (1 - beta) * G`` for parameters (the official ``Gs``,
    ``setup_as_moving_average_of``); buffers (``w_avg``, the stored noise) are copied,
    as ``beta_nontrainable = 0`` does."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.lerp_(p, 1.0 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


# --------------------------------------------------------------------------- trainer


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


def _plain(v: Any) -> Any:
    """Make ``v`` a plain value that ``torch.load(weights_only=True)`` and JSON accept."""
    if v is None:
        return v
    for t in (bool, int, float, str):  # also turns subclasses (TorchVersion, np.float64) into plain ones
        if isinstance(v, t):
            return t(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)


def _atomic_save(obj: Any, path: Path, keep_prev: Path | None = None) -> None:
    """``torch.save`` to a temp file, then ``os.replace`` (optionally moving the old file to
    ``keep_prev`` first, so one good checkpoint always exists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        if keep_prev is not None and path.exists():
            os.replace(path, keep_prev)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    """Holds G, D, G_ema, the optimisers, the schedule and the data stream.

    ``Trainer(args)`` builds fresh networks from ``args.seed``; :meth:`from_checkpoint`
    restores one exactly. :meth:`training_step` is one D step and one G step;
    :meth:`train` runs the loop with checkpoints, sample grids, logs and signals.
    """

    def __init__(self, args: argparse.Namespace, data: np.ndarray | None = None) -> None:
        self.args = args
        self.device = _resolve_device(args.device)
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

        if data is None:
            data = open_dataset(args.data)
        if data.shape[1] % self.cfg.resolution or data.shape[1] < self.cfg.resolution:
            raise ValueError(f"data is {data.shape[1]} px, the model {self.cfg.resolution} px")
        self.data = data

        torch.manual_seed(args.seed)
        self.G = StyleGAN(self.cfg).to(self.device)
        self.projected = getattr(args, "d_arch", "stylegan") == "projected"
        if self.projected:
            from .projected import ProjectedDiscriminator

            self.D = ProjectedDiscriminator(args.proj_res, csm=args.csm, proj_seed=args.seed).to(self.device)
        else:
            self.D = Discriminator(self.cfg, args.mbstd_group, args.d_down).to(self.device)
        self.precision = _precision.resolve(getattr(args, "precision", "float32"), self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        betas = (args.beta1, args.beta2)
        # One plain lr for all of G: mapping lrmul 0.01 is in its runtime weight scale.
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=args.lr, betas=betas, eps=1e-8)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=args.lr, betas=betas, eps=1e-8)
        self.state = TrainState()
        self.stream = BatchStream(len(self.data), args.seed)
        g = torch.Generator().manual_seed(args.seed + SAMPLE_SEED_OFFSET)
        self.sample_z = torch.randn(SAMPLE_GRID**2, self.cfg.z_dim, generator=g)
        self.out = Path(args.out) if args.out else None
        self._stop_signal: int | None = None
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
        return diff_augment(x) if self.args.augment == "diffaug" else x

    def discriminate(self, x: torch.Tensor, block: int, alpha: float) -> Any:
        """D's logits under the run's precision (float32 out): one tensor for the StyleGAN D, a
        list of logit maps (one per feature scale) for the projected D, which always sees the
        model resolution (lower-resolution phases are nearest-up-sampled)."""
        with _precision.autocast(self.precision, self.device):
            if not self.projected:
                return self.D(self.augment(x), block, alpha).float()
            if x.shape[-1] != self.cfg.resolution:
                x = upscale2d(x, self.cfg.resolution // x.shape[-1])
            return [o.float() for o in self.D(self.augment(x))]

    def sample_w(self, G: StyleGAN, n: int, block: int) -> torch.Tensor:
        """Random W+ codes with style-mixing regularisation (Karras et al. 2019 §3.1): with
        probability ``--style-mixing`` a second z takes over from a random crossover layer
        in ``[1, active layers)``. Updates G's ``w_avg`` (the official ``dlatent_avg``)."""
        z = torch.randn(n, self.cfg.z_dim, device=self.device)
        w = G.mapping(z, update_w_avg=True)
        if self.args.style_mixing > 0 and float(torch.rand(())) < self.args.style_mixing:
            active = 2 * (block + 1)
            cut = int(torch.randint(1, active, ())) if active > 1 else 1
            w2 = G.mapping(torch.randn(n, self.cfg.z_dim, device=self.device))
            w = torch.cat([w[:, :cut], w2[:, cut:]], dim=1)
        return w

    def generate(self, G: StyleGAN, n: int, block: int, alpha: float) -> torch.Tensor:
        w = self.sample_w(G, n, block)  # the mapping (and w̄ tracking) stays in float32
        with _precision.autocast(self.precision, self.device):
            return G.synthesis(w, noise_mode="random", block=block, alpha=alpha).float()

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
        with torch.no_grad():
            fakes = self.generate(G, batch, block, alpha)
        if self.projected:
            return self._projected_step(reals, fakes, batch, block, alpha)
        # D: softplus(D(fake)) + softplus(-D(real))  [+ lazy R1: gamma/2 |grad D(real)|^2]
        do_r1 = args.r1_gamma > 0 and st.d_steps % args.r1_interval == 0
        reals_in = reals.detach().requires_grad_(do_r1)
        real_logits = self.discriminate(reals_in, block, alpha)
        fake_logits = self.discriminate(fakes, block, alpha)
        loss_D = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        r1 = torch.zeros(())
        if do_r1:
            (grad,) = torch.autograd.grad(real_logits.sum(), reals_in, create_graph=True)
            r1 = grad.square().sum(dim=(1, 2, 3)).mean()
            loss_D = loss_D + r1 * (args.r1_gamma / 2 * args.r1_interval)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()
        st.d_steps += 1

        # G: non-saturating logistic, softplus(-D(G(z)))
        D.requires_grad_(False)
        fakes = self.generate(G, batch, block, alpha)
        loss_G = F.softplus(-self.discriminate(fakes, block, alpha)).mean()
        self._g_update(loss_G, batch)
        return {"loss_G": float(loss_G.detach()), "loss_D": float(loss_D.detach()),
                "r1": float(r1.detach()) if do_r1 else float("nan"),
                "real_logit": float(real_logits.detach().mean()), "fake_logit": float(fake_logits.detach().mean())}

    def _g_update(self, loss_G: torch.Tensor, batch: int) -> None:
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)
        ema_update(self.G_ema, self.G, self.ema_beta(batch))
        self.state.images_seen += batch
        self.state.iterations += 1

    def _projected_step(self, reals: torch.Tensor, fakes: torch.Tensor, batch: int, block: int,
                        alpha: float) -> dict[str, float]:
        """Projected GAN (Sauer et al. 2021): hinge loss on the multi-scale logits of the
        projected D, no R1 (the frozen features and spectral-norm heads keep D smooth)."""
        from .projected import hinge_d_loss, hinge_g_loss

        real_logits = self.discriminate(reals, block, alpha)
        fake_logits = self.discriminate(fakes, block, alpha)
        loss_D = hinge_d_loss(real_logits, fake_logits)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()
        self.state.d_steps += 1

        self.D.requires_grad_(False)
        loss_G = hinge_g_loss(self.discriminate(self.generate(self.G, batch, block, alpha), block, alpha))
        self._g_update(loss_G, batch)
        mean = lambda ls: float(sum(x.detach().mean() for x in ls) / len(ls))  # noqa: E731
        return {"loss_G": float(loss_G.detach()), "loss_D": float(loss_D.detach()), "r1": float("nan"),
                "real_logit": mean(real_logits), "fake_logit": mean(fake_logits)}

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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.png")
        Image.fromarray(grid.numpy()).save(tmp)
        os.replace(tmp, path)

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
            "state": asdict(self.state), "rng": rng, "args": _plain(vars(self.args)),
        }

    def save_checkpoint(self, out: Path | None = None) -> Path:
        """Atomically write ``OUT/checkpoint.pt``, keeping the previous as ``checkpoint-prev.pt``."""
        out = Path(out) if out is not None else self.out
        if out is None:
            raise ValueError("no output directory")
        path = out / "checkpoint.pt"
        _atomic_save(self.checkpoint_dict(), path, keep_prev=out / "checkpoint-prev.pt")
        return path

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
        Returns (tensors copied, tensors left fresh)."""
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not an i2s training checkpoint")
        copied = fresh = 0
        for name in ("G", "D", "G_ema"):
            net = getattr(self, name)
            own = net.state_dict()
            take = {k: v for k, v in ckpt[name].items() if k in own and own[k].shape == v.shape}
            net.load_state_dict(take, strict=False)
            copied += len(take)
            fresh += len(own) - len(take)
        self.state = TrainState(**ckpt["state"])
        self.stream = BatchStream(len(self.data), self.args.seed, self.state.data_epoch, self.state.data_pos)
        return copied, fresh

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, args: argparse.Namespace | None = None,
                        data: np.ndarray | None = None) -> "Trainer":
        """Restore a trainer exactly; ``args`` default to the ones stored in the checkpoint."""
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
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
        in_main = __import__("threading").current_thread() is __import__("threading").main_thread()
        if in_main:
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, self._on_signal)
        pbar = tqdm(total=total, initial=min(st.images_seen, total), unit="img", unit_scale=True,
                    dynamic_ncols=True, disable=args.no_progress, desc="i2s.train")
        self._meter = {"t": time.perf_counter(), "images": 0, "sums": {}, "n": 0}
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
                    self.save_checkpoint()
                if self._stop_signal is not None:
                    if self.out is not None:
                        self.sample_grid(self.out / f"samples-{self._kimg_tag(st.images_seen)}.png")
                    break
        finally:
            pbar.close()
            for sig, h in old.items():
                signal.signal(sig, h)
        return st


# --------------------------------------------------------------------------- export


def export_generator(G_ema: StyleGAN, path: str | os.PathLike, info: dict, fp16: bool = True) -> Path:
    """Write a generator in the kit's ``i2s-stylegan1`` format (loadable with
    ``torch.load(path, weights_only=True)`` and :func:`i2s.weights.converted.load_converted`):
    ``{"format", "format_version", "config", "state_dict", "info"}``. The state dict holds
    every parameter and buffer (``mapping.w_avg`` = w̄ and the stored ``noise_const``),
    in float16 when ``fp16``. Written to a temp file, then ``os.replace``."""
    sd = {}
    for k, v in G_ema.state_dict().items():
        v = v.detach().to("cpu").clone().contiguous()
        if fp16 and v.is_floating_point():
            v = v.half()
        sd[k] = v
    obj = {"format": EXPORT_FORMAT, "format_version": EXPORT_FORMAT_VERSION, "config": G_ema.cfg.to_dict(),
           "state_dict": sd, "info": _plain(info)}
    path = Path(path)
    _atomic_save(obj, path)
    return path


W_AVG_SEED = 12345


def export_from_checkpoint(ckpt_path: str | os.PathLike, out_path: str | os.PathLike, fp16: bool = True) -> Path:
    """Export the EMA generator of a training checkpoint (``--export``)."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    cfg = StyleGANConfig.from_dict(ckpt["config"])
    G = StyleGAN(cfg)
    G.load_state_dict(ckpt["G_ema"])
    st, args = ckpt["state"], ckpt["args"]
    # w̄ of the exported network itself: the tracked w_avg follows the *training* G's mapping
    # (copied into G_ema as v1 does), which lags or leads G_ema's mapping while training moves
    # fast. The embedding starts at w̄ and truncation pulls towards it, so it must be G_ema's own.
    tracked = G.mapping.w_avg.clone()
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.estimate_w_avg(n=100_000, seed=W_AVG_SEED))
    phases = parse_schedule(args["schedule"], args.get("fade_frac", 0.5))
    block, alpha, _ = Schedule(phases).at(max(st["images_seen"] - 1, 0))
    info = {
        "name": "mini-faces64" if cfg.resolution == 64 else f"mini-{cfg.resolution}",
        "tier": "embedded",
        "images_seen": st["images_seen"], "kimg": st["images_seen"] / 1000,
        "wall_clock_hours": st["wall_time"] / 3600,
        "trained_resolution": 4 * 2**block, "trained_alpha": alpha,
        "fully_grown": bool(4 * 2**block == cfg.resolution and alpha >= 1.0),
        "planned_kimg": float(args["total_kimg"]),
        "finished": bool(st["images_seen"] >= int(round(float(args["total_kimg"]) * 1000))),
        "trained_with": ("i2s.train (projected discriminator on ImageNet EfficientNet-Lite0, hinge loss)"
                         if args.get("d_arch") == "projected" else "i2s.train (StyleGAN v1 recipe, progressive growing)"),
        "align_zoom": _data_framing_zoom(args.get("data")),
        "w_avg": f"mean of the exported mapping over 100k z (seed {W_AVG_SEED}); the tracked average was "
                 f"{(tracked - G.mapping.w_avg).norm().item():.3g} away (L2)",
        "torch": torch.__version__,
        "args": args,
    }
    return export_generator(G, out_path, info, fp16=fp16)


def _data_framing_zoom(data: str | None, default: float = 0.7) -> float:
    """The FFHQ-recipe zoom the training faces were aligned with (from ``<data>-meta.json``,
    written by scripts/prepare_mini_data.py); embedding a face into the model must use the same."""
    if data:
        meta = Path(data).with_name(Path(data).stem + "-meta.json")
        try:
            return float(json.loads(meta.read_text())["framing"]["zoom"])
        except (OSError, KeyError, ValueError, TypeError):
            pass
    return default


# --------------------------------------------------------------------------- benchmark


def bench(args: argparse.Namespace, iters: int = 4) -> dict[int, float]:
    """images/s of :meth:`Trainer.training_step` at each resolution (batch as configured),
    on random data: one warm-up step (which carries the R1 pass) then ``iters`` timed
    steps, so 1 in ``r1_interval`` timed steps has R1 when ``iters == r1_interval``."""
    res_list = [r for r in (8, 16, 32, 64, 128, 256) if r <= args.resolution]
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(256, args.resolution, args.resolution, 3), dtype=np.uint8)
    out: dict[int, float] = {}
    for res in res_list:
        a = argparse.Namespace(**vars(args))
        a.schedule, a.out = f"{res}:rest", None
        trainer = Trainer(a, data)
        trainer.training_step()  # warm-up (also the R1 step)
        t0 = time.perf_counter()
        n = 0
        for _ in range(iters):
            before = trainer.state.images_seen
            trainer.training_step()
            n += trainer.state.images_seen - before
        dt = time.perf_counter() - t0
        out[res] = n / dt
        print(f"[bench] {res:4d} px  batch {trainer.batch_size(int(math.log2(res)) - 2):3d}  "
              f"{dt / iters:7.3f} s/iter  {out[res]:8.2f} images/s  ({out[res] * 3600 / 1000:7.1f} kimg/h)", flush=True)
    return out


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m i2s.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", help="packed uint8 array [N, H, W, 3] (.npy)")
    p.add_argument("--out", help="run directory: checkpoint.pt, samples-*.png, log.jsonl")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue from OUT/checkpoint.pt (or the given checkpoint) exactly")
    p.add_argument("--transfer", metavar="CKPT", help="start a new run from CKPT although the networks differ: "
                   "tensors of matching shape are copied, the rest start fresh, the schedule goes on from CKPT's images")
    p.add_argument("--export", metavar="PATH", help="export the EMA generator of the checkpoint and exit")
    p.add_argument("--no-fp16", dest="fp16", action="store_false", help="export in float32")
    p.add_argument("--bench", action="store_true", help="measure images/s per resolution and exit")
    p.add_argument("--bench-iters", type=int, default=4)
    # model
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--fmap-base", type=int, default=1024)
    p.add_argument("--fmap-max", type=int, default=128)
    p.add_argument("--mbstd-group", type=int, default=4)
    p.add_argument("--d-arch", choices=("stylegan", "projected"), default="stylegan",
                   help="stylegan: v1's D_basic with the logistic loss and R1 (mini v1's recipe); projected: "
                        "heads on frozen ImageNet EfficientNet-Lite0 features with the hinge loss (Projected GAN, mini v2)")
    p.add_argument("--proj-res", type=int, default=128, help="projected D: input size of the feature network")
    p.add_argument("--no-csm", dest="csm", action="store_false", help="projected D: cross-channel mixing only")
    p.add_argument("--d-down", choices=("pool", "stride"), default="stride",
                   help="D down-sampling: v1's blur-conv-avgpool, or blur + stride-2 conv (4x fewer MACs)")
    # schedule
    p.add_argument("--schedule", default="8:40k,16:60k,32:80k,64:rest",
                   help="RES:IMAGES[/FADE] per phase; each phase after the first starts with a fade-in")
    p.add_argument("--fade-frac", type=float, default=0.5, help="fade-in share of a phase when /FADE is not given")
    p.add_argument("--total-kimg", type=float, default=400.0)
    p.add_argument("--batch", default="4:64,8:64,16:64,32:32,64:32", help="RES:BATCH list, or one number")
    # optimisation
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--beta1", type=float, default=0.0)
    p.add_argument("--beta2", type=float, default=0.99)
    p.add_argument("--no-reset-opt", dest="reset_opt", action="store_false",
                   help="keep Adam's moments across phases (v1 resets them)")
    p.add_argument("--r1-gamma", type=float, default=1.0)
    p.add_argument("--r1-interval", type=int, default=4)
    p.add_argument("--style-mixing", type=float, default=0.9)
    p.add_argument("--ema-kimg", type=float, default=10.0, help="half-life of G_ema in kimg")
    p.add_argument("--ema-rampup", type=float, default=0.05, help="0 disables the ramp-up")
    p.add_argument("--augment", choices=("none", "diffaug"), default="diffaug")
    p.add_argument("--no-xflip", dest="xflip", action="store_false")
    # bookkeeping
    p.add_argument("--ckpt-every", type=float, default=5.0, help="kimg")
    p.add_argument("--sample-every", type=float, default=5.0, help="kimg")
    p.add_argument("--log-every", type=float, default=1.0, help="kimg")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--precision", choices=("auto", "float32", "bf16"), default="auto",
                   help="auto: bf16 autocast where the CPU/GPU runs bf16 natively (i2s.precision), else float32")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop after this many minutes of this invocation, with a checkpoint and a sample grid")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--no-progress", action="store_true")
    return p


# Arguments that define the networks and cannot change on resume.
_FIXED_ON_RESUME = ("resolution", "fmap_base", "fmap_max", "mbstd_group", "d_down", "d_arch", "proj_res", "csm")
# Arguments that only steer this invocation and are never taken from a checkpoint.
_PER_RUN = ("resume", "transfer", "export", "fp16", "bench", "bench_iters", "out", "threads", "device", "no_progress",
            "minutes")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _explicit_args(argv: Sequence[str] | None) -> set[str]:
    """Names of the options given on the command line (to override a checkpoint's args)."""
    p = build_parser()
    for a in p._actions:
        a.default = argparse.SUPPRESS
    return set(vars(p.parse_args(argv)))


def _checkpoint_path(args: argparse.Namespace) -> Path:
    if args.resume not in (None, "auto"):
        return Path(args.resume)
    if not args.out:
        raise SystemExit("--out (or --resume PATH) is required")
    path = Path(args.out) / "checkpoint.pt"
    if not path.exists() and (Path(args.out) / "checkpoint-prev.pt").exists():
        path = Path(args.out) / "checkpoint-prev.pt"
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.export:
        ckpt = _checkpoint_path(args)
        path = export_from_checkpoint(ckpt, args.export, fp16=args.fp16)
        print(f"[i2s.train] exported the EMA generator of {ckpt} -> {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return 0
    if args.bench:
        if not args.threads:
            torch.set_num_threads(2)
        print(f"[i2s.train] bench: {torch.get_num_threads()} threads, device {_resolve_device(args.device)}")
        bench(args, args.bench_iters)
        return 0
    if not args.out:
        raise SystemExit("--out is required")

    if args.resume:
        ckpt_path = _checkpoint_path(args)
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        saved = dict(ckpt["args"])
        given = _explicit_args(argv)
        for k in _FIXED_ON_RESUME:
            if k in given and getattr(args, k) != saved.get(k):
                raise SystemExit(f"--{k.replace('_', '-')} cannot change on resume ({saved.get(k)} in the checkpoint)")
        merged = {**vars(args), **{k: v for k, v in saved.items() if k not in given and k not in _PER_RUN}}
        args = argparse.Namespace(**merged)
        if not args.data:
            raise SystemExit("--data is required")
        trainer = Trainer(args)
        trainer.load_checkpoint(ckpt)
        print(f"[i2s.train] resumed {ckpt_path} at {trainer.state.images_seen / 1000:.1f} kimg")
    else:
        if not args.data:
            raise SystemExit("--data is required")
        if (Path(args.out) / "checkpoint.pt").exists():
            raise SystemExit(f"{args.out}/checkpoint.pt exists: pass --resume to continue it, or another --out")
        trainer = Trainer(args)
        if args.transfer:
            old = torch.load(args.transfer, map_location="cpu", weights_only=True)
            copied, fresh = trainer.transfer_from(old)
            print(f"[i2s.train] transferred {copied} tensors from {args.transfer} ({fresh} start fresh); "
                  f"going on at {trainer.state.images_seen / 1000:.1f} kimg")
        nG = sum(p.numel() for p in trainer.G.parameters())
        nD = sum(p.numel() for p in trainer.D.parameters())
        print(f"[i2s.train] G {nG / 1e6:.2f} M params, D {nD / 1e6:.2f} M; {len(trainer.data)} images; "
              f"{_precision.describe(trainer.precision, trainer.device)}, {torch.get_num_threads()} threads")
    st = trainer.train()
    print(f"[i2s.train] stopped at {st.images_seen / 1000:.1f} kimg ({st.wall_time / 3600:.2f} h of training)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
