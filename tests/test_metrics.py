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


def test_image_metrics_columns_order_and_the_other_network(monkeypatch):
    from i2s import loss as L
    from i2s.data import load_class_batch
    from i2s.metrics import METRIC_COLUMNS, ImageMetrics

    monkeypatch.setattr(L, "find_vgg16_weights", lambda: None)  # no ImageNet VGG here: no LPIPS
    _, x = load_class_batch("faces", 64, zoom=0.7)
    x = x[:3]
    g = torch.Generator().manual_seed(0)
    small = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    large = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    m = ImageMetrics("vgg16-random", 0.7)
    same, a, b = m(x, x, [True] * 3), m(small, x, [True, True, False]), m(large, x, [True, True, False])
    assert list(a) == list(METRIC_COLUMNS)
    assert a["perceptual_other_net"] == ["efficientnet-lite0-imagenet"] * 3  # never the loss's network
    assert ImageMetrics("efficientnet-lite0-imagenet", 0.7)(x, x, [False] * 3)["perceptual_other_net"][0] == "vgg16-random"
    assert same["mse_255"] == [0.0] * 3 and same["perceptual_other"] == [0.0] * 3 and same["identity_distance"][0] < 1e-6
    for k in ("mse_255", "perceptual_other", "identity_distance"):
        assert all(u < v for u, v in zip(a[k][:2], b[k][:2])), k  # more noise, farther
    assert all(u > v for u, v in zip(a["ssim"], b["ssim"]))
    assert math.isnan(a["identity_distance"][2]) and all(math.isnan(v) for v in a["lpips"])  # not a face; no VGG


@pytest.mark.slow
def test_lpips_uses_the_local_vgg_file_for_its_backbone(tmp_path, monkeypatch):
    lpips = pytest.importorskip("lpips")
    from torchvision.models import vgg16

    from i2s import loss as L
    from i2s.metrics import ImageMetrics

    torch.manual_seed(3)
    tv = vgg16(weights=None)
    path = tmp_path / "vgg16.pth"
    torch.save({k: v for k, v in tv.state_dict().items() if k.startswith("features.")}, path)
    monkeypatch.setattr(L, "find_vgg16_weights", lambda: path)
    ref = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
    for k in range(1, 6):  # the package's own slicing of torchvision's features, loaded by hand
        for name, mod in getattr(ref.net, f"slice{k}").named_children():
            if isinstance(mod, torch.nn.Conv2d):
                mod.load_state_dict(tv.features[int(name)].state_dict())
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = (x + 0.2 * torch.randn_like(x)).clamp(-1, 1)
    got = ImageMetrics("vgg16-imagenet", 0.7)(y, x, [False, False])["lpips"]
    assert got == pytest.approx(ref(y, x).flatten().tolist(), rel=1e-5) and all(v > 0 for v in got)


def test_ssim_separable_window_equals_the_2d_window():
    """The two 1-D passes give the 11 x 11 window's SSIM (Wang et al.) to float64 rounding."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 40, 40, generator=g) * 2 - 1
    y = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    a, b = (x.double() + 1) * 127.5, (y.double() + 1) * 127.5
    t = torch.arange(11, dtype=torch.float64) - 5
    w1 = torch.exp(-(t**2) / (2 * 1.5**2))
    w = (torch.outer(w1, w1) / w1.sum() ** 2).expand(3, 1, 11, 11)

    def filt(v):
        return F.conv2d(v, w, groups=3)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = filt(a), filt(b)
    va, vb, cab = filt(a * a) - ma**2, filt(b * b) - mb**2, filt(a * b) - ma * mb
    ref = (((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))).flatten(1).mean(1)
    assert torch.allclose(ssim(x, y).double(), ref, rtol=1e-6) and ref.min() < 0.9


@pytest.mark.slow  # ~5 s: the EfficientNet of perceptual_other
def test_image_metrics_in_passes_equal_one_pass(monkeypatch):
    """At 1024 px a batch is measured two images at a time (memory); the numbers are the same."""
    from i2s import loss as L
    from i2s import metrics as M

    monkeypatch.setattr(L, "find_vgg16_weights", lambda: None)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(5, 3, 32, 32, generator=g) * 2 - 1
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    m = M.ImageMetrics("vgg16-random", 0.7)
    whole = m(y, x, [False] * 5)
    monkeypatch.setattr(M, "PIXELS_PER_PASS", 2 * 32 * 32)
    calls = []
    real = M.ssim
    monkeypatch.setattr(M, "ssim", lambda a, b: calls.append(len(a)) or real(a, b))
    parts = m(y, x, [False] * 5)
    assert calls == [2, 2, 1] and list(parts) == list(whole)
    for k in ("mse_255", "ssim", "perceptual_other"):
        assert parts[k] == pytest.approx(whole[k], rel=1e-5), k


@pytest.mark.slow  # ~8 s: a VGG-16 built and saved
def test_lpips_above_its_size_sees_the_area_shrunk_images(tmp_path, monkeypatch):
    lpips = pytest.importorskip("lpips")
    import torch.nn.functional as F
    from torchvision.models import vgg16

    from i2s import loss as L
    from i2s import metrics as M

    torch.manual_seed(4)
    path = tmp_path / "vgg16.pth"
    torch.save({k: v for k, v in vgg16(weights=None).state_dict().items() if k.startswith("features.")}, path)
    monkeypatch.setattr(L, "find_vgg16_weights", lambda: path)
    monkeypatch.setattr(M, "LPIPS_SIZE", 32)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = (x + 0.2 * torch.randn_like(x)).clamp(-1, 1)
    m = M.ImageMetrics("vgg16-imagenet", 0.7)
    got = m(y, x, [False, False])["lpips"]
    want = m.lpips()(F.avg_pool2d(y, 2), F.avg_pool2d(x, 2)).flatten().tolist()
    assert got == pytest.approx(want, rel=1e-5) and got != pytest.approx(m.lpips()(y, x).flatten().tolist(), rel=1e-3)
