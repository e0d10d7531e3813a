"""Read NVIDIA's StyleGAN2 TensorFlow pickles (``Network`` state version 4) without TensorFlow.

``stylegan2-ffhq-config-f.pkl`` (NVlabs/stylegan2) and the TensorFlow StyleGAN2-ADA pickles are
``(G, D, Gs)`` tuples of ``dnnlib.tflib.network.Network`` objects like the StyleGAN v1 file, with
``version`` 4. They are unpickled by the same allow-list machinery
(:func:`i2s.weights.tf_pickle.load_tf_pickle` with ``versions=(4,)``: the Network stand-in and
inert numpy records, every array rebuilt from plain bytes), and ``Gs`` is converted as
stylegan2-ada-pytorch's ``legacy.convert_tf_generator`` does (reference-facts §3):

* keyword arguments: ``latent_size -> z_dim``, ``dlatent_size -> w_dim``, ``fmap_base * 2 ->
  channel_base``, ``mapping_fmaps -> mapping_features``, ... with legacy.py's defaults; any other
  keyword argument is refused by name, as legacy.py refuses it ("Unknown TensorFlow kwarg");
* variables: ``mapping/Dense{i}/weight`` transposed; ``synthesis/4x4/Const/const[0]``;
  ``{r}x{r}/Conv0_up/weight`` flipped in both spatial axes and permuted ``(3, 2, 0, 1)`` (TF's
  transposed convolution runs the kernel the other way round); ``Conv1``, ``4x4/Conv`` and
  ``ToRGB`` weights permuted only; ``mod_weight`` transposed into ``affine.weight`` and
  ``mod_bias + 1`` into ``affine.bias``; ``noise{i}[0, 0]`` into the stored noise of layer ``i``.

Every variable must exist with its shape and no other may (``lod`` must be 0), so a network with
parts i2s does not implement (labels, the 'orig'/'resnet' architectures) is refused instead of
rendered without them.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..stylegan2 import StyleGAN2, StyleGAN2Config, setup_filter
from ..stylegan2 import config_problems as stylegan2_config_problems
from .converted import build_from_state_dict
from .limits import WeightsFormatError, quote
from .tf_pickle import (PickleKind, TFNetworkStub, _check_file, _naming, _same, _sha256, _some, collect_variables,
                        load_tf_pickle)

__all__ = ["TF_STYLEGAN2_PICKLE", "load_tf_stylegan2", "config_from_tf_gs", "check_tf_gs", "convert_tf_gs",
           "convert_tf_stylegan2", "validate_tf_stylegan2"]

TF_STYLEGAN2_PICKLE = PickleKind(
    what="StyleGAN2 TensorFlow network pickle",
    refetch="download it again (`i2s weights fetch stylegan2-ffhq-config-f --force` for the registry's file)",
    import_hint="download it again and run `i2s weights import stylegan2-ffhq-config-f PATH`",
    size_hint="stylegan2-ffhq-config-f.pkl holds G, D and Gs, about 360 MB (an estimate)",
    fetch_hint="fetch it with `i2s weights fetch stylegan2-ffhq-config-f`",
)

#: legacy.convert_tf_generator's keyword arguments: TF name -> (default, what i2s requires or None).
_KWARGS: dict[str, Any] = {
    "latent_size": 512, "label_size": 0, "dlatent_size": 512, "resolution": 1024, "num_channels": 3,
    "mapping_layers": 8, "label_fmaps": None, "mapping_fmaps": None, "mapping_nonlinearity": "lrelu",
    "mapping_lrmul": 0.01, "w_avg_beta": 0.995, "fmap_base": 16384, "fmap_max": 512, "num_fp16_res": 0,
    "conv_clamp": None, "architecture": "skip", "resample_kernel": [1, 3, 3, 1], "use_noise": True,
    "nonlinearity": "lrelu",
}
#: Values i2s implements only one of (legacy.py converts more, for networks.py's other options).
_REQUIRED = {"label_size": 0, "label_fmaps": None, "mapping_nonlinearity": "lrelu", "architecture": "skip",
             "nonlinearity": "lrelu"}
#: Tolerated and ignored, as legacy.py does.
_IGNORED = {"truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure"}


def load_tf_stylegan2(path: str | os.PathLike[str]) -> tuple[TFNetworkStub, TFNetworkStub, TFNetworkStub]:
    """``(G, D, Gs)`` stubs of a version-4 pickle (the StyleGAN v1 reader's checks, version 4 only)."""
    return load_tf_pickle(path, versions=(4,), kind=TF_STYLEGAN2_PICKLE)


def config_from_tf_gs(Gs: TFNetworkStub) -> tuple[StyleGAN2Config, dict[str, Any]]:
    """The :class:`StyleGAN2Config` of a ``G_main`` network from its ``static_kwargs`` (legacy.py's
    table), checked against the variables' shapes; and ``{"num_fp16_res": ...}``."""
    problems: list[str] = []
    if Gs.build_func_name != "G_main":
        problems.append(f"build_func_name is {quote(Gs.build_func_name)}, expected 'G_main'")
    comps = Gs.components
    for key, funcs in (("synthesis", ("G_synthesis_stylegan2",)), ("mapping", ("G_mapping",))):
        if key not in comps:
            problems.append(f"component {key!r} is missing (components: {quote(sorted(comps))})")
        elif comps[key].build_func_name not in funcs:
            problems.append(f"component {key!r} is built by {quote(comps[key].build_func_name)}, expected {funcs[0]!r}")
    if problems:
        raise WeightsFormatError("not a StyleGAN2 generator (Gs): " + "; ".join(problems))
    kw = Gs.static_kwargs
    unknown = sorted(set(kw) - set(_KWARGS) - _IGNORED)
    if unknown:
        problems.append(f"unknown TensorFlow kwarg(s) {quote(unknown, 200)} (legacy.py refuses them too)")

    def get(key: str) -> Any:
        v = kw.get(key, _KWARGS[key])
        return _KWARGS[key] if v is None and key == "mapping_fmaps" else v

    for key, required in _REQUIRED.items():
        if not _same(get(key), required):
            problems.append(f"{key}={quote(get(key))} is not supported (only {required!r})")
    v = collect_variables(Gs)
    blocks = sorted({int(m.group(1)) for k in v if (m := re.match(r"synthesis/(\d+)x\1/", k))})
    resolution = get("resolution")
    if blocks and resolution != blocks[-1]:
        problems.append(f"resolution={quote(resolution)} but the variables reach {blocks[-1]}x{blocks[-1]}")
    beta = get("w_avg_beta")
    w_dim = get("dlatent_size")
    taps = get("resample_kernel")
    fmap_base = get("fmap_base")
    values = dict(
        resolution=resolution, img_channels=get("num_channels"), z_dim=get("latent_size"), w_dim=w_dim,
        mapping_layers=get("mapping_layers"), mapping_features=get("mapping_fmaps") or w_dim,
        mapping_lrmul=get("mapping_lrmul"), channel_base=fmap_base * 2 if type(fmap_base) is int else fmap_base,
        channel_max=get("fmap_max"), resample_filter=tuple(taps) if isinstance(taps, (list, tuple)) else taps,
        use_noise=get("use_noise"), conv_clamp=get("conv_clamp"), w_avg_beta=1.0 if beta is None else beta)
    if problems:
        raise WeightsFormatError("unsupported StyleGAN2 network: " + "; ".join(problems))
    try:
        cfg = StyleGAN2Config(**values)
    except (TypeError, ValueError) as e:
        raise WeightsFormatError(f"unsupported StyleGAN2 network: {e}") from None
    bounds = stylegan2_config_problems(cfg)
    if bounds:
        raise WeightsFormatError("unsupported StyleGAN2 network: " + "; ".join(bounds))
    return cfg, {"num_fp16_res": get("num_fp16_res")}


# (our state-dict key, TF variable name, transform)
_Plan = list[tuple[str, str, str]]


def _plan(cfg: StyleGAN2Config) -> _Plan:
    plan: _Plan = [("mapping.w_avg", "dlatent_avg", "id")]
    for i in range(cfg.mapping_layers):
        plan += [(f"mapping.fc{i}.weight", f"mapping/Dense{i}/weight", "T"),
                 (f"mapping.fc{i}.bias", f"mapping/Dense{i}/bias", "id")]

    def layer(key: str, scope: str, conv: str, noise: int | None) -> None:
        plan.extend([(f"{key}.weight", f"{scope}/weight", conv), (f"{key}.bias", f"{scope}/bias", "id"),
                     (f"{key}.affine.weight", f"{scope}/mod_weight", "T"),
                     (f"{key}.affine.bias", f"{scope}/mod_bias", "plus1")])
        if noise is not None and cfg.use_noise:
            plan.extend([(f"{key}.noise_const", f"synthesis/noise{noise}", "noise"),
                         (f"{key}.noise_strength", f"{scope}/noise_strength", "id")])

    for res in cfg.block_resolutions:
        b, r = f"synthesis.b{res}", int(math.log2(res))
        if res == 4:
            plan.append((f"{b}.const", "synthesis/4x4/Const/const", "const"))
            layer(f"{b}.conv1", "synthesis/4x4/Conv", "conv", 0)
        else:
            layer(f"{b}.conv0", f"synthesis/{res}x{res}/Conv0_up", "conv_flip", 2 * r - 5)
            layer(f"{b}.conv1", f"synthesis/{res}x{res}/Conv1", "conv", 2 * r - 4)
        layer(f"{b}.torgb", f"synthesis/{res}x{res}/ToRGB", "conv", None)
    return plan


def _tf_shape(ours: tuple[int, ...], transform: str) -> tuple[int, ...]:
    if transform == "T":
        return (ours[1], ours[0])
    if transform in ("conv", "conv_flip"):
        o, i, kh, kw = ours
        return (kh, kw, i, o)
    if transform == "const":
        return (1, *ours)
    if transform == "noise":
        return (1, 1, *ours)
    return ours


def _to_torch(arr: np.ndarray, transform: str) -> torch.Tensor:
    a = np.asarray(arr, dtype=np.float32)
    if transform == "T":
        a = a.T
    elif transform == "conv":
        a = a.transpose(3, 2, 0, 1)
    elif transform == "conv_flip":
        a = a[::-1, ::-1].transpose(3, 2, 0, 1)
    elif transform in ("const", "noise"):
        a = a[0] if transform == "const" else a[0, 0]
    elif transform == "plus1":
        a = a + np.float32(1)
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True))


def convert_tf_gs(Gs: TFNetworkStub, cfg: StyleGAN2Config) -> dict[str, torch.Tensor]:
    """The state dict of ``StyleGAN2(cfg)`` from the variables of ``Gs`` (module docstring).

    Raises:
        WeightsFormatError: listing all missing, unexpected and wrongly shaped variables at once.
    """
    tf, plan, ours, filters = check_tf_gs(Gs, cfg)
    sd = {key: _to_torch(tf[name], transform) for key, name, transform in plan}
    f = setup_filter(cfg.resample_filter)
    sd.update({k: f.clone() for k in filters})
    return {k: sd[k] for k in ours}


def check_tf_gs(Gs: TFNetworkStub, cfg: StyleGAN2Config) -> tuple[dict[str, np.ndarray], _Plan, dict, list[str]]:
    """Check the variables of ``Gs`` against ``StyleGAN2(cfg)`` without building anything:
    ``(variables, plan, our shapes, our filter buffers)``."""
    tf = collect_variables(Gs)
    plan = _plan(cfg)
    with torch.device("meta"):
        ours = {k: tuple(t.shape) for k, t in StyleGAN2(cfg).state_dict().items()}
    filters = [k for k in ours if k.endswith("resample_filter")]
    planned = {k for k, _, _ in plan}
    if planned | set(filters) != set(ours):  # a bug here or in i2s.stylegan2, not in the file
        raise RuntimeError(f"i2s.stylegan2 and the TF converter disagree: {sorted(set(ours) ^ (planned | set(filters)))}")
    missing, wrong = [], []
    for key, name, transform in plan:
        if name not in tf:
            missing.append(name)
        elif tuple(tf[name].shape) != _tf_shape(ours[key], transform) or tf[name].dtype.kind != "f":
            wrong.append(f"{name}: {quote(tuple(tf[name].shape))} {tf[name].dtype}, expected "
                         f"{_tf_shape(ours[key], transform)} float")
    lods = [n for n in ("lod", "synthesis/lod") if n in tf]
    nonzero = [f"{n} = {float(np.asarray(tf[n]).reshape(-1)[0])}" for n in lods
               if tf[n].size != 1 or float(np.asarray(tf[n]).reshape(-1)[0]) != 0.0]
    extra = sorted(set(tf) - {n for _, n, _ in plan} - set(lods))
    errors = [f"{len(x)} {what}: {_some([quote(s) if what == 'unexpected' else s for s in x], sep)}"
              for x, what, sep in ((missing, "missing", ", "), (extra, "unexpected", ", "),
                                   (wrong, "with a wrong shape or dtype", "; ")) if x]
    if nonzero:
        errors.append("lod is not 0: " + ", ".join(nonzero))
    if errors:
        raise WeightsFormatError(f"the Gs variables do not match a {cfg.resolution}px StyleGAN2 generator "
                                 f"(channel_base={cfg.channel_base}, channel_max={cfg.channel_max}): "
                                 + " | ".join(errors))
    return tf, plan, ours, filters


def convert_tf_stylegan2(path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None, *,
                         name: str | None = None, tier: str = "custom", domain: str | None = None) -> StyleGAN2:
    """Convert the ``Gs`` of a StyleGAN2 TensorFlow pickle into an :class:`i2s.stylegan2.StyleGAN2`
    (``G.info`` as :func:`i2s.weights.ada_pickle.convert_ada_pickle` writes it)."""
    path = Path(path)
    _check_file(path, TF_STYLEGAN2_PICKLE)
    sha256 = _sha256(path)
    from .records import check_cached_hash  # noqa: PLC0415

    check_cached_hash(path, sha256)
    _, _, Gs = load_tf_stylegan2(path)
    with _naming(path):
        cfg, extra = config_from_tf_gs(Gs)
        sd = convert_tf_gs(Gs, cfg)
    info: dict[str, Any] = {
        "name": name or f"stylegan2-{path.stem}", "tier": tier, "domain": domain or "unknown",
        "source": str(path), "source_sha256": sha256, "source_format": "nvlabs-stylegan2-tf-pickle",
        "tf_network_version": int(Gs.version), "num_fp16_res": extra["num_fp16_res"],
        "tf_static_kwargs": {k: quote(v, 200) for k, v in Gs.static_kwargs.items()},
    }
    del Gs
    return build_from_state_dict(cfg, sd, info, save_to=out_path)


def validate_tf_stylegan2(path: str | os.PathLike[str]) -> StyleGAN2Config:
    """Everything :func:`convert_tf_stylegan2` checks (for ``i2s weights fetch``/``import``)."""
    path = Path(path)
    _, _, Gs = load_tf_stylegan2(path)
    with _naming(path):
        cfg, _ = config_from_tf_gs(Gs)
        check_tf_gs(Gs, cfg)
    return cfg
