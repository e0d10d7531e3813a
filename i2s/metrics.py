"""Image-quality numbers for embeddings: PSNR and SSIM on 0-255 pixels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .loss import psnr

__all__ = ["psnr", "ssim"]


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None, dtype=None) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) of [-1, 1] images, on 0-255 pixels, averaged over RGB.

    Gaussian window 11 x 11, sigma 1.5, K1 = 0.01, K2 = 0.03, 'valid' filtering (no padding),
    computed in float64.
    """
    # float64: the variances are differences of large numbers (E[x^2] - E[x]^2 at 0-255 scale)
    x = (x.double().clamp(-1, 1) + 1) * 127.5
    y = (y.double().clamp(-1, 1) + 1) * 127.5
    c = x.shape[1]
    w = _gaussian_window(window, sigma, x.device, x.dtype).expand(c, 1, window, window)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).float()
