"""Image-quality numbers for embeddings: MSE, PSNR and SSIM on 0-255 pixels, a perceptual
distance by a network other than the loss's, dlib's identity distance for faces, and LPIPS where
ImageNet VGG-16 is present (:class:`ImageMetrics`, the per-image columns of every result table)."""

from __future__ import annotations

import warnings
from typing import Sequence

import torch
import torch.nn.functional as F

from .loss import mse_255, psnr

__all__ = ["psnr", "ssim", "mse_255", "ImageMetrics", "METRIC_COLUMNS", "LPIPS_VERSION", "LPIPS_SIZE"]

#: The per-image columns :class:`ImageMetrics` adds to a result table.
METRIC_COLUMNS = ("mse_255", "ssim", "perceptual_other", "perceptual_other_net", "identity_distance", "lpips")
LPIPS_VERSION = "lpips 0.1 (vgg)"


#: LPIPS sees images area-shrunk to at most this size (the loss's resize trick, §5.2; the size
#: inversion papers report LPIPS at for FFHQ-1024): at 1024 px VGG-16 on a CPU takes ~1.5 min a pair.
LPIPS_SIZE = 256
#: Pixels (images x height x width) measured in one pass: two 1024-px images. A batch of 25 at
#: 1024 px in one pass needed more than 18 GB (LPIPS's features, SSIM's float64 maps).
PIXELS_PER_PASS = 2 * 1024 * 1024


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None, dtype=None) -> torch.Tensor:
    """The normalised 1-D Gaussian; the 2-D window is its outer product (separable)."""
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) of [-1, 1] images, on 0-255 pixels, averaged over RGB.

    Gaussian window 11 x 11, sigma 1.5, K1 = 0.01, K2 = 0.03, 'valid' filtering (no padding),
    computed in float64, as two 1-D passes (the window is separable: 22 products a pixel, not 121).
    """
    # float64: the variances are differences of large numbers (E[x^2] - E[x]^2 at 0-255 scale)
    x = (x.double().clamp(-1, 1) + 1) * 127.5
    y = (y.double().clamp(-1, 1) + 1) * 127.5
    c = x.shape[1]
    g = _gaussian_window(window, sigma, x.device, x.dtype)
    rows, cols = g.view(1, 1, window, 1).expand(c, 1, window, 1), g.view(1, 1, 1, window).expand(c, 1, 1, window)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, rows, groups=c), cols, groups=c)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).float()


def _other_network(loss_net: str) -> str:
    """The network of the second perceptual distance: never the one the loss optimised."""
    return "vgg16" if loss_net.startswith("efficientnet") else "efficientnet-lite0"


class ImageMetrics:
    """Per-image numbers of reconstructions against their targets, beside the loss (issue 17).

    * ``mse_255``, ``ssim``: on 0-255 pixels (PSNR is already in every table);
    * ``perceptual_other``: the perceptual part of Eq. 1 (four layers, λ = 1, paper units)
      computed by a network the loss did not optimise — EfficientNet-Lite0 (ImageNet) when the
      loss ran VGG-16, VGG-16 (ImageNet if cached, else the labelled random one) when it ran
      EfficientNet; ``perceptual_other_net`` names it;
    * ``identity_distance``: dlib's face-descriptor distance (faces only, NaN otherwise; < 0.6:
      the same person), at the generator's framing ``zoom``;
    * ``lpips``: LPIPS v0.1 with VGG-16 (the ``lpips`` package's linear layers on ImageNet
      VGG-16) when the ImageNet VGG-16 file is present (the paper tier), NaN otherwise; on images
      area-shrunk to :data:`LPIPS_SIZE` when larger.

    Images are measured :data:`PIXELS_PER_PASS` at a time, so a batch at 1024 px stays in memory.

    A number that cannot be computed here (dlib's models or the framing missing) is NaN, with the
    reason printed once; it never stops an experiment.
    """

    def __init__(self, loss_net: str, zoom: float, device: str | torch.device = "cpu") -> None:
        self.loss_net, self.zoom, self.device = loss_net, float(zoom), torch.device(device)
        self._other = None
        self._lpips: object | None = None
        self._said: set[str] = set()

    def _say_once(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            print(message)

    def _say(self, what: str, why: object) -> None:
        self._say_once(f"[i2s] {what} not measured: {why}")

    def other(self):
        """The second perceptual network, as an EmbeddingLoss with only its perceptual part."""
        if self._other is None:
            from .loss import EFFICIENTNET, EmbeddingLoss, LossSettings

            perceptual = "auto" if _other_network(self.loss_net) == "vgg16" else EFFICIENTNET
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the random-VGG warning: the label says it
                self._other = EmbeddingLoss(LossSettings(variant="perceptual"), perceptual).to(self.device)
        return self._other

    def lpips(self):
        """LPIPS-VGG on ImageNet VGG-16, or None where the file or the package is missing."""
        if self._lpips is None:
            self._lpips = False
            from .loss import find_vgg16_weights

            path = find_vgg16_weights()
            if path is None:
                return None
            try:
                self._lpips = _lpips_vgg(path).to(self.device)
            except ImportError as e:
                self._say("LPIPS", f"{e} (pip install lpips)")
        return self._lpips or None

    @torch.no_grad()
    def __call__(self, recon: torch.Tensor, target: torch.Tensor, faces: Sequence[bool]) -> dict[str, list]:
        n, per_pass = len(recon), max(1, PIXELS_PER_PASS // (recon.shape[-1] * recon.shape[-2]))
        if n > per_pass:  # in passes: the columns of each, joined
            parts = [self(recon[i:i + per_pass], target[i:i + per_pass], faces[i:i + per_pass])
                     for i in range(0, n, per_pass)]
            return {k: [v for p in parts for v in p[k]] for k in parts[0]}
        recon, target = recon.to(self.device).float(), target.to(self.device).float()
        other = self.other()
        out: dict[str, list] = {
            "mse_255": mse_255(recon.clamp(-1, 1), target.clamp(-1, 1)).cpu().tolist(),
            "ssim": ssim(recon, target).cpu().tolist(),
            "perceptual_other": other(recon.clamp(-1, 1), target.clamp(-1, 1)).cpu().tolist(),
            "perceptual_other_net": [other.perceptual_net] * n,
            "identity_distance": [float("nan")] * n,
            "lpips": [float("nan")] * n,
        }
        idx = [i for i, f in enumerate(faces) if f]
        if idx:
            from . import identity

            d = identity.or_nan("identity distance",
                                lambda: identity.identity_distance(recon[idx].cpu(), target[idx].cpu(), self.zoom),
                                (len(idx),), say=self._say_once)
            for i, v in zip(idx, d):
                out["identity_distance"][i] = float(v)
        lp = self.lpips()
        if lp is not None:
            a, b = recon.clamp(-1, 1), target.clamp(-1, 1)
            if a.shape[-1] > LPIPS_SIZE:  # an exact box filter, as the loss's resize (1024 -> 256)
                a, b = F.adaptive_avg_pool2d(a, LPIPS_SIZE), F.adaptive_avg_pool2d(b, LPIPS_SIZE)
            out["lpips"] = lp(a, b).flatten().cpu().tolist()
        return out


def _lpips_vgg(vgg_path):
    """``lpips.LPIPS(net="vgg")`` with its backbone loaded from the local ImageNet VGG-16 file
    (the package would download it), its linear layers from the package itself."""
    import lpips  # noqa: F401 - ImportError names the package

    from .loss import read_vgg16_state

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
    state = read_vgg16_state(vgg_path)
    net = model.net
    for k in range(1, 6):
        for name, module in getattr(net, f"slice{k}").named_children():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.copy_(state[f"features.{name}.weight"])
                module.bias.copy_(state[f"features.{name}.bias"])
    return model.eval().requires_grad_(False)
