"""StyleGAN v1 (Karras et al., CVPR 2019) in PyTorch, faithful to NVlabs/stylegan.

This is the generator the paper embeds into (Image2StyleGAN §3.3): a mapping network
z -> w and a synthesis network W+ -> image. Every runtime rule follows
``training/networks_stylegan.py`` of NVlabs/stylegan so that the official FFHQ-1024
weights (converted by :mod:`i2s.weights.tf_pickle`) produce the official images:

* equalized learning rate: weights are stored N(0, 1/lrmul) and scaled at run time by
  ``gain / sqrt(fan_in) * lrmul``; biases by ``lrmul``;
* mapping: pixel norm, 8 dense layers with leaky ReLU (alpha 0.2, no extra gain),
  ``lrmul = 0.01``;
* synthesis: a learned 4x4 constant, then per resolution an up-sampling 3x3 convolution
  (nearest + conv below 128 px, a fused transposed convolution from 128 px up), a
  [1, 2, 1] blur after every up-sampling, and a second 3x3 convolution;
* every convolution is followed by the layer epilogue: per-layer noise (scaled per
  channel) -> bias -> leaky ReLU -> instance norm -> style modulation
  ``x * (s0 + 1) + s1`` where ``s = A(w)``;
* truncation ``w' = w_avg + psi * (w - w_avg)`` on the first ``truncation_cutoff``
  layers, and the moving average ``w_avg`` (the paper's w̄).

The same class with a smaller :class:`StyleGANConfig` is the kit's ``mini`` model.
Parameter names mirror the official variable names (see :mod:`i2s.weights.tf_pickle`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

NoiseMode = Literal["const", "random", "none"]

__all__ = ["StyleGANConfig", "StyleGAN", "Mapping", "Synthesis", "random_weights", "NoiseMode"]


class GeneratorConfig:
    """What the v1 and StyleGAN2 configs share: the W+ row count of a power-of-two resolution and
    a dict round trip that refuses unknown fields (lists from JSON become the tuples a field holds)."""

    resolution: int

    @property
    def log2_res(self) -> int:
        r = int(math.log2(self.resolution))
        if 2**r != self.resolution or r < 2:
            raise ValueError(f"resolution must be a power of two >= 4, got {self.resolution}")
        return r

    @property
    def num_layers(self) -> int:
        """Rows of a W+ code (style inputs; NVIDIA's ``num_ws``): 2 per resolution, 18 at 1024 px."""
        return 2 * self.log2_res - 2

    @classmethod
    def from_dict(cls, d: dict) -> Any:
        known = {f.name: f for f in fields(cls)}
        unknown = set(d) - set(known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) and isinstance(known[k].default, tuple) else v
                      for k, v in d.items()})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StyleGANConfig(GeneratorConfig):
    """Architecture hyper-parameters (names and defaults of NVlabs/stylegan ``G_style``)."""

    resolution: int = 1024
    num_channels: int = 3
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_fmaps: int = 512
    mapping_lrmul: float = 0.01
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    fused_min_res: int = 128  # 'auto': fused up-conv when the output resolution >= 128
    truncation_psi: float = 0.7
    truncation_cutoff: int = 8
    w_avg_beta: float = 0.995

    def channels(self, res: int) -> int:
        """Feature maps at output resolution ``res``: ``nf(log2(res) - 1)``."""
        stage = int(math.log2(res)) - 1
        return min(int(self.fmap_base / (2.0 ** (stage * self.fmap_decay))), self.fmap_max)

    @classmethod
    def ffhq1024(cls) -> "StyleGANConfig":
        """The paper's generator: StyleGAN v1 trained on FFHQ at 1024x1024."""
        return cls()


# --------------------------------------------------------------------------- layers


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    # v1 applies no sqrt(2) gain after the activation (that gain lives in he_std only).
    return F.leaky_relu(x, 0.2)


class Dense(nn.Module):
    """Fully connected layer with equalized learning rate (``get_weight`` + ``apply_bias``)."""

    def __init__(self, in_f: int, out_f: int, gain: float = math.sqrt(2), lrmul: float = 1.0,
                 bias_lrmul: float | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_f, in_f) / lrmul)
        self.bias = nn.Parameter(torch.zeros(out_f))
        self.weight_gain = gain / math.sqrt(in_f) * lrmul
        self.bias_gain = lrmul if bias_lrmul is None else bias_lrmul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``x * rsqrt(mean(x^2) + eps)`` over the feature axis."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-sample, per-channel normalisation over H, W (networks_stylegan ``instance_norm``)."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)


def style_mod(x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """AdaIN modulation ``x * (s0 + 1) + s1`` with ``style = [s0 | s1]`` of width 2C."""
    c = x.shape[1]
    s = style.view(-1, 2, c, 1, 1)
    return x * (s[:, 0] + 1) + s[:, 1]


def instance_norm_style_mod(x: torch.Tensor, style: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``style_mod(instance_norm(x, eps), style)`` with one fused normalisation kernel.

    The same maths as the two functions: an instance norm is a batch norm of the [1, N*C, H, W]
    view (statistics per sample and channel over H, W), and the modulation ``x * (s0 + 1) + s1``
    is that batch norm's per-channel affine; a few element-wise passes over the activations
    fewer, forward and backward. ``x`` is centred first: batch-norm kernels evaluate
    ``x * a + (b - mean * a)``, which cancels catastrophically when a channel is (nearly)
    constant and ``a = 1 / sqrt(var + 1e-8)`` is huge (the 4x4 constant of a random-weight
    generator); after centring, such a channel is exactly 0 as in :func:`instance_norm`.
    Results agree with the two functions to float rounding.
    """
    n, c, h, w = x.shape
    x = x - x.mean(dim=(2, 3), keepdim=True)
    # float32 affine for bf16/fp16 activations (autocast), as batch-norm kernels expect
    s = style.view(n, 2, c).to(torch.float32 if x.dtype in (torch.bfloat16, torch.float16) else x.dtype)
    y = F.batch_norm(x.reshape(1, n * c, h, w), None, None, weight=(s[:, 0] + 1).reshape(n * c),
                     bias=s[:, 1].reshape(n * c), training=True, momentum=0.0, eps=eps)
    return y.view(n, c, h, w)


_BLUR_1D = torch.tensor([1.0, 2.0, 1.0])


def blur2d(x: torch.Tensor) -> torch.Tensor:
    """Depthwise [1,2,1] x [1,2,1] / 16 filter, 'SAME' padding, stride 1."""
    k = torch.outer(_BLUR_1D, _BLUR_1D).to(x)
    k = (k / k.sum()).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(x, k, padding=1, groups=x.shape[1])


def upscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour up-sampling by tiling (networks_stylegan ``upscale2d``)."""
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


class Conv2d(nn.Module):
    """3x3 (or 1x1) convolution with equalized learning rate, optional up-sampling.

    ``up="none"``: plain 'SAME' conv. ``up="nearest"``: ``upscale2d`` then conv.
    ``up="fused"``: the official fused ``upscale2d_conv2d``: the 3x3 kernel zero-padded
    to 5x5, its four shifted 4x4 windows summed, then a stride-2 transposed convolution
    (no kernel flip in v1).

    ``forward`` is that literal definition. :meth:`fast` (used by the synthesis network)
    computes ``up="nearest"`` as the equivalent stride-2 transposed convolution with the
    *flipped* summed 4x4 kernel: nearest up-sampling followed by a 3x3 'SAME' conv is exactly
    that, borders included, but needs 16 instead of 36 multiply-adds per input pixel and never
    materialises the up-sampled tensor. Same maths; results agree to float rounding.
    """

    def __init__(self, in_c: int, out_c: int, kernel: int, gain: float = math.sqrt(2),
                 up: Literal["none", "nearest", "fused"] = "none") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_c, in_c, kernel, kernel))
        self.weight_gain = gain / math.sqrt(in_c * kernel * kernel)
        self.up = up
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.up == "fused":
            return F.conv_transpose2d(x, self._summed_kernel(w).permute(1, 0, 2, 3), stride=2, padding=1)
        if self.up == "nearest":
            x = upscale2d(x)
        return F.conv2d(x, w, padding=self.kernel // 2)

    @staticmethod
    def _summed_kernel(w: torch.Tensor) -> torch.Tensor:
        """3x3 kernel -> the sum of the four shifted 4x4 windows of its zero-padded 5x5 version."""
        w = F.pad(w, (1, 1, 1, 1))
        return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]

    def fast(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` with ``up="nearest"`` as a transposed convolution (see the class docstring)."""
        if self.up != "nearest" or self.kernel != 3:
            return self(x)
        w = self._summed_kernel(self.weight * self.weight_gain).flip(2, 3)
        return F.conv_transpose2d(x, w.permute(1, 0, 2, 3), stride=2, padding=1)


class LayerEpilogue(nn.Module):
    """noise -> bias -> lrelu -> instance norm -> style modulation (``layer_epilogue``).

    Holds the per-layer stored noise ``noise_const`` (the official ``noise{k}``), the
    per-channel noise strength, the bias and the style affine ``A`` (``StyleMod``).
    """

    def __init__(self, channels: int, res: int, w_dim: int) -> None:
        super().__init__()
        self.noise_strength = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.style = Dense(w_dim, 2 * channels, gain=1.0)
        self.register_buffer("noise_const", torch.randn(1, 1, res, res))
        self.res = res

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode = "const") -> torch.Tensor:
        if noise_mode == "const":
            noise = self.noise_const
        elif noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.res, self.res, device=x.device, dtype=x.dtype)
        elif noise_mode == "none":
            noise = None
        else:
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        bias = self.bias.view(1, -1, 1, 1)
        if noise is not None:
            # (noise * strength + bias) first: with constant noise a [1, C, H, W] tensor, so the
            # activations are traversed once instead of twice (same maths, float rounding).
            # Under autocast the (float32) term is cast to the activations' dtype, so that they stay bf16.
            x = x + (noise * self.noise_strength.view(1, -1, 1, 1) + bias).to(x.dtype)
        else:
            x = x + bias.to(x.dtype)
        x = _lrelu(x)
        return instance_norm_style_mod(x, self.style(w))  # == style_mod(instance_norm(x), A(w))


class StyleLayer(nn.Module):
    """One of the ``num_layers`` style layers: (up-)conv, blur after up-sampling, epilogue."""

    def __init__(self, in_c: int, out_c: int, res: int, w_dim: int,
                 up: Literal["none", "nearest", "fused"]) -> None:
        super().__init__()
        self.conv = Conv2d(in_c, out_c, 3, up=up)
        self.blur = up != "none"
        self.epilogue = LayerEpilogue(out_c, res, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode) -> torch.Tensor:
        x = self.conv.fast(x)
        if self.blur:
            x = blur2d(x)
        return self.epilogue(x, w, noise_mode)


class ConstLayer(nn.Module):
    """Style layer 0 (``4x4/Const``): the learned 4x4 constant, then the epilogue."""

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.const = nn.Parameter(torch.ones(1, channels, 4, 4))
        self.epilogue = LayerEpilogue(channels, 4, w_dim)

    def forward(self, n: int, w: torch.Tensor, noise_mode: NoiseMode) -> torch.Tensor:
        return self.epilogue(self.const.expand(n, -1, -1, -1), w, noise_mode)


class ToRGB(nn.Module):
    """1x1 convolution (gain 1) + bias; no activation, no tanh."""

    def __init__(self, in_c: int, out_c: int) -> None:
        super().__init__()
        self.conv = Conv2d(in_c, out_c, 1, gain=1.0)
        self.bias = nn.Parameter(torch.zeros(out_c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.bias.view(1, -1, 1, 1)


# --------------------------------------------------------------------------- networks


class MappingBase(nn.Module):
    """What the v1 and StyleGAN2 mappings share around their dense layers (``w(z)``): the
    broadcast to W+, the tracked ``w_avg`` (the official ``dlatent_avg``, the paper's w̄) and the
    truncation trick, as ``G_style`` / NVIDIA's ``MappingNetwork`` do."""

    cfg: Any
    w_avg: torch.Tensor

    def w(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = False) -> torch.Tensor:
        """z [N, z_dim] -> W+ code [N, num_layers, w_dim] (w broadcast to every layer).

        With ``truncation_psi != 1`` the first ``truncation_cutoff`` layers (default: the
        config's, 8 for FFHQ v1, every row for a StyleGAN2 config's ``None``) are pulled towards
        ``w_avg``. ``update_w_avg`` tracks the moving average during training (beta ``w_avg_beta``).
        """
        w = self.w(z)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(torch.lerp(w.detach().mean(0), self.w_avg, self.cfg.w_avg_beta))
        w_plus = w.unsqueeze(1).repeat(1, self.cfg.num_layers, 1)
        if truncation_psi != 1.0:
            w_plus = self.truncate(w_plus, truncation_psi, truncation_cutoff)
        return w_plus

    def truncate(self, w_plus: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """Truncation trick: ``w_avg + psi * (w - w_avg)`` on rows ``< cutoff``."""
        cutoff = self.cfg.truncation_cutoff if cutoff is None else cutoff
        cutoff = w_plus.shape[1] if cutoff is None else cutoff
        out = w_plus.clone()
        out[:, :cutoff] = torch.lerp(self.w_avg.to(w_plus), w_plus[:, :cutoff], psi)
        return out


class Mapping(MappingBase):
    """z -> W+: pixel norm, ``mapping_layers`` dense layers with leaky ReLU, broadcast
    (:class:`MappingBase`: ``w_avg`` and truncation)."""

    def __init__(self, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dims = [cfg.z_dim] + [cfg.mapping_fmaps] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        self.layers = nn.ModuleList(
            Dense(dims[i], dims[i + 1], gain=math.sqrt(2), lrmul=cfg.mapping_lrmul)
            for i in range(cfg.mapping_layers)
        )
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def w(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, z_dim] -> w [N, w_dim] (one code, before broadcasting)."""
        x = pixel_norm(z)
        for layer in self.layers:
            x = _lrelu(layer(x))
        return x


class Synthesis(nn.Module):
    """W+ -> image. Style layer ``k`` takes row ``k`` of the W+ code.

``layers[k]`` is style layer ``k``: layer 0 is ``4x4/Const`` (the learned constant plus
    epilogue), layer 1 ``4x4/Conv``; for each resolution ``r`` from 8 up, layer
    ``2*log2(r)-4`` is ``Conv0_up`` and layer ``2*log2(r)-3`` is ``Conv1``. ``torgb[b]`` is the official ``ToRGB_lod{L-b}``; only the
    last one is used for a fully grown network (``lod = 0``).
    """

    def __init__(self, cfg: StyleGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c4 = cfg.channels(4)
        layers: list[nn.Module] = [ConstLayer(c4, cfg.w_dim), StyleLayer(c4, c4, 4, cfg.w_dim, up="none")]
        torgb = [ToRGB(c4, cfg.num_channels)]
        in_c = c4
        for log2r in range(3, cfg.log2_res + 1):
            res = 2**log2r
            out_c = cfg.channels(res)
            up = "fused" if res >= cfg.fused_min_res else "nearest"
            layers.append(StyleLayer(in_c, out_c, res, cfg.w_dim, up=up))
            layers.append(StyleLayer(out_c, out_c, res, cfg.w_dim, up="none"))
            torgb.append(ToRGB(out_c, cfg.num_channels))
            in_c = out_c
        self.layers = nn.ModuleList(layers)
        self.torgb = nn.ModuleList(torgb)

    @property
    def num_layers(self) -> int:
        return self.cfg.num_layers

    def forward(self, w_plus: torch.Tensor, noise_mode: NoiseMode = "const",
                block: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """Render ``w_plus`` of shape [N, num_layers, w_dim] to NCHW images in ~[-1, 1].

        ``block``/``alpha`` serve progressive-growing training only: stop after resolution
        block ``block`` (0 = 4x4) and fade its RGB output in with weight ``alpha`` over the
        nearest-up-sampled output of the block below (the official 'linear' structure).
        The result then has resolution ``4 * 2**block``.
        """
        n_layers = self.cfg.num_layers
        if w_plus.ndim != 3 or w_plus.shape[1] != n_layers:
            raise ValueError(f"w_plus must have shape [N, {n_layers}, {self.cfg.w_dim}], got {tuple(w_plus.shape)}")
        last = len(self.torgb) - 1 if block is None else block
        x = self.layers[0](w_plus.shape[0], w_plus[:, 0], noise_mode)
        x = self.layers[1](x, w_plus[:, 1], noise_mode)
        prev = x
        for b in range(1, last + 1):
            prev = x
            x = self.layers[2 * b](x, w_plus[:, 2 * b], noise_mode)
            x = self.layers[2 * b + 1](x, w_plus[:, 2 * b + 1], noise_mode)
        img = self.torgb[last](x)
        if last > 0 and alpha < 1.0:
            img = torch.lerp(upscale2d(self.torgb[last - 1](prev)), img, alpha)
        return img


class Generator(nn.Module):
    """What every generator of the kit shares (v1 here, StyleGAN2 in :mod:`i2s.stylegan2`): the
    properties Algorithm 1 and the edits read, ``forward`` and w̄'s estimate. A subclass sets
    ``cfg``, ``mapping`` (with ``w_avg`` and ``w(z)``), ``synthesis`` and ``info``."""

    cfg: Any
    info: dict

    @property
    def num_layers(self) -> int:
        return self.cfg.num_layers

    @property
    def resolution(self) -> int:
        return self.cfg.resolution

    @property
    def z_dim(self) -> int:
        return self.cfg.z_dim

    @property
    def w_dim(self) -> int:
        return self.cfg.w_dim

    @property
    def w_avg(self) -> torch.Tensor:
        """w̄: the moving average of w (official ``dlatent_avg``), shape [w_dim]."""
        return self.mapping.w_avg

    @property
    def name(self) -> str:
        return str(self.info.get("name", "unnamed"))

    @property
    def device(self) -> torch.device:
        return self.mapping.w_avg.device

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                noise_mode: NoiseMode = "const") -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi), noise_mode=noise_mode)

    @torch.no_grad()
    def estimate_w_avg(self, n: int = 10_000, seed: int = 0, batch: int = 1000) -> torch.Tensor:
        """Mean of ``mapping.w(z)`` over ``n`` samples (w̄ for a network without a stored one)."""
        g = torch.Generator().manual_seed(seed)
        total = torch.zeros(self.w_dim, dtype=torch.float64)
        for i in range(0, n, batch):
            z = torch.randn(min(batch, n - i), self.z_dim, generator=g).to(self.device)
            total += self.mapping.w(z).double().sum(0).cpu()
        return (total / n).float()

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, num_layers={self.num_layers}, name={self.name!r}"




class StyleGAN(Generator):
    """The generator ``G`` of the kit.

    ``G.mapping(z)`` -> W+ code [N, num_layers, w_dim]; ``G.synthesis(w_plus, noise_mode)``
    -> images [N, 3, resolution, resolution] in ~[-1, 1]; ``G(z, truncation_psi)`` both.
    ``num_layers`` (18 at 1024 px), ``resolution`` and ``w_avg`` (w̄) as in the paper.
    ``info`` is a dict that loaders fill with the model's name, tier and provenance.
    """

    def __init__(self, cfg: StyleGANConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or StyleGANConfig()
        self.mapping = Mapping(self.cfg)
        self.synthesis = Synthesis(self.cfg)
        self.info: dict = {"name": "untrained", "tier": "random"}

    def w_std(self, n: int = 10_000, seed: int = 0) -> float:
        """W's spread: the per-dimension standard deviation of ``mapping.w(z)``, averaged over the
        ``w_dim`` dimensions (``n`` samples of z from ``seed``)."""
        z = torch.randn(n, self.z_dim, generator=torch.Generator().manual_seed(seed)).to(self.device)
        with torch.no_grad():
            return float(self.mapping.w(z).std(0).mean())

    @torch.no_grad()
    def rescale_w(self, c: float) -> None:
        """Store W at ``c`` times its scale without changing any image: the mapping's last dense
        layer (weight and bias) and w̄ are multiplied by ``c``, every style affine ``A``'s weight
        divided by it. Exact because the mapping ends in a leaky ReLU, which is positively
        homogeneous, and ``A`` is linear (its bias, the 1 of ``s + 1``, stays). Truncation and
        every edit are linear in w, so they are unchanged too. What changes is how far Adam moves
        w per step: Algorithm 1's lr 0.01 (§3.2) was set for FFHQ's W, and a generator stored with
        a wider W converges in more steps (data/models/mini-faces64.md)."""
        if not c > 0 or not math.isfinite(c):
            raise ValueError(f"rescale_w: c must be a positive number, got {c}")
        last = self.mapping.layers[-1]
        last.weight.mul_(c)
        last.bias.mul_(c)
        self.mapping.w_avg.mul_(c)
        for m in self.synthesis.modules():
            if isinstance(m, LayerEpilogue):
                m.style.weight.div_(c)


def random_weights(G: StyleGAN, seed: int = 0) -> StyleGAN:
    """A copy of ``G``'s architecture re-initialised as in training (paper Fig. 5 (b)(e)).

    Weights N(0, 1/lrmul), biases and noise strengths 0, the constant 1, new stored noise;
    ``w_avg`` is re-estimated from 10,000 samples of the new mapping network.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # module constructors draw from the global generator
        fresh = StyleGAN(copy.deepcopy(G.cfg)).to(G.device)
    fresh.mapping.w_avg.copy_(fresh.estimate_w_avg(seed=seed))
    fresh.info = {"name": f"{G.name}-random-weights-seed{seed}", "tier": "random",
                  "architecture_of": G.name}
    return fresh
