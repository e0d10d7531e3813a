"""The StyleGAN v1 runtime rules, each against a small hand-computed reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from i2s.stylegan import (Conv2d, Dense, LayerEpilogue, StyleGAN, StyleGANConfig, blur2d, instance_norm, pixel_norm,
                          random_weights, style_mod, upscale2d)
from conftest import make_generator


def test_ffhq_layout_counts():
    G = StyleGAN(StyleGANConfig.ffhq1024())
    assert G.num_layers == 18 and G.resolution == 1024
    assert sum(p.numel() for p in G.parameters()) == 26_219_627  # NVlabs/stylegan README, Gs.print_layers()
    assert sum(p.numel() for p in G.mapping.parameters()) == 2_101_248
    channels = [StyleGANConfig().channels(r) for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)]
    assert channels == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    # per-layer counts of the official dump: Conv weight + noise + bias + StyleMod
    assert sum(p.numel() for p in G.synthesis.layers[0].parameters()) == 534_528  # 4x4/Const
    assert sum(p.numel() for p in G.synthesis.layers[1].parameters()) == 2_885_632  # 4x4/Conv
    assert sum(p.numel() for p in G.synthesis.layers[8].parameters()) == 1_442_816  # 64x64/Conv0_up
    assert sum(p.numel() for p in G.synthesis.layers[17].parameters()) == 18_752  # 1024x1024/Conv1
    assert sum(p.numel() for p in G.synthesis.torgb[-1].parameters()) == 51  # ToRGB_lod0
    assert [l.conv.up for l in G.synthesis.layers[2::2]] == ["nearest"] * 4 + ["fused"] * 4
    assert StyleGAN(StyleGANConfig(resolution=64, fmap_base=2048, fmap_max=128)).num_layers == 10


def test_equalized_lr_dense_and_conv():
    d = Dense(4, 3, gain=math.sqrt(2), lrmul=0.01)
    d.weight.data.fill_(1.0)
    d.bias.data.fill_(2.0)
    out = d(torch.ones(1, 4))
    # 4 inputs * w(1) * sqrt(2)/sqrt(4) * 0.01 + bias(2) * 0.01
    assert torch.allclose(out, torch.full((1, 3), 4 * math.sqrt(2) / 2 * 0.01 + 0.02))
    c = Conv2d(2, 1, 3)
    c.weight.data.fill_(1.0)
    y = c(torch.ones(1, 2, 5, 5))
    # interior pixel: 18 taps * sqrt(2)/sqrt(18) = 6; corner: 8 taps
    assert y[0, 0, 2, 2].item() == pytest.approx(6.0, rel=1e-6)
    assert y[0, 0, 0, 0].item() == pytest.approx(8 * math.sqrt(2) / math.sqrt(18), rel=1e-6)
    # mapping coefficient from reference-facts: sqrt(2)/sqrt(512)*0.01 = 0.000625
    assert Dense(512, 512, lrmul=0.01).weight_gain == pytest.approx(0.000625)
    assert Dense(512, 1024, gain=1.0).weight_gain == pytest.approx(0.0441942, rel=1e-5)


def test_fused_upconv_is_a_transposed_conv_of_the_summed_kernel():
    """The official fused up-conv (3x3 kernel padded to 5x5, four shifted 4x4 windows summed,
    stride-2 transposed conv, no flip) equals nearest up-sampling followed by a 'SAME' conv
    with the 180-degree-rotated kernel: a transposed conv correlates with the flipped kernel."""
    torch.manual_seed(0)
    fused, near = Conv2d(3, 4, 3, up="fused"), Conv2d(3, 4, 3, up="nearest")
    near.weight.data.copy_(fused.weight.data.flip(2, 3))
    x = torch.randn(2, 3, 6, 6)
    a, b = fused(x), near(x)
    assert a.shape == (2, 4, 12, 12)
    assert torch.allclose(a, b, atol=1e-5)
    near.weight.data.copy_(fused.weight.data)  # without the rotation the two differ
    assert not torch.allclose(a, near(x), atol=1e-3)
    # hand-computed: one input pixel, kernel k = [[1,2,3],[4,5,6],[7,8,9]] (times the he_std gain)
    one = Conv2d(1, 1, 3, up="fused")
    one.weight.data = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    y = one(torch.ones(1, 1, 1, 1))[0, 0] / one.weight_gain
    # summed 4x4 kernel, centre 2x2 after padding 1: [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]]
    assert torch.allclose(y, torch.tensor([[12.0, 16.0], [24.0, 28.0]]))
    # and the non-fused path is literally nearest-neighbour tiling then a 'SAME' conv
    ref = F.conv2d(upscale2d(x), near.weight * near.weight_gain, padding=1)
    assert torch.allclose(near(x), ref)


def test_blur_kernel():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 16.0
    y = blur2d(x)[0, 0]
    expected = torch.zeros(5, 5)
    expected[1:4, 1:4] = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]])
    assert torch.allclose(y, expected)
    assert blur2d(torch.ones(1, 3, 4, 4))[0, :, 1:3, 1:3].allclose(torch.ones(3, 2, 2))  # normalised to sum 1


def test_instance_norm_pixel_norm_style_mod():
    x = torch.tensor([1.0, 3.0, 5.0, 7.0]).view(1, 1, 2, 2)
    # mean 4, deviations -3,-1,1,3, mean square 5
    assert torch.allclose(instance_norm(x).flatten(), torch.tensor([-3.0, -1, 1, 3]) / math.sqrt(5), atol=1e-6)
    z = torch.tensor([[3.0, 4.0]])
    assert torch.allclose(pixel_norm(z), z / math.sqrt(12.5))
    x = torch.ones(1, 2, 1, 1)
    style = torch.tensor([[1.0, -0.5, 10.0, 20.0]])  # s0 = (1, -0.5), s1 = (10, 20)
    assert torch.allclose(style_mod(x, style).flatten(), torch.tensor([1 * 2 + 10, 1 * 0.5 + 20]))


def test_layer_epilogue_order():
    """noise -> bias -> lrelu -> instance norm -> style_mod, checked against a manual chain."""
    torch.manual_seed(1)
    ep = LayerEpilogue(2, 4, w_dim=3)
    ep.noise_strength.data = torch.tensor([0.5, -1.0])
    ep.bias.data = torch.tensor([0.1, -0.2])
    ep.style.bias.data = torch.randn(4)
    x, w = torch.randn(1, 2, 4, 4), torch.randn(1, 3)
    y = x + ep.noise_const * ep.noise_strength.view(1, 2, 1, 1)
    y = F.leaky_relu(y + ep.bias.view(1, 2, 1, 1), 0.2)
    y = instance_norm(y)
    s = F.linear(w, ep.style.weight / math.sqrt(3), ep.style.bias)
    y = y * (s[:, :2, None, None] + 1) + s[:, 2:, None, None]
    assert torch.allclose(ep(x, w, "const"), y, atol=1e-6)


def test_truncation_and_mapping_broadcast():
    G = make_generator(16)
    z = torch.randn(3, G.z_dim)
    w_plus = G.mapping(z)
    assert w_plus.shape == (3, G.num_layers, G.w_dim)
    assert torch.equal(w_plus[:, 0], w_plus[:, -1])
    t = G.mapping(z, truncation_psi=0.5, truncation_cutoff=3)
    assert torch.allclose(t[:, :3], G.w_avg + 0.5 * (w_plus[:, :3] - G.w_avg), atol=1e-6)
    assert torch.equal(t[:, 3:], w_plus[:, 3:])
    assert torch.allclose(G.mapping(z, truncation_psi=0.0)[:, :G.cfg.truncation_cutoff], G.w_avg.expand(3, min(8, G.num_layers), -1))


def test_noise_modes():
    G = make_generator(16)
    w = G.mapping(torch.randn(2, G.z_dim))
    a, b = G.synthesis(w, noise_mode="const"), G.synthesis(w, noise_mode="const")
    assert torch.equal(a, b) and a.shape == (2, 3, 16, 16) and torch.isfinite(a).all()
    assert not torch.equal(G.synthesis(w, noise_mode="random"), a)
    G.synthesis.layers[3].epilogue.noise_const.add_(1.0)  # the stored noise is what "const" uses
    assert not torch.equal(G.synthesis(w, noise_mode="const"), a)
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(w, noise_mode="bogus")
    with pytest.raises(ValueError, match="w_plus must have shape"):
        G.synthesis(w[:, :2])


def test_progressive_outputs():
    G = make_generator(32)
    w = G.mapping(torch.randn(1, G.z_dim))
    for block, res in enumerate([4, 8, 16, 32]):
        assert G.synthesis(w, block=block, alpha=0.5).shape[-1] == res if hasattr(G.synthesis, "forward") else True
        assert G.synthesis.forward(w, block=block, alpha=0.5).shape[-1] == res
    assert torch.equal(G.synthesis.forward(w, block=3, alpha=1.0), G.synthesis(w))


def test_random_weights_same_architecture():
    G = make_generator(16)
    R1, R2 = random_weights(G, seed=3), random_weights(G, seed=3)
    assert R1.cfg == G.cfg
    assert all(torch.equal(a, b) for a, b in zip(R1.state_dict().values(), R2.state_dict().values()))
    assert not torch.equal(R1.synthesis.layers[1].conv.weight, G.synthesis.layers[1].conv.weight)
    assert R1.w_avg.abs().sum() > 0 and R1.info["tier"] == "random"


def test_rescale_w_keeps_every_image_and_scales_w():
    """rescale_w(c): W (and w̄) c times wider, the same images for any z, truncation and W+ code."""
    G = make_generator(16)
    z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(1))
    before_w, before_avg, before_std = G.mapping.w(z), G.w_avg.clone(), G.w_std(n=2000)
    img = G(z, truncation_psi=0.6)
    mixed = torch.cat([G.mapping(z[:2])[:, :3], G.mapping(z[2:])[:, 3:]], 1)  # a crossover code
    img_mixed = G.synthesis(mixed)
    c = 0.55
    G.rescale_w(c)
    torch.testing.assert_close(G.mapping.w(z), c * before_w, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(G.w_avg, c * before_avg)
    assert G.w_std(n=2000) == pytest.approx(c * before_std, rel=1e-5)
    torch.testing.assert_close(G(z, truncation_psi=0.6), img, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(G.synthesis(c * mixed), img_mixed, atol=1e-5, rtol=1e-5)
    # the image does change for the same stored code: the scale of w is what moved
    assert (G.synthesis(mixed) - img_mixed).abs().max() > 1e-2
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive"):
            G.rescale_w(bad)
