"""Differentiable augmentation for a small data set (DiffAugment, Zhao et al., NeurIPS 2020).

Applied to every image the discriminator sees, real or fake, so that G's gradients pass through
it: colour (brightness, saturation, contrast), translation with zero padding, and cutout.
"""

from __future__ import annotations

import torch

__all__ = ["diff_augment"]


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
