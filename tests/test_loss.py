"""Eq. 1 and 2: VGG-16 slices, the paper's pixel units, variants, the random-weight fallback."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from i2s.loss import VARIANTS, EmbeddingLoss, LossSettings, load_vgg16_features, mse_255, psnr


def test_vgg_slices_end_after_the_named_relus(random_vgg):
    vgg, label = random_vgg
    assert label == "vgg16-random"
    loss = EmbeddingLoss(vgg=vgg, vgg_label=label)
    convs = [[m for m in s if isinstance(m, nn.Conv2d)] for s in loss.slices]
    # conv1_1 | conv1_2 | conv2_1 conv2_2 conv3_1 conv3_2 | conv3_3 conv4_1 conv4_2
    assert [len(c) for c in convs] == [1, 1, 4, 3]
    assert all(isinstance(s[-1], nn.ReLU) and not s[-1].inplace for s in loss.slices)
    assert [c[-1].out_channels for c in convs] == [64, 64, 256, 512]
    feats = loss.features(torch.rand(1, 3, 64, 64) * 2 - 1)
    assert [f.shape[1:] for f in feats] == [(64, 64, 64), (64, 64, 64), (256, 16, 16), (512, 8, 8)]
    assert all((f >= 0).all() for f in feats)


def test_paper_units_and_mse_variant(random_vgg):
    x, y = -torch.ones(2, 3, 16, 16), torch.ones(2, 3, 16, 16)
    assert torch.allclose(mse_255(x, y), torch.full((2,), 255.0**2))
    mse = EmbeddingLoss(LossSettings(variant="mse"), vgg=random_vgg[0], vgg_label=random_vgg[1])
    assert mse.perceptual_net == "none" and len(mse.slices) == 0
    a, b = torch.rand(3, 3, 16, 16) * 2 - 1, torch.rand(3, 3, 16, 16) * 2 - 1
    assert torch.allclose(mse(a, b), mse_255(a, b))
    assert psnr(a, a).min() > 90


def test_full_loss_is_sum_of_terms_and_per_image(random_vgg):
    vgg, label = random_vgg
    full = EmbeddingLoss(vgg=vgg, vgg_label=label)
    perc = EmbeddingLoss(LossSettings(variant="perceptual"), vgg=vgg, vgg_label=label)
    torch.manual_seed(0)
    a, b = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    la = full(a, b)
    assert la.shape == (3,)
    assert torch.allclose(la, perc(a, b) + mse_255(a, b), rtol=1e-5)
    assert torch.allclose(full(a, a), torch.zeros(3), atol=1e-3)
    # a batch is independent problems: each loss equals the single-image loss
    singles = torch.cat([full(a[i:i + 1], b[i:i + 1]) for i in range(3)])
    assert torch.allclose(la, singles, rtol=1e-5)
    # the perceptual term is in 255^2 units of the [0, 1]-image feature MSE
    t = perc.target(b)
    fa = perc.features(a)
    manual = sum(255.0**2 * (f - g).square().flatten(1).mean(1) for f, g in zip(fa, t["features"]))
    assert torch.allclose(perc(a, t), manual, rtol=1e-5)


def test_conv3_2_variants_use_only_that_layer(random_vgg):
    vgg, label = random_vgg
    c32 = EmbeddingLoss(LossSettings(variant="conv3_2"), vgg=vgg, vgg_label=label)
    assert c32.layer_weights == (0.0, 0.0, 1.0, 0.0) and len(c32.slices) == 3  # runs VGG only to conv3_2
    both = EmbeddingLoss(LossSettings(variant="mse+conv3_2"), vgg=vgg, vgg_label=label)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(both(a, b), c32(a, b) + mse_255(a, b), rtol=1e-5)
    assert set(VARIANTS) == {"full", "mse", "conv3_2", "mse+conv3_2", "perceptual"}
    with pytest.raises(ValueError, match="unknown loss variant"):
        EmbeddingLoss(LossSettings(variant="bogus"), vgg=vgg, vgg_label=label)  # type: ignore[arg-type]


def test_resize_trick(random_vgg):
    vgg, label = random_vgg
    on = EmbeddingLoss(vgg=vgg, vgg_label=label)
    off = EmbeddingLoss(LossSettings(resize=None), vgg=vgg, vgg_label=label)
    x = torch.rand(1, 3, 512, 512) * 2 - 1
    assert on._vgg_input(x).shape[-1] == 256  # 512 -> 256 box filter
    assert torch.allclose(on._vgg_input(x)[0, :, 0, 0], ((x[0, :, :2, :2] + 1) / 2).mean((1, 2)))
    assert off._vgg_input(x).shape[-1] == 512
    assert on._vgg_input(torch.zeros(1, 3, 64, 64)).shape[-1] == 64  # small images stay as they are


@pytest.mark.slow
def test_fallback_warns_and_imagenet_weights_are_found(isolated_cache, capsys):
    with pytest.warns(UserWarning, match="vgg16-random"):
        _, label = load_vgg16_features("auto")
    assert label == "vgg16-random"
    assert "WARNING" not in capsys.readouterr().out  # a warning, not also a print (it showed twice)
    # a file named like torchvision's in the i2s cache is used, and labelled as ImageNet weights
    from torchvision.models import vgg16

    torch.manual_seed(5)
    state = vgg16(weights=None).state_dict()
    (isolated_cache / "weights").mkdir(exist_ok=True)
    torch.save(state, isolated_cache / "weights" / "vgg16-397923af.pth")
    feats, label = load_vgg16_features("auto")
    assert label == "vgg16-imagenet"
    assert torch.equal(feats[19].weight, state["features.19.weight"])
    loss = EmbeddingLoss()
    assert loss.perceptual_net == "vgg16-imagenet" and loss.settings.perceptual_net == "vgg16-imagenet"


def test_efficientnet_perceptual_network_offline():
    """The offline ImageNet alternative to VGG: labelled, at VGG's strides, differentiable."""
    from i2s.loss import EFFICIENTNET_LAYERS

    loss = EmbeddingLoss(vgg_weights="efficientnet-lite0")
    assert loss.perceptual_net == "efficientnet-lite0-imagenet"
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    feats = loss.features(x)
    for f, (_, stride, ch) in zip(feats, EFFICIENTNET_LAYERS.values()):
        assert f.shape[1:] == (ch, 64 // stride, 64 // stride)
    t = loss.target(x.detach().flip(0))
    out = loss(x, t)
    assert out.shape == (2,) and (out > 0).all()
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    assert torch.allclose(loss(x.detach(), loss.target(x.detach())), torch.zeros(2))
    mse_only = EmbeddingLoss(LossSettings(variant="mse"), vgg_weights="efficientnet-lite0")
    assert mse_only.perceptual_net == "none"
