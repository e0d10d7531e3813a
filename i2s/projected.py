"""A projected discriminator for training ``mini`` v2 (``python -m i2s.train --d-arch projected``).

Sauer, Chitta, Müller, Geiger, *Projected GANs Converge Faster* (NeurIPS 2021): the
discriminator sees the images through a frozen ImageNet network, here the kit's
EfficientNet-Lite0 (:mod:`i2s.features`):

* the image (64 px, in [-1, 1]) is up-sampled to ``input_size`` (128) and pre-processed for
  the network; its activations after stages 1, 2, 4 and 6 (24, 40, 112, 320 channels at 1/4,
  1/8, 1/16, 1/32 of the input) are read (§3.2 "multi-scale discriminators");
* **cross-channel mixing (CCM)**: a fixed random 1x1 convolution per scale, widening to
  64 / 128 / 256 / 512 channels; **cross-scale mixing (CSM)**: from the deepest scale up,
  each scale adds the 2x up-sampled, fixed-random-projected mix of the scale below (a
  feature-pyramid path, §3.2); neither is trained;
* one small discriminator head per scale: spectral-normalised 4x4 stride-2 convolutions with
  leaky ReLU down to 4x4, then a 1x1 convolution to a map of logits (patch logits);
* the **hinge loss** (§4): D minimises ``relu(1 - D(real)) + relu(1 + D(fake))``, G
  minimises ``-D(fake)``; logits of all scales are averaged.

Only the heads are trained (``parameters()`` yields nothing else): the feature network and
the random projections are buffers of a frozen module.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .train.discriminator import minibatch_stddev
from .features import PROJECTED_STAGES, STAGE_CHANNELS, FeatureNet, load_feature_net, preprocess

__all__ = ["ProjectedDiscriminator", "hinge_d_loss", "hinge_g_loss"]

MIX_CHANNELS = (64, 128, 256, 512)


class _Head(nn.Module):
    """Spectral-norm conv stack: ``res`` -> 4 px (4x4, stride 2, channels doubling up to ``max_c``,
    leaky ReLU 0.2), then 1x1 -> a 4x4 map of logits. With ``mbstd_group`` > 1 the last map gets
    v1's minibatch-stddev feature first (Karras et al. 2018): how much the samples of a group
    differ, which a generator drawing too few kinds of faces cannot fake."""

    def __init__(self, in_c: int, res: int, max_c: int = 512, mbstd_group: int = 0) -> None:
        super().__init__()
        self.mbstd_group = mbstd_group
        layers: list[nn.Module] = []
        c = in_c
        while res > 4:
            out_c = min(2 * c, max_c)
            layers += [spectral_norm(nn.Conv2d(c, out_c, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c, res = out_c, res // 2
        layers.append(spectral_norm(nn.Conv2d(c + (1 if mbstd_group > 1 else 0), 1, 1)))
        self.net = nn.Sequential(*layers)  # the 1x1 logit conv last (the state dict's keys as before)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd_group <= 1:
            return self.net(x)
        return self.net[-1](minibatch_stddev(self.net[:-1](x), self.mbstd_group))


class _Projection(nn.Module):
    """The fixed random CCM and CSM convolutions (never trained, saved as buffers)."""

    def __init__(self, in_channels: Sequence[int], mix: Sequence[int], seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        for i, (ci, co) in enumerate(zip(in_channels, mix)):
            self.register_buffer(f"ccm{i}", torch.randn(co, ci, 1, 1, generator=g) / ci**0.5)
        for i in range(len(mix) - 1):  # CSM: deeper mix (mix[i+1]) -> this scale's width (mix[i])
            self.register_buffer(f"csm{i}", torch.randn(mix[i], mix[i + 1], 1, 1, generator=g) / mix[i + 1] ** 0.5)
        self.n, self.csm = len(mix), True

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        mixed = [F.conv2d(f, getattr(self, f"ccm{i}")) for i, f in enumerate(feats)]
        if not self.csm:
            return mixed
        out = [mixed[-1]]
        for i in range(self.n - 2, -1, -1):
            up = F.interpolate(out[0], size=mixed[i].shape[-2:], mode="bilinear", align_corners=False)
            out.insert(0, mixed[i] + F.conv2d(up, getattr(self, f"csm{i}")))
        return out


class ProjectedDiscriminator(nn.Module):
    """D(x) for images in [-1, 1]: a list of logit maps, one per feature scale.

    ``input_size`` is the resolution the feature network sees (the images are up-sampled
    bilinearly); one more than a multiple of 32 (97, 129) makes every stride-2 "same" padding of
    the network symmetric (at 96 it pads the bottom and right edges only), so no edge of the
    image is seen differently from the others; ``csm=False`` keeps cross-channel mixing only. ``proj_seed`` fixes the random
    projections (saved in the state dict, so a checkpoint restores them exactly). ``width``
    scales the mixed channels and the heads (0.5: a quarter of the heads' multiply-adds, which
    are two thirds of D's at width 1 and 128 px); ``mbstd_group`` > 1 gives every head the
    minibatch-stddev feature over groups of that many samples (0: none, as Sauer et al.)."""

    def __init__(self, input_size: int = 128, csm: bool = True, proj_seed: int = 0,
                 head_max: int = 512, feature_net: FeatureNet | None = None, width: float = 1.0,
                 mbstd_group: int = 0) -> None:
        super().__init__()
        if input_size < 64 or input_size % 32 not in (0, 1):
            raise ValueError(f"projected D input size must be a multiple of 32 (or one more) and >= 64, got {input_size}")
        self.input_size = input_size
        # a plain attribute, not a sub-module: its weights are not part of D's state dict
        self.__dict__["feature_net"] = feature_net if feature_net is not None else load_feature_net()
        in_c = [STAGE_CHANNELS[s] for s in PROJECTED_STAGES]
        mix = [max(int(c * width), 8) for c in MIX_CHANNELS]
        self.proj = _Projection(in_c, mix, proj_seed)
        self.proj.csm = csm
        strides = (4, 8, 16, 32)
        self.heads = nn.ModuleList(_Head(c, input_size // s, max(int(head_max * width), 8), mbstd_group)
                                   for c, s in zip(mix, strides))

    def _apply(self, fn, recurse: bool = True):  # .to(device) moves the frozen feature net too
        self.__dict__["feature_net"] = self.feature_net._apply(fn)
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = preprocess(x, self.input_size)
        feats = self.proj(self.feature_net.features(x, PROJECTED_STAGES))
        return [head(f) for head, f in zip(self.heads, feats)]


def hinge_d_loss(real: Sequence[torch.Tensor], fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """``mean relu(1 - D(real)) + mean relu(1 + D(fake))``, averaged over the scales."""
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake)) / len(real)


def hinge_g_loss(fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """``-mean D(fake)``, averaged over the scales."""
    return -sum(f.mean() for f in fake) / len(fake)
