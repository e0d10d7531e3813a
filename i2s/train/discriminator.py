"""The discriminator of the ``mini`` StyleGAN v1: ``D_basic`` of NVlabs' networks_stylegan.py.

Equalized learning rate (the same runtime weight scale as the generator's layers), minibatch
standard deviation at 4x4, the generator's channel counts, and progressive growing: during a
fade-in the new top block is blended with the previous resolution's ``fromrgb``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..stylegan import Conv2d, Dense, StyleGANConfig, blur2d

__all__ = ["DBlock", "DConv", "DEpilogue", "Discriminator", "DownMode", "minibatch_stddev"]


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
