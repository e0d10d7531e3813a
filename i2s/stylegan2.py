"""StyleGAN2 (Karras et al., CVPR 2020) in PyTorch, faithful to NVlabs/stylegan2-ada-pytorch.

The generator of NVIDIA's StyleGAN2 and StyleGAN2-ADA releases (``stylegan2-ffhq-config-f.pkl``,
``ffhq.pkl``, ``afhqcat.pkl``, ...), read by :mod:`i2s.weights.ada_pickle` (PyTorch pickles) and
:mod:`i2s.weights.tf_stylegan2` (TensorFlow pickles, network version 4) without running any of
NVIDIA's code. Every runtime rule follows ``training/networks.py`` and ``torch_utils/ops`` of
NVlabs/stylegan2-ada-pytorch (reference-facts §3, §12), and the parameter and buffer names are
that file's, so an ADA state dict loads one to one:

* mapping: ``normalize_2nd_moment(z)``, ``mapping_layers`` fully connected layers with equalized
  learning rate (``weight_gain = lr_multiplier / sqrt(in)``, ``bias_gain = lr_multiplier``) and
  ``lrelu`` (alpha 0.2) times ``sqrt(2)``; ``w_avg`` (w̄), broadcast to ``num_ws`` rows and
  truncation ``w_avg.lerp(w, psi)`` on the first ``truncation_cutoff`` rows (all by default);
* synthesis, architecture ``'skip'``: a learned 4x4 constant; per resolution two modulated 3x3
  convolutions (the first up-samples by 2: a stride-2 transposed convolution followed by the
  [1, 3, 3, 1] FIR filter with gain 4, ``conv2d_resample``), each followed by the stored or random
  noise times a learned scalar, bias, ``lrelu`` times ``sqrt(2)`` and the optional ``conv_clamp``;
  a modulated 1x1 ToRGB per resolution (no demodulation, styles times ``1/sqrt(C)``) whose outputs
  are summed over the FIR-up-sampled image of the resolution below;
* modulation: ``styles = affine(w)`` (its bias initialised to 1), demodulation
  ``rsqrt(sum((W * s)^2) + 1e-8)`` per output channel.

It computes in the dtype of its inputs and weights, float32 by default (NVIDIA's ``force_fp32=True``;
their pickles may run their top ``num_fp16_res`` resolutions in float16 on a GPU, which changes
pixels by ~1e-3). The convolutions
use the non-fused form (activations scaled by the styles before a shared-weight convolution, then
by the demodulation coefficients), which is NVIDIA's training path and equals their fused
grouped convolution up to float rounding.

The interface is :class:`i2s.stylegan.StyleGAN`'s: ``G.mapping(z, truncation_psi)`` -> W+ code
``[N, num_layers, w_dim]``, ``G.mapping.w(z)``, ``G.synthesis(w_plus, noise_mode)`` -> images in
~[-1, 1], ``G.num_layers`` (18 at 1024 px: 17 convolutions and the last ToRGB), ``G.w_avg``,
``G.info`` and ``G.domain`` (what the generator was trained on: ``"faces"``, ``"cats"``, ...).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from .stylegan import Generator, GeneratorConfig, MappingBase

NoiseMode = Literal["const", "random", "none"]

__all__ = ["StyleGAN2Config", "StyleGAN2", "config_problems", "generator_elements", "setup_filter", "upfirdn2d",
           "NoiseMode", "random_weights"]

_SQRT2 = math.sqrt(2)


@dataclass(frozen=True)
class StyleGAN2Config(GeneratorConfig):
    """Architecture hyper-parameters, named as in stylegan2-ada-pytorch's ``Generator`` kwargs.

    ``channels(res) = min(channel_base // res, channel_max)`` (TF StyleGAN2's ``fmap_base`` is
    ``channel_base / 2``). ``mapping_features`` is the width of the hidden mapping layers
    (ADA's ``layer_features``; ``w_dim`` in every released network). ``truncation_cutoff=None``
    truncates every row, as NVIDIA's ``Generator`` does.
    """

    resolution: int = 1024
    img_channels: int = 3
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_features: int = 512
    mapping_lrmul: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    resample_filter: tuple[int | float, ...] = (1, 3, 3, 1)
    use_noise: bool = True
    conv_clamp: float | None = None
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    w_avg_beta: float = 0.995

    @property
    def block_resolutions(self) -> list[int]:
        return [2**k for k in range(2, self.log2_res + 1)]

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @classmethod
    def ffhq1024(cls) -> "StyleGAN2Config":
        """StyleGAN2 config-f at 1024 px (``stylegan2-ffhq-config-f.pkl``, ADA's ``ffhq.pkl``)."""
        return cls()


#: Bounds of the fields (the released networks: 3 channels, 512, 8 layers, 32768, 512).
_INT_BOUNDS = {"img_channels": (1, 4), "z_dim": (1, 1024), "w_dim": (1, 1024), "mapping_layers": (1, 32),
               "mapping_features": (1, 1024), "channel_base": (1, 2**17), "channel_max": (1, 1024)}
_FLOAT_BOUNDS = {"mapping_lrmul": (1e-6, 1e3), "truncation_psi": (-16.0, 16.0), "w_avg_beta": (0.0, 1.0)}
#: Highest output resolution: NVIDIA's StyleGAN2 networks stop at 1024 px.
MAX_RESOLUTION = 1024


def config_problems(cfg: Any) -> list[str]:
    """What makes ``cfg`` (a :class:`StyleGAN2Config`) impossible or too large; ``[]`` when fine.

    Checked arithmetically, before any module or tensor exists, against the same element budget
    as StyleGAN v1 (:data:`i2s.weights.limits.MAX_GENERATOR_ELEMENTS`).
    """
    from .weights.limits import MAX_GENERATOR_ELEMENTS, bounds_problems, quote

    problems = bounds_problems(cfg, _INT_BOUNDS, _FLOAT_BOUNDS, MAX_RESOLUTION)
    taps = getattr(cfg, "resample_filter", None)
    if not (type(taps) is tuple and 1 <= len(taps) <= 8 and all(type(t) in (int, float) and math.isfinite(t)
                                                                 for t in taps) and sum(taps) != 0):
        problems.append(f"resample_filter={quote(taps)} is not 1 to 8 finite taps with a non-zero sum")
    clamp = getattr(cfg, "conv_clamp", None)
    if clamp is not None and not (type(clamp) in (int, float) and math.isfinite(clamp) and 0 <= clamp <= 1e6):
        problems.append(f"conv_clamp={quote(clamp)} is not None or a number from 0 to 1e6")
    cutoff = getattr(cfg, "truncation_cutoff", None)
    if cutoff is not None and not (type(cutoff) is int and 0 <= cutoff <= 64):
        problems.append(f"truncation_cutoff={quote(cutoff)} is not None or an integer from 0 to 64")
    if type(getattr(cfg, "use_noise", None)) is not bool:
        problems.append(f"use_noise={quote(getattr(cfg, 'use_noise', None))} is not a bool")
    if problems:
        return problems
    empty = [r for r in cfg.block_resolutions if cfg.channels(r) < 1]
    if empty:
        return [f"channel_base={cfg.channel_base} leaves no channels at {empty[0]}x{empty[0]}"]
    n = generator_elements(cfg)
    if n > MAX_GENERATOR_ELEMENTS:
        problems.append(f"the architecture needs {n:,} values, more than the {MAX_GENERATOR_ELEMENTS:,} any "
                        "generator this kit runs may have (StyleGAN2 FFHQ-1024 has 30.4 M)")
    return problems


def generator_elements(cfg: StyleGAN2Config) -> int:
    """Number of values in the state dict of ``StyleGAN2(cfg)``, computed without building it."""
    n = 0
    for i in range(cfg.mapping_layers):
        fin = cfg.z_dim if i == 0 else cfg.mapping_features
        fout = cfg.w_dim if i == cfg.mapping_layers - 1 else cfg.mapping_features
        n += fin * fout + fout
    n += cfg.w_dim  # w_avg
    f2 = len(cfg.resample_filter) ** 2

    def layer(cin: int, cout: int, k: int, res: int, noise: bool) -> int:  # affine, weight, bias, noise
        m = cfg.w_dim * cin + cin + cout * cin * k * k + cout
        return m + ((res * res + 1) if noise and cfg.use_noise else 0) + (f2 if noise else 0)

    cin = 0
    for res in cfg.block_resolutions:
        c = cfg.channels(res)
        n += f2  # the block's resample_filter
        n += c * 16 if cin == 0 else layer(cin, c, 3, res, True)
        n += layer(c, c, 3, res, True) + layer(c, cfg.img_channels, 1, res, False)
        cin = c
    return n


# --------------------------------------------------------------------------- ops (torch_utils/ops, 'ref')


def setup_filter(taps: tuple[int | float, ...] | list) -> torch.Tensor:
    """``upfirdn2d.setup_filter``: the outer product of the 1-D taps, normalised to sum 1 (fewer
    than 8 taps are never separable there, so the filter is the 2-D ``[len, len]`` one)."""
    f = torch.as_tensor(list(taps), dtype=torch.float32)
    if f.numel() >= 8:
        raise ValueError("separable (8+ tap) resample filters are not supported")
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, padding: tuple[int, int, int, int] = (0, 0, 0, 0),
              gain: float = 1.0) -> torch.Tensor:
    """NVIDIA's ``_upfirdn2d_ref`` for a 2-D filter without down-sampling: insert ``up - 1`` zeros
    after every pixel, pad (negative: crop) by ``(x0, x1, y0, y1)``, convolve every channel with
    ``f * gain``."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = padding
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    f = (f * gain).to(x.dtype).flip([0, 1])  # a convolution, not a correlation
    return F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """``upfirdn2d.upsample2d``: zero insertion, the FIR filter with gain ``up**2``, same-size padding."""
    fw = f.shape[-1]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def conv2d_up2(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, padding: int) -> torch.Tensor:
    """``conv2d_resample(x, w, f, up=2, padding, flip_weight=False)``: a stride-2 transposed
    convolution with ``w`` (not flipped), then the FIR filter with gain 4 and the remaining padding."""
    up = 2
    _, _, kh, kw = w.shape
    fh, fw = f.shape
    px0 = padding + (fw + up - 1) // 2 - (kw - 1)
    px1 = padding + (fw - up) // 2 - (kw - up)
    py0 = padding + (fh + up - 1) // 2 - (kh - 1)
    py1 = padding + (fh - up) // 2 - (kh - up)
    pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
    x = F.conv_transpose2d(x, w.transpose(0, 1), stride=up, padding=(pyt, pxt))
    return upfirdn2d(x, f, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up * up)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def _bias_lrelu(x: torch.Tensor, b: torch.Tensor, gain: float = 1.0, clamp: float | None = None) -> torch.Tensor:
    """``bias_act(x, b, act='lrelu', gain=sqrt(2) * gain, clamp)``."""
    x = F.leaky_relu(x + b.reshape(1, -1, *([1] * (x.ndim - 2))), 0.2) * (_SQRT2 * gain)
    return x if clamp is None else x.clamp(-clamp, clamp)


# --------------------------------------------------------------------------- layers


class FullyConnectedLayer(nn.Module):
    """``FullyConnectedLayer``: equalized learning rate, ``linear`` or ``lrelu`` (times sqrt(2))."""

    def __init__(self, in_features: int, out_features: int, activation: str = "linear", lr_multiplier: float = 1.0,
                 bias_init: float = 0.0) -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype)
        if self.bias_gain != 1:
            b = b * self.bias_gain
        if self.activation == "linear":
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return _bias_lrelu(x.matmul(w.t()), b)


def _modulated_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                    up: bool = False, resample_filter: torch.Tensor | None = None,
                    noise: torch.Tensor | None = None) -> torch.Tensor:
    """``modulated_conv2d`` in its non-fused form (see the module docstring)."""
    n = x.shape[0]
    _, _, kh, _ = weight.shape
    x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    w = weight.to(x.dtype)
    if up:
        assert resample_filter is not None
        x = conv2d_up2(x, w, resample_filter, padding=kh // 2)
    else:
        x = F.conv2d(x, w, padding=kh // 2)
    if demodulate:
        # rsqrt(sum_{i,k} (W[o,i,k] s[i])^2 + 1e-8) = rsqrt(s^2 @ sum_k W[o,i,k]^2 + 1e-8)
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
        x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


class SynthesisLayer(nn.Module):
    """One modulated 3x3 convolution (``conv0`` up-samples), noise, bias, lrelu, optional clamp.

    ``epilogue`` and ``style`` are the names :class:`i2s.stylegan.StyleGAN`'s layers give the
    stored noise map and the style affine (``layer.epilogue.noise_const``,
    ``layer.epilogue.style``), which the kit's noise-variation experiment and SeFa read.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool,
                 resample_filter: tuple, use_noise: bool, conv_clamp: float | None) -> None:
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    @property
    def epilogue(self) -> "SynthesisLayer":
        return self

    @property
    def style(self) -> FullyConnectedLayer:
        return self.affine

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode = "const") -> torch.Tensor:
        if noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = _modulated_conv(x, self.weight, styles, demodulate=True, up=self.up,
                            resample_filter=self.resample_filter, noise=noise)
        return _bias_lrelu(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution without demodulation, bias, optional clamp (``ToRGBLayer``).

    It has no noise input: ``noise_const`` (for code that redraws every layer's noise map) is an
    empty tensor, not a buffer.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    @property
    def epilogue(self) -> "ToRGBLayer":
        return self

    @property
    def style(self) -> FullyConnectedLayer:
        return self.affine

    @property
    def noise_const(self) -> torch.Tensor:
        return self.weight.new_empty(0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = _modulated_conv(x, self.weight, styles, demodulate=False)
        x = x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        return x if self.conv_clamp is None else x.clamp(-self.conv_clamp, self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the 'skip' architecture: (const | conv0 up) -> conv1 -> ToRGB, image summed."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, cfg: StyleGAN2Config) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.register_buffer("resample_filter", setup_filter(cfg.resample_filter))
        kw = dict(w_dim=cfg.w_dim, resample_filter=cfg.resample_filter, use_noise=cfg.use_noise,
                  conv_clamp=cfg.conv_clamp)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, resolution=resolution, up=True, **kw)
        self.conv1 = SynthesisLayer(out_channels, out_channels, resolution=resolution, up=False, **kw)
        self.torgb = ToRGBLayer(out_channels, cfg.img_channels, cfg.w_dim, cfg.conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: NoiseMode) -> tuple[torch.Tensor, torch.Tensor]:
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, ws[:, 0], noise_mode)
        else:
            assert x is not None
            x = self.conv0(x, ws[:, 0], noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class Mapping(MappingBase):
    """z -> W+ (``MappingNetwork`` without labels; :class:`MappingBase`: ``w_avg`` and truncation)."""

    def __init__(self, cfg: StyleGAN2Config) -> None:
        super().__init__()
        self.cfg = cfg
        dims = [cfg.z_dim] + [cfg.mapping_features] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        for i in range(cfg.mapping_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(dims[i], dims[i + 1], activation="lrelu",
                                                        lr_multiplier=cfg.mapping_lrmul))
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def w(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, z_dim] -> w [N, w_dim]."""
        x = normalize_2nd_moment(z)
        for i in range(self.cfg.mapping_layers):
            x = getattr(self, f"fc{i}")(x)
        return x


class Synthesis(nn.Module):
    """W+ -> image: blocks ``b4`` ... ``b{resolution}``; block ``b{r}`` reads rows
    ``2 log2(r) - 5`` (conv0), ``2 log2(r) - 4`` (conv1) and ``2 log2(r) - 3`` (ToRGB, shared with
    the next block's conv0)."""

    def __init__(self, cfg: StyleGAN2Config) -> None:
        super().__init__()
        self.cfg = cfg
        for res in cfg.block_resolutions:
            cin = cfg.channels(res // 2) if res > 4 else 0
            setattr(self, f"b{res}", SynthesisBlock(cin, cfg.channels(res), res, cfg))

    @property
    def num_layers(self) -> int:
        return self.cfg.num_layers

    @property
    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.cfg.block_resolutions]

    @property
    def layers(self) -> list[nn.Module]:
        """The layer that reads each W+ row: the convolutions in order, then the last ToRGB (the
        other ToRGBs read the row of the next block's first convolution)."""
        out: list[nn.Module] = []
        for b in self.blocks:
            out += [b.conv1] if b.in_channels == 0 else [b.conv0, b.conv1]
        return out + [self.blocks[-1].torgb]

    def forward(self, w_plus: torch.Tensor, noise_mode: NoiseMode = "const") -> torch.Tensor:
        """Render ``w_plus`` [N, num_layers, w_dim] to NCHW images in ~[-1, 1]."""
        n_layers = self.cfg.num_layers
        if w_plus.ndim != 3 or w_plus.shape[1] != n_layers:
            raise ValueError(f"w_plus must have shape [N, {n_layers}, {self.cfg.w_dim}], got {tuple(w_plus.shape)}")
        ws = w_plus
        x = img = None
        idx = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, idx: idx + block.num_conv + 1], noise_mode)
            idx += block.num_conv
        assert img is not None
        return img


class StyleGAN2(Generator):
    """The StyleGAN2 generator with :class:`i2s.stylegan.StyleGAN`'s interface (module docstring)."""

    def __init__(self, cfg: StyleGAN2Config | None = None) -> None:
        super().__init__()
        self.cfg = cfg or StyleGAN2Config()
        self.synthesis = Synthesis(self.cfg)
        self.mapping = Mapping(self.cfg)
        self.info: dict = {"name": "untrained-stylegan2", "tier": "random"}

    @property
    def domain(self) -> str:
        """What the generator draws (``"faces"``, ``"cats"``, ...; ``"unknown"`` when not recorded)."""
        return str(self.info.get("domain") or "unknown")


def random_weights(G: StyleGAN2, seed: int = 0) -> StyleGAN2:
    """A copy of ``G``'s architecture initialised as NVIDIA's constructors do (``w_avg`` estimated)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = StyleGAN2(copy.deepcopy(G.cfg)).to(G.device)
    fresh.mapping.w_avg.copy_(fresh.estimate_w_avg(seed=seed))
    fresh.info = {"name": f"{G.name}-random-weights-seed{seed}", "tier": "random", "architecture_of": G.name,
                  "domain": G.info.get("domain")}
    return fresh
