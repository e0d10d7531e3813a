"""Synthetic StyleGAN2 network pickles in NVIDIA's two layouts, built without NVIDIA's code.

* :func:`make_ada_pickle`: a stylegan2-ada-pytorch pickle (``training/training_loop.py``):
  ``pickle.dump(dict(training_set_kwargs, G, D, G_ema, augment_pipe))`` where every network is a
  ``torch_utils.persistence`` object, i.e. the call ``_reconstruct_persistent_obj(meta)`` with
  ``meta = dict(type='class', version=6, module_src=<the module's source>, class_name=<str>,
  state=<the nn.Module __dict__>)`` (``torch_utils/persistence.py``). The module ``__dict__`` has
  the layout of torch 1.8 (``training``, ``_parameters``, ``_buffers``,
  ``_non_persistent_buffers_set``, the hook dicts, ``_modules``), the attributes each class of
  ``training/networks.py`` sets in its ``__init__`` (``weight_gain`` as a numpy float64, ...) and
  ``_init_args``/``_init_kwargs``. Tensors pickle through torch itself (``_rebuild_parameter``,
  ``_rebuild_tensor_v2``, ``torch.storage._load_from_bytes`` of legacy ``torch.save`` bytes),
  numpy's names are written as numpy 1 wrote them, and protocol 3 is Python 3.7's default.
* :func:`make_tf4_pickle`: a StyleGAN2 TensorFlow pickle (NVlabs/stylegan2, ``Network`` state
  version 4) with the variable names ``legacy.convert_tf_generator`` reads.

The weights (:func:`sg2_params`) are drawn from a numpy generator, so the same spec gives the same
network in every process. ``module_src`` defaults to a placeholder: i2s never runs it. The
reference images in ``tests/fixtures/stylegan2_reference.npz`` were rendered by NVIDIA's own
``legacy.py``/``training/networks.py`` (stylegan2-ada-pytorch d72cc7d) from these files, written
with the real module source, by a throwaway script outside the repository: docs/models.md
("Faithfulness") says what it did. This module never contains or imports NVIDIA's code.
"""

from __future__ import annotations

import math
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

try:
    from fixtures_tf import Network, _LegacyNumpyPickler, fake_dnnlib, GlobalName
except ImportError:  # tests/ imported as a package
    from tests.fixtures_tf import Network, _LegacyNumpyPickler, fake_dnnlib, GlobalName

__all__ = ["SPECS", "sg2_params", "make_ada_pickle", "make_tf4_pickle", "reference_inputs", "Persistent",
           "EasyDict", "PLACEHOLDER_SRC", "REFERENCE_NPZ", "tf_variables"]

REFERENCE_NPZ = Path(__file__).resolve().parent / "fixtures" / "stylegan2_reference.npz"
#: What ``module_src`` holds unless a caller passes the real source (i2s never runs it).
PLACEHOLDER_SRC = "# training/networks.py of NVlabs/stylegan2-ada-pytorch would be here (never executed)\n"
PLACEHOLDER_AUGMENT_SRC = "# training/augment.py of NVlabs/stylegan2-ada-pytorch would be here (never executed)\n"

#: The fixture networks: small, layout-exact, with the options that change pixels exercised
#: (a hidden mapping width other than w_dim, conv_clamp, float16 blocks that i2s runs in float32).
SPECS: dict[str, dict[str, Any]] = {
    "ada32": dict(kind="ada", resolution=32, z_dim=32, w_dim=32, mapping_layers=2, mapping_features=32,
                  channel_base=512, channel_max=32, conv_clamp=None, num_fp16_res=0, seed=1),
    "ada64clamp": dict(kind="ada", resolution=64, z_dim=24, w_dim=20, mapping_layers=3, mapping_features=28,
                       channel_base=512, channel_max=24, conv_clamp=0.5, num_fp16_res=2, seed=2),
    "ada256": dict(kind="ada", resolution=256, z_dim=16, w_dim=16, mapping_layers=2, mapping_features=16,
                   channel_base=256, channel_max=16, conv_clamp=None, num_fp16_res=0, seed=3),
    "tf32": dict(kind="tf", resolution=32, z_dim=32, w_dim=32, mapping_layers=2, mapping_features=32,
                 channel_base=512, channel_max=32, conv_clamp=None, num_fp16_res=0, seed=4),
    "tf128": dict(kind="tf", resolution=128, z_dim=16, w_dim=24, mapping_layers=4, mapping_features=20,
                  channel_base=1024, channel_max=32, conv_clamp=None, num_fp16_res=0, seed=5),
}


def _channels(spec: dict[str, Any], res: int) -> int:
    return min(spec["channel_base"] // res, spec["channel_max"])


def _filter() -> np.ndarray:
    f = np.outer([1.0, 3.0, 3.0, 1.0], [1.0, 3.0, 3.0, 1.0]).astype(np.float32)
    return f / f.sum()


def sg2_params(spec: dict[str, Any], seed_offset: int = 0) -> "OrderedDict[str, np.ndarray]":
    """The state dict of NVIDIA's ``Generator`` for ``spec`` (names and shapes of
    ``training/networks.py``, written out here independently of i2s), with random values.

    Weights are N(0, 1) as NVIDIA initialises them (mapping weights N(0, 1/lr^2)), biases, noise
    strengths and the affines' offsets from 1 small, ToRGB weights scaled so that images stay near
    [-1, 1]."""
    rng = np.random.default_rng(spec["seed"] * 1000 + seed_offset)

    def normal(*shape: int, scale: float = 1.0, loc: float = 0.0) -> np.ndarray:
        return np.asarray(loc + scale * rng.standard_normal(shape), dtype=np.float32)

    sd: OrderedDict[str, np.ndarray] = OrderedDict()
    w_dim = spec["w_dim"]
    dims = [spec["z_dim"]] + [spec["mapping_features"]] * (spec["mapping_layers"] - 1) + [w_dim]
    for i in range(spec["mapping_layers"]):
        sd[f"mapping.fc{i}.weight"] = normal(dims[i + 1], dims[i], scale=100.0)
        sd[f"mapping.fc{i}.bias"] = normal(dims[i + 1], scale=10.0)
    sd["mapping.w_avg"] = normal(w_dim, scale=0.5)

    def layer(prefix: str, cin: int, cout: int, res: int) -> None:
        sd[f"{prefix}.resample_filter"] = _filter()
        sd[f"{prefix}.affine.weight"] = normal(cin, w_dim)
        sd[f"{prefix}.affine.bias"] = normal(cin, scale=0.2, loc=1.0)
        sd[f"{prefix}.weight"] = normal(cout, cin, 3, 3)
        sd[f"{prefix}.noise_const"] = normal(res, res)
        sd[f"{prefix}.noise_strength"] = normal(scale=0.2)
        sd[f"{prefix}.bias"] = normal(cout, scale=0.1)

    log2 = int(math.log2(spec["resolution"]))
    cin = 0
    for res in (2**k for k in range(2, log2 + 1)):
        c = _channels(spec, res)
        p = f"synthesis.b{res}"
        sd[f"{p}.resample_filter"] = _filter()
        if cin == 0:
            sd[f"{p}.const"] = normal(c, 4, 4)
        else:
            layer(f"{p}.conv0", cin, c, res)
        layer(f"{p}.conv1", c, c, res)
        sd[f"{p}.torgb.affine.weight"] = normal(c, w_dim)
        sd[f"{p}.torgb.affine.bias"] = normal(c, scale=0.2, loc=1.0)
        sd[f"{p}.torgb.weight"] = normal(3, c, 1, 1, scale=0.25)
        sd[f"{p}.torgb.bias"] = normal(3, scale=0.05)
        cin = c
    return sd


def reference_inputs(spec: dict[str, Any], n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The fixed inputs the reference images were rendered from: z [n, z_dim] and a W+ code
    [n, num_ws, w_dim] (w̄ plus noise, so every row differs)."""
    rng = np.random.default_rng(10_000 + spec["seed"])
    z = rng.standard_normal((n, spec["z_dim"])).astype(np.float32)
    num_ws = 2 * int(math.log2(spec["resolution"])) - 2
    ws = rng.standard_normal((n, num_ws, spec["w_dim"])).astype(np.float32)
    return z, ws


# --------------------------------------------------------------------------- the ADA PyTorch layout


class EasyDict(dict):
    """Pickles as ``dnnlib.util.EasyDict`` (a dict subclass: NEWOBJ + SETITEMS)."""


class Persistent:
    """A ``torch_utils.persistence`` object: pickles as ``_reconstruct_persistent_obj(meta)``."""

    def __init__(self, class_name: str, state: dict[str, Any], module_src: str, version: int = 6,
                 meta_extra: dict[str, Any] | None = None) -> None:
        self.class_name, self.state, self.module_src, self.version = class_name, state, module_src, version
        self.meta_extra = meta_extra or {}

    def __reduce__(self) -> tuple[Any, ...]:
        meta = dict(type="class", version=self.version, module_src=self.module_src, class_name=self.class_name,
                    state=self.state, **self.meta_extra)
        return (RECONSTRUCT, (meta,))


RECONSTRUCT = GlobalName("torch_utils.persistence", "_reconstruct_persistent_obj")


class _AdaPickler(_LegacyNumpyPickler):
    """Writes :class:`GlobalName` references, :class:`EasyDict` as ``dnnlib.util.EasyDict`` and numpy's
    reconstruction functions under their numpy-1 names, with protocol 2-4."""

    dispatch = _LegacyNumpyPickler.dispatch.copy()

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is EasyDict:
            target: tuple[str, str] | None = ("dnnlib.util", "EasyDict")
        elif isinstance(obj, GlobalName):
            target = (obj.module, obj.name)
        else:
            target = self._LEGACY.get(id(obj))
        if target is None:
            return super().save_global(obj, name)
        if self.proto >= 4:
            self.save(target[0])
            self.save(target[1])
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{target[0]}\n{target[1]}\n".encode())
        self.memoize(obj)

    dispatch[GlobalName] = save_global


def _param(a: np.ndarray) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.from_numpy(np.array(a, dtype=np.float32)), requires_grad=False)


def _buf(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32))


def module_state(params: dict[str, Any], buffers: dict[str, Any], modules: dict[str, Any],
                 attrs: dict[str, Any], init_args: tuple = (), init_kwargs: dict[str, Any] | None = None,
                 ) -> dict[str, Any]:
    """An ``nn.Module.__dict__`` as torch 1.8 pickled it, plus the persistence decorator's fields."""
    return {
        "training": False,
        "_parameters": OrderedDict((k, None if v is None else _param(v)) for k, v in params.items()),
        "_buffers": OrderedDict((k, _buf(v)) for k, v in buffers.items()),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": OrderedDict(),
        "_is_full_backward_hook": None,
        "_forward_hooks": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_modules": OrderedDict(modules),
        **attrs,
        "_init_args": init_args,
        "_init_kwargs": dict(init_kwargs or {}),
    }


def ada_generator(spec: dict[str, Any], sd: dict[str, np.ndarray], src: str) -> Persistent:
    """NVIDIA's ``Generator`` for ``spec`` with the state dict ``sd``, as persistent objects."""
    w_dim, log2 = spec["w_dim"], int(math.log2(spec["resolution"]))
    clamp = spec["conv_clamp"]
    num_ws = 2 * log2 - 2

    def fc(prefix: str, in_f: int, activation: str, lr: float, bias_init: float) -> Persistent:
        attrs = {"activation": activation, "weight_gain": np.float64(lr / np.sqrt(in_f)), "bias_gain": lr}
        kw = {"activation": activation, **({"lr_multiplier": lr} if lr != 1 else {}),
              **({"bias_init": bias_init} if bias_init else {})}
        return Persistent("FullyConnectedLayer", module_state(
            {"weight": sd[f"{prefix}.weight"], "bias": sd[f"{prefix}.bias"]}, {}, {}, attrs,
            (in_f, sd[f"{prefix}.weight"].shape[0]), kw), src)

    dims = [spec["z_dim"]] + [spec["mapping_features"]] * (spec["mapping_layers"] - 1) + [w_dim]
    mapping_kwargs = EasyDict(num_layers=spec["mapping_layers"])
    if spec["mapping_features"] != w_dim:
        mapping_kwargs["layer_features"] = spec["mapping_features"]
    mapping = Persistent("MappingNetwork", module_state(
        {}, {"w_avg": sd["mapping.w_avg"]},
        {f"fc{i}": fc(f"mapping.fc{i}", dims[i], "lrelu", 0.01, 0) for i in range(spec["mapping_layers"])},
        {"z_dim": spec["z_dim"], "c_dim": 0, "w_dim": w_dim, "num_ws": num_ws, "num_layers": spec["mapping_layers"],
         "w_avg_beta": 0.995},
        (), {"z_dim": spec["z_dim"], "c_dim": 0, "w_dim": w_dim, "num_ws": num_ws, **mapping_kwargs}), src)

    def layer(prefix: str, cin: int, cout: int, res: int, up: int, use_fp16: bool) -> Persistent:
        attrs = {"resolution": res, "up": up, "use_noise": True, "activation": "lrelu", "conv_clamp": clamp,
                 "padding": 1, "act_gain": np.float64(np.sqrt(2))}
        kw = {"w_dim": w_dim, "resolution": res, **({"up": up} if up != 1 else {}), "resample_filter": [1, 3, 3, 1],
              "conv_clamp": clamp, "channels_last": False}
        return Persistent("SynthesisLayer", module_state(
            {"weight": sd[f"{prefix}.weight"], "noise_strength": sd[f"{prefix}.noise_strength"],
             "bias": sd[f"{prefix}.bias"]},
            {"resample_filter": sd[f"{prefix}.resample_filter"], "noise_const": sd[f"{prefix}.noise_const"]},
            {"affine": fc(f"{prefix}.affine", w_dim, "linear", 1, 1)}, attrs, (cin, cout), kw), src)

    fp16_res = max(2 ** (log2 + 1 - spec["num_fp16_res"]), 8)
    blocks = {}
    cin = 0
    for res in (2**k for k in range(2, log2 + 1)):
        c = _channels(spec, res)
        p = f"synthesis.b{res}"
        use_fp16 = res >= fp16_res
        mods: dict[str, Persistent] = {}
        params: dict[str, Any] = {}
        if cin == 0:
            params["const"] = sd[f"{p}.const"]
        else:
            mods["conv0"] = layer(f"{p}.conv0", cin, c, res, 2, use_fp16)
        mods["conv1"] = layer(f"{p}.conv1", c, c, res, 1, use_fp16)
        mods["torgb"] = Persistent("ToRGBLayer", module_state(
            {"weight": sd[f"{p}.torgb.weight"], "bias": sd[f"{p}.torgb.bias"]}, {},
            {"affine": fc(f"{p}.torgb.affine", w_dim, "linear", 1, 1)},
            {"conv_clamp": clamp, "weight_gain": np.float64(1 / np.sqrt(c))}, (c, 3),
            {"w_dim": w_dim, "conv_clamp": clamp, "channels_last": False}), src)
        attrs = {"in_channels": cin, "w_dim": w_dim, "resolution": res, "img_channels": 3,
                 "is_last": res == spec["resolution"], "architecture": "skip", "use_fp16": use_fp16,
                 "channels_last": False, "num_conv": 1 if cin == 0 else 2, "num_torgb": 1}
        block_kw = {"w_dim": w_dim, "resolution": res, "img_channels": 3, "is_last": res == spec["resolution"],
                    "use_fp16": use_fp16, "conv_clamp": clamp}
        blocks[f"b{res}"] = Persistent("SynthesisBlock", module_state(
            params, {"resample_filter": sd[f"{p}.resample_filter"]}, mods, attrs, (cin, c), block_kw), src)
        cin = c
    synthesis_kwargs = EasyDict(channel_base=spec["channel_base"], channel_max=spec["channel_max"],
                                num_fp16_res=spec["num_fp16_res"], conv_clamp=clamp)
    synthesis = Persistent("SynthesisNetwork", module_state(
        {}, {}, blocks,
        {"w_dim": w_dim, "img_resolution": spec["resolution"], "img_resolution_log2": log2, "img_channels": 3,
         "block_resolutions": [2**k for k in range(2, log2 + 1)], "num_ws": num_ws},
        (), {"w_dim": w_dim, "img_resolution": spec["resolution"], "img_channels": 3, **synthesis_kwargs}), src)
    return Persistent("Generator", module_state(
        {}, {}, {"synthesis": synthesis, "mapping": mapping},
        {"z_dim": spec["z_dim"], "c_dim": 0, "w_dim": w_dim, "img_resolution": spec["resolution"],
         "img_channels": 3, "num_ws": num_ws},
        (), {"z_dim": spec["z_dim"], "w_dim": w_dim, "mapping_kwargs": mapping_kwargs,
             "synthesis_kwargs": synthesis_kwargs, "c_dim": 0, "img_resolution": spec["resolution"],
             "img_channels": 3}), src)


def _small_discriminator(src: str, rng: np.random.Generator) -> Persistent:
    """A stand-in ``Discriminator`` (classes of networks.py, a few tensors; i2s only skips it). Its
    skip ``Conv2dLayer`` has ``bias=None`` in ``_parameters``, as NVIDIA's does."""

    def conv(cin: int, cout: int, k: int, bias: bool) -> Persistent:
        params = {"weight": rng.standard_normal((cout, cin, k, k)).astype(np.float32),
                  "bias": np.zeros(cout, np.float32) if bias else None}
        return Persistent("Conv2dLayer", module_state(
            params, {"resample_filter": _filter()}, {},
            {"activation": "lrelu", "up": 1, "down": 1, "conv_clamp": None, "padding": k // 2,
             "weight_gain": np.float64(1 / np.sqrt(cin * k * k)), "act_gain": np.float64(np.sqrt(2))},
            (cin, cout), {"kernel_size": k}), src)

    block = Persistent("DiscriminatorBlock", module_state(
        {}, {"resample_filter": _filter()}, {"fromrgb": conv(3, 4, 1, True), "conv0": conv(4, 4, 3, True),
                                             "skip": conv(4, 4, 1, False)},
        {"in_channels": 0, "resolution": 8, "img_channels": 3, "first_layer_idx": 0, "architecture": "resnet",
         "use_fp16": False, "channels_last": False, "num_layers": 3}, (0, 4, 4), {}), src)
    mbstd = Persistent("MinibatchStdLayer", module_state({}, {}, {}, {"group_size": 4, "num_channels": 1},
                                                         (), {"group_size": 4}), src)
    epilogue = Persistent("DiscriminatorEpilogue", module_state(
        {}, {}, {"mbstd": mbstd}, {"in_channels": 4, "cmap_dim": 0, "resolution": 4, "img_channels": 3,
                                   "architecture": "resnet"}, (4, 0), {"resolution": 4}), src)
    return Persistent("Discriminator", module_state(
        {}, {}, {"b8": block, "b4": epilogue}, {"c_dim": 0, "img_resolution": 8, "img_resolution_log2": 3,
                                                "img_channels": 3, "block_resolutions": [8, 4]},
        (), {"c_dim": 0, "img_resolution": 8, "img_channels": 3}), src)


def make_ada_pickle(path: str | os.PathLike[str], spec: dict[str, Any] | str, *, module_src: str = PLACEHOLDER_SRC,
                    augment_src: str = PLACEHOLDER_AUGMENT_SRC, protocol: int = 3,
                    hook: Callable[[dict[str, Any]], None] | None = None) -> "OrderedDict[str, np.ndarray]":
    """Write an ADA-layout network pickle for ``spec`` (a :data:`SPECS` key or dict); return G_ema's
    state dict. ``G`` (the instantaneous generator) gets other weights than ``G_ema``; ``D`` and
    ``augment_pipe`` are small stand-ins. ``hook(data)`` may change the top-level dict (of
    :class:`Persistent` objects) just before it is written."""
    spec = SPECS[spec] if isinstance(spec, str) else spec
    sd = sg2_params(spec)
    rng = np.random.default_rng(99)
    augment = Persistent("AugmentPipe", module_state(
        {}, {"p": np.zeros((), np.float32), "Hz_geom": rng.standard_normal(12).astype(np.float32)}, {},
        {"xflip": 1.0, "rotate90": 1.0, "xint": 1.0, "xint_max": 0.125, "brightness": 1.0, "brightness_std": 0.2},
        (), {"xflip": 1, "rotate90": 1, "xint": 1, "brightness": 1}), augment_src)
    data: dict[str, Any] = {
        "training_set_kwargs": EasyDict(class_name="training.dataset.ImageFolderDataset", path="~/datasets/x.zip",
                                        use_labels=False, max_size=1000, xflip=True, resolution=spec["resolution"]),
        "G": ada_generator(spec, sg2_params(spec, seed_offset=1), module_src),
        "D": _small_discriminator(module_src, rng),
        "G_ema": ada_generator(spec, sd, module_src),
        "augment_pipe": augment,
    }
    if hook is not None:
        hook(data)
    with open(path, "wb") as f:
        _AdaPickler(f, protocol=protocol).dump(data)
    return sd


# --------------------------------------------------------------------------- the TF (version 4) layout


def tf_variables(spec: dict[str, Any], sd: dict[str, np.ndarray]) -> dict[str, list[tuple[str, np.ndarray]]]:
    """The own variables of ``Gs``, ``G_mapping`` and ``G_synthesis_stylegan2`` holding ``sd``:
    the inverse of ``legacy.convert_tf_generator`` (transposes, the flipped ``Conv0_up`` kernel,
    ``mod_bias = affine.bias - 1``, ``noise{i}`` and ``const`` with their leading 1-axes)."""
    log2 = int(math.log2(spec["resolution"]))
    gs = [("lod", np.float32(0.0)), ("dlatent_avg", sd["mapping.w_avg"])]
    mapping = []
    for i in range(spec["mapping_layers"]):
        mapping += [(f"Dense{i}/weight", np.ascontiguousarray(sd[f"mapping.fc{i}.weight"].T)),
                    (f"Dense{i}/bias", sd[f"mapping.fc{i}.bias"])]
    synth: list[tuple[str, np.ndarray]] = []
    noise: dict[int, np.ndarray] = {}

    def conv(prefix: str, scope: str, flip: bool) -> None:
        w = sd[f"{prefix}.weight"].transpose(2, 3, 1, 0)  # [O, I, kh, kw] -> [kh, kw, I, O]
        if flip:
            w = w[::-1, ::-1]
        synth.extend([(f"{scope}/weight", np.ascontiguousarray(w)),
                      (f"{scope}/mod_weight", np.ascontiguousarray(sd[f"{prefix}.affine.weight"].T)),
                      (f"{scope}/mod_bias", sd[f"{prefix}.affine.bias"] - np.float32(1))])
        if f"{prefix}.noise_strength" in sd:
            synth.append((f"{scope}/noise_strength", sd[f"{prefix}.noise_strength"]))
        synth.append((f"{scope}/bias", sd[f"{prefix}.bias"]))

    for res in (2**k for k in range(2, log2 + 1)):
        p, r = f"synthesis.b{res}", int(math.log2(res))
        if res == 4:
            synth.append(("4x4/Const/const", sd[f"{p}.const"][None]))
            conv(f"{p}.conv1", "4x4/Conv", False)
            noise[0] = sd[f"{p}.conv1.noise_const"]
        else:
            conv(f"{p}.conv0", f"{res}x{res}/Conv0_up", True)
            conv(f"{p}.conv1", f"{res}x{res}/Conv1", False)
            noise[2 * r - 5], noise[2 * r - 4] = sd[f"{p}.conv0.noise_const"], sd[f"{p}.conv1.noise_const"]
        conv(f"{p}.torgb", f"{res}x{res}/ToRGB", False)
    synth = [(f"noise{i}", noise[i][None, None]) for i in sorted(noise)] + synth
    return {"Gs": gs, "mapping": mapping, "synthesis": synth}


def make_tf4_pickle(path: str | os.PathLike[str], spec: dict[str, Any] | str, *,
                    static_kwargs: dict[str, Any] | None = None,
                    edit: Callable[[dict[str, list[tuple[str, Any]]]], None] | None = None,
                    version: int = 4) -> "OrderedDict[str, np.ndarray]":
    """Write a StyleGAN2 TF pickle ``(G, D, Gs)`` for ``spec``; return the state dict it holds (ADA
    names). ``static_kwargs`` are merged into Gs's; ``edit(variables)`` may change the variable
    lists (keys ``Gs``, ``mapping``, ``synthesis``) before writing."""
    spec = SPECS[spec] if isinstance(spec, str) else spec
    sd = sg2_params(spec)
    variables = tf_variables(spec, sd)
    if edit is not None:
        edit(variables)
    kw: dict[str, Any] = {"num_channels": 3, "resolution": spec["resolution"], "label_size": 0}
    for key, val, default in (("fmap_base", spec["channel_base"] // 2, 16384), ("fmap_max", spec["channel_max"], 512),
                              ("latent_size", spec["z_dim"], 512), ("dlatent_size", spec["w_dim"], 512),
                              ("mapping_layers", spec["mapping_layers"], 8),
                              ("mapping_fmaps", spec["mapping_features"], 512)):
        if val != default:
            kw[key] = val
    gs_kw = {**kw, **(static_kwargs or {})}
    log2 = int(math.log2(spec["resolution"]))
    synthesis = Network("G_synthesis", "G_synthesis_stylegan2", kw, variables=variables["synthesis"], version=version)
    mapping = Network("G_mapping", "G_mapping", {**kw, "dlatent_broadcast": 2 * log2 - 2},
                      variables=variables["mapping"], version=version)
    Gs = Network("Gs", "G_main", gs_kw, {"synthesis": synthesis, "mapping": mapping}, variables=variables["Gs"],
                 version=version)
    G = Network("G", "G_main", kw, variables=[("lod", np.float32(0.0))], version=version)
    D = Network("D", "D_stylegan2", kw, variables=[("Output/bias", np.zeros(1, np.float32))], version=version)
    with fake_dnnlib(), open(path, "wb") as f:
        _LegacyNumpyPickler(f, protocol=4).dump((G, D, Gs))
    return sd
