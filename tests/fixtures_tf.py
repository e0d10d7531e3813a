"""Synthetic StyleGAN v1 network pickles in NVIDIA's official format, built without TensorFlow.

The official ``karras2019stylegan-ffhq-1024x1024.pkl`` is ``pickle.dump((G, D, Gs),
protocol=4)`` of ``dnnlib.tflib.network.Network`` objects whose ``__getstate__`` returns
``{"version", "name", "static_kwargs", "components", "build_module_src",
"build_func_name", "variables"}`` with ``variables`` a list of ``(local_name, numpy
array)`` in creation order (NVlabs/stylegan ``dnnlib/tflib/network.py``). The variable
names and shapes below follow ``training/networks_stylegan.py`` (``G_style``,
``G_mapping``, ``G_synthesis``), as listed in docs reference-facts §2.

:func:`make_gs_pickle` writes such a file. While it pickles, a fake ``dnnlib.tflib.network``
module is registered in ``sys.modules`` (so the pickle names that class); afterwards it
is removed again, so the loader under test cannot rely on it. By default numpy's
reconstruction functions are written under their numpy-1 names
(``numpy.core.multiarray._reconstruct`` / ``scalar``), as in the 2019 file.
"""

from __future__ import annotations

import builtins
import contextlib
import math
import os
import pickle
import sys
import types
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal

import numpy as np

__all__ = ["Network", "fake_dnnlib", "gs_variable_shapes", "make_gs_pickle", "flat_shapes",
           "OFFICIAL_LAYER_PARAMS", "OFFICIAL_TOTAL_TRAINABLE", "GlobalName", "Call", "crafted_dtype",
           "crafted_array", "forged_object_array", "TINY"]

#: ``Gs.print_layers()`` total of the FFHQ-1024 generator (NVlabs/stylegan README).
OFFICIAL_TOTAL_TRAINABLE = 26_219_627
#: Per-layer parameter counts from the official dump (reference-facts §2).
OFFICIAL_LAYER_PARAMS = {
    "4x4/Const": 534_528, "4x4/Conv": 2_885_632, "64x64/Conv0_up": 1_442_816, "64x64/Conv1": 852_992,
    "128x128/Conv0_up": 426_496, "128x128/Conv1": 279_040, "256x256/Conv0_up": 139_520,
    "256x256/Conv1": 102_656, "512x512/Conv0_up": 51_328, "512x512/Conv1": 42_112,
    "1024x1024/Conv0_up": 21_056, "1024x1024/Conv1": 18_752, "ToRGB_lod0": 51,
}

_FAKE_MODULES = ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")


class Network:
    """Test double of ``dnnlib.tflib.network.Network`` that only knows how to be pickled."""

    def __init__(self, name: str, build_func_name: str, static_kwargs: dict[str, Any],
                 components: dict[str, "Network"] | None = None,
                 variables: list[tuple[str, Any]] | None = None, version: int = 3) -> None:
        self.name = name
        self.build_func_name = build_func_name
        self.static_kwargs = dict(static_kwargs)
        self.components = dict(components or {})
        self.variables = list(variables or [])
        self.version = version

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "name": self.name,
            "static_kwargs": dict(self.static_kwargs),
            "components": dict(self.components),
            "build_module_src": "# training/networks_stylegan.py source would be here\n",
            "build_func_name": self.build_func_name,
            "variables": list(self.variables),
        }


Network.__module__ = "dnnlib.tflib.network"
Network.__qualname__ = "Network"


@contextlib.contextmanager
def fake_dnnlib() -> Iterator[type]:
    """Register ``dnnlib``, ``dnnlib.tflib``, ``dnnlib.tflib.network`` (with :class:`Network`)
    in ``sys.modules`` for the duration of the block, then restore ``sys.modules``."""
    saved = {name: sys.modules.get(name) for name in _FAKE_MODULES}
    mods = {name: types.ModuleType(name) for name in _FAKE_MODULES}
    mods["dnnlib"].tflib = mods["dnnlib.tflib"]  # type: ignore[attr-defined]
    mods["dnnlib.tflib"].network = mods["dnnlib.tflib.network"]  # type: ignore[attr-defined]
    mods["dnnlib.tflib.network"].Network = Network  # type: ignore[attr-defined]
    sys.modules.update(mods)
    try:
        yield Network
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_SCALAR = np.float32(0).__reduce__()[0]


class GlobalName:
    """A reference to ``module.name`` that pickles as exactly that global, whether or not it exists
    (hostile files name numpy's globals with crafted arguments, or globals holding escapes)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args: Any) -> None:  # pickle's save_reduce wants a callable
        raise RuntimeError("a GlobalName is only pickled, never called")


class Call:
    """Pickles as ``func(*args)`` (REDUCE) followed by ``BUILD state`` when ``state`` is given:
    any instruction sequence a crafted pickle may contain with the allowed globals."""

    def __init__(self, func: GlobalName, args: tuple[Any, ...], state: Any = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


NP_DTYPE = GlobalName("numpy", "dtype")
NP_NDARRAY = GlobalName("numpy", "ndarray")
NP_RECONSTRUCT = GlobalName("numpy.core.multiarray", "_reconstruct")
NP_SCALAR = GlobalName("numpy.core.multiarray", "scalar")


def crafted_dtype(code: str, state: tuple[Any, ...] | None = None) -> Call:
    """``numpy.dtype(code, False, True)`` with the given ``__setstate__`` state (default: numpy's
    own state for a little-endian plain type)."""
    return Call(NP_DTYPE, (code, False, True), state or (3, "<", None, None, None, -1, -1, 0))


def crafted_array(shape: tuple[int, ...], dtype: Call, data: Any) -> Call:
    """What numpy writes for an array (``_reconstruct(ndarray, (0,), b'b')`` + BUILD), with any
    shape, dtype and data."""
    return Call(NP_RECONSTRUCT, (NP_NDARRAY, (0,), b"b"), (1, shape, dtype, False, data))


def forged_object_array() -> Call:
    """The memory-corruption case: a structured dtype with an object field (its flags deny
    objects) over 8 raw bytes, i.e. a forged object pointer if numpy built it."""
    obj_field = crafted_dtype("O8", (3, "|", None, None, None, -1, -1, 63))
    dtype = crafted_dtype("V8", (3, "|", None, ("p",), {"p": (obj_field, 0)}, 8, 1, 0))
    return crafted_array((1,), dtype, b"\x41" * 8)


class _LegacyNumpyPickler(pickle._Pickler):  # the pure-Python pickler exposes save_global
    """Writes numpy's reconstruction functions under their numpy-1 module name, and
    :class:`GlobalName` references as the globals they name."""

    _LEGACY = {id(_RECONSTRUCT): ("numpy.core.multiarray", "_reconstruct"),
               id(_SCALAR): ("numpy.core.multiarray", "scalar")}
    dispatch = pickle._Pickler.dispatch.copy()

    def save_global(self, obj: Any, name: str | None = None) -> None:
        target = (obj.module, obj.name) if isinstance(obj, GlobalName) else self._LEGACY.get(id(obj))
        if target is None or self.proto < 4:
            return super().save_global(obj, name)
        self.save(target[0])
        self.save(target[1])
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)

    dispatch[GlobalName] = save_global


#: A tiny but complete 8 px layout (a ~44 KB pickle) for hostile-file tests.
TINY = dict(fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16, mapping_layers=2, mapping_fmaps=16)


def _nf(res: int, fmap_base: int, fmap_max: int, fmap_decay: float) -> int:
    stage = int(math.log2(res)) - 1
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def gs_variable_shapes(resolution: int, fmap_base: int = 8192, fmap_max: int = 512,
                       fmap_decay: float = 1.0, *, latent_size: int = 512, dlatent_size: int = 512,
                       mapping_layers: int = 8, mapping_fmaps: int = 512,
                       num_channels: int = 3) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """Own variables of ``Gs``, ``G_mapping`` and ``G_synthesis`` in creation order.

    Returns ``{"Gs": [...], "mapping": [...], "synthesis": [...]}`` of ``(local name, shape)``.
    """
    log2r = int(math.log2(resolution))
    assert 2**log2r == resolution and log2r >= 2
    num_layers = 2 * log2r - 2
    gs = [("lod", ()), ("dlatent_avg", (dlatent_size,))]
    mapping = []
    for i in range(mapping_layers):
        fin = latent_size if i == 0 else mapping_fmaps
        fout = dlatent_size if i == mapping_layers - 1 else mapping_fmaps
        mapping += [(f"Dense{i}/weight", (fin, fout)), (f"Dense{i}/bias", (fout,))]
    synth: list[tuple[str, tuple[int, ...]]] = [("lod", ())]
    for k in range(num_layers):
        r = 2 ** (k // 2 + 2)
        synth.append((f"noise{k}", (1, 1, r, r)))

    def epi(scope: str, c: int) -> list[tuple[str, tuple[int, ...]]]:
        return [(f"{scope}/Noise/weight", (c,)), (f"{scope}/bias", (c,)),
                (f"{scope}/StyleMod/weight", (dlatent_size, 2 * c)), (f"{scope}/StyleMod/bias", (2 * c,))]

    c = _nf(4, fmap_base, fmap_max, fmap_decay)
    synth += [("4x4/Const/const", (1, c, 4, 4))] + epi("4x4/Const", c)
    synth += [("4x4/Conv/weight", (3, 3, c, c))] + epi("4x4/Conv", c)
    synth += [(f"ToRGB_lod{log2r - 2}/weight", (1, 1, c, num_channels)), (f"ToRGB_lod{log2r - 2}/bias", (num_channels,))]
    cin = c
    for lr in range(3, log2r + 1):
        r = 2**lr
        c = _nf(r, fmap_base, fmap_max, fmap_decay)
        synth += [(f"{r}x{r}/Conv0_up/weight", (3, 3, cin, c))] + epi(f"{r}x{r}/Conv0_up", c)
        synth += [(f"{r}x{r}/Conv1/weight", (3, 3, c, c))] + epi(f"{r}x{r}/Conv1", c)
        synth += [(f"ToRGB_lod{log2r - lr}/weight", (1, 1, c, num_channels)),
                  (f"ToRGB_lod{log2r - lr}/bias", (num_channels,))]
        cin = c
    return {"Gs": gs, "mapping": mapping, "synthesis": synth}


def flat_shapes(shapes: dict[str, list[tuple[str, tuple[int, ...]]]]) -> dict[str, tuple[int, ...]]:
    """``gs_variable_shapes`` output keyed like ``collect_variables`` (``synthesis/...``, ``mapping/...``)."""
    out = {n: s for n, s in shapes["Gs"]}
    for comp in ("synthesis", "mapping"):
        out.update({f"{comp}/{n}": s for n, s in shapes[comp]})
    return out


class _Foreign:
    """An object whose unpickling would run a foreign global (the loader must refuse it)."""

    def __init__(self, kind: str, marker: Path) -> None:
        self.kind, self.marker = kind, Path(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        if self.kind == "os.system":
            return (os.system, (f"touch '{self.marker}'",))
        if self.kind == "exec":
            return (builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",))
        raise ValueError(self.kind)


def _split(flat_name: str) -> tuple[str, str]:
    for comp in ("synthesis", "mapping"):
        if flat_name.startswith(comp + "/"):
            return comp, flat_name[len(comp) + 1:]
    return "Gs", flat_name


def make_gs_pickle(
    path: str | os.PathLike[str],
    resolution: int,
    fmap_base: int = 8192,
    fmap_max: int = 512,
    seed: int = 0,
    *,
    values: Literal["random", "const"] = "random",
    latent_size: int = 512,
    dlatent_size: int = 512,
    mapping_layers: int = 8,
    mapping_fmaps: int = 512,
    version: int = 3,
    lod: float = 0.0,
    drop: Iterable[str] = (),
    extra: dict[str, np.ndarray] | None = None,
    misshape: Iterable[str] = (),
    static_kwargs: dict[str, Any] | None = None,
    omit_kwargs: Iterable[str] = (),
    foreign: Literal["os.system", "exec"] | None = None,
    marker: str | os.PathLike[str] | None = None,
    numpy_names: Literal["legacy", "current"] = "legacy",
    gs_hook: Callable[[Network], None] | None = None,
) -> dict[str, np.ndarray]:
    """Write a synthetic official-format ``(G, D, Gs)`` pickle and return Gs's variables.

    The returned dict is keyed like ``collect_variables`` (``dlatent_avg``,
    ``synthesis/4x4/Const/const``, ``mapping/Dense0/weight``) and holds what was written
    (after ``drop``/``extra``/``misshape``); ``lod`` values are 0-d arrays.

    ``values="random"`` draws N(0, 1) float32 from ``seed``; ``"const"`` fills each
    variable with its own constant (cheap for the ~117 MB 1024 px network). ``drop`` removes
    variables, ``extra`` adds some, ``misshape`` grows the last axis by one. ``static_kwargs``
    is merged into the kwargs of Gs and both components, ``omit_kwargs`` removes keys from
    them. ``foreign`` puts an object into ``Gs.static_kwargs`` whose unpickling would run
    ``os.system('touch marker')`` or ``exec(...)`` creating ``marker``. ``version=4`` mimics
    a StyleGAN2 pickle. G and D are small stand-ins (the loader only converts Gs). ``gs_hook(Gs)``
    may change the Gs network (e.g. its components) just before it is written.
    """
    rng = np.random.default_rng(seed)
    shapes = gs_variable_shapes(resolution, fmap_base, fmap_max, latent_size=latent_size,
                                dlatent_size=dlatent_size, mapping_layers=mapping_layers,
                                mapping_fmaps=mapping_fmaps)
    drop, misshape = set(drop), set(misshape)
    per_net: dict[str, list[tuple[str, Any]]] = {"Gs": [], "mapping": [], "synthesis": []}
    flat: dict[str, np.ndarray] = {}
    counter = 0
    for net, items in shapes.items():
        for name, shape in items:
            key = name if net == "Gs" else f"{net}/{name}"
            if key in drop:
                continue
            counter += 1
            if key in misshape:
                shape = (2,) if not shape else shape[:-1] + (shape[-1] + 1,)
            if name == "lod" and shape == ():
                value: Any = np.float32(lod)  # tfutil.run returns a numpy scalar
            elif values == "random":
                value = rng.standard_normal(shape, dtype=np.float32)
            else:
                value = np.full(shape, np.float32(counter) / 1024, dtype=np.float32)
            per_net[net].append((name, value))
            flat[key] = np.asarray(value)
    for key, value in (extra or {}).items():
        net, name = _split(key)
        per_net[net].append((name, value))
        flat[key] = value if isinstance(value, Call) else np.asarray(value)

    log2r = int(math.log2(resolution))
    base_kw: dict[str, Any] = {"num_channels": 3, "resolution": resolution, "label_size": 0}
    for key, val, default in (("fmap_base", fmap_base, 8192), ("fmap_max", fmap_max, 512),
                              ("latent_size", latent_size, 512), ("dlatent_size", dlatent_size, 512),
                              ("mapping_layers", mapping_layers, 8), ("mapping_fmaps", mapping_fmaps, 512)):
        if val != default:
            base_kw[key] = val
    base_kw.update(static_kwargs or {})
    for key in omit_kwargs:
        base_kw.pop(key, None)
    map_kw = {**base_kw, "dlatent_broadcast": 2 * log2r - 2}
    for key in omit_kwargs:
        map_kw.pop(key, None)
    gs_kw = dict(base_kw)
    if foreign is not None:
        assert marker is not None, "foreign= needs a marker path"
        gs_kw["evil"] = _Foreign(foreign, Path(marker))

    synthesis = Network("G_synthesis", "G_synthesis", base_kw, variables=per_net["synthesis"], version=version)
    mapping = Network("G_mapping", "G_mapping", map_kw, variables=per_net["mapping"], version=version)
    Gs = Network("Gs", "G_style", gs_kw, {"synthesis": synthesis, "mapping": mapping},
                 variables=per_net["Gs"], version=version)
    G = Network("G", "G_style", base_kw, variables=[("lod", np.float32(0.0))], version=version)
    D = Network("D", "D_basic", base_kw,
                variables=[("lod", np.float32(0.0)), ("FromRGB_lod0/bias", np.zeros(4, np.float32))],
                version=version)

    if gs_hook is not None:
        gs_hook(Gs)
    with fake_dnnlib(), open(path, "wb") as f:
        if numpy_names == "legacy":
            _LegacyNumpyPickler(f, protocol=4).dump((G, D, Gs))
        else:
            pickle.dump((G, D, Gs), f, protocol=4)
    return flat
