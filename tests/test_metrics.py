"""PSNR and SSIM against hand-computed values."""

import math

import pytest
import torch

from i2s.metrics import psnr, ssim


def test_psnr_known_value():
    a = torch.zeros(1, 3, 8, 8)
    b = a + 10 / 127.5  # every pixel off by 10 levels: MSE 100
    assert psnr(a, b).item() == pytest.approx(10 * math.log10(255**2 / 100), rel=1e-4)


def test_ssim_identity_and_ordering():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    slightly = ssim(x, (x + 0.05 * torch.randn_like(x)).clamp(-1, 1))
    very = ssim(x, (x + 0.5 * torch.randn_like(x)).clamp(-1, 1))
    assert (slightly > very).all() and (very < 0.85).all() and (slightly > 0.95).all()
    # a constant shift of a flat image: only the luminance term drops, by a known amount
    a, b = torch.zeros(1, 3, 16, 16), torch.full((1, 3, 16, 16), 50 / 127.5)
    mx, my, c1 = 127.5, 177.5, (0.01 * 255) ** 2
    assert ssim(a, b).item() == pytest.approx((2 * mx * my + c1) / (mx**2 + my**2 + c1), rel=1e-4)
