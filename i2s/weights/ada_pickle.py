"""Read NVIDIA's StyleGAN2-ADA PyTorch network pickles without running any code from the file.

``ffhq.pkl``, ``afhqcat.pkl`` and every ``network-snapshot-*.pkl`` of NVlabs/stylegan2-ada-pytorch
are ``pickle.dump(dict(training_set_kwargs, G, D, G_ema, augment_pipe))`` (``training/
training_loop.py``). Each network object is a ``torch_utils.persistence`` class, pickled as the
call ``_reconstruct_persistent_obj(meta)`` with ``meta = dict(type='class', version=6,
module_src=<the whole source of training/networks.py>, class_name=<str>, state=<the module's
__dict__>)``; NVIDIA's loader runs ``exec(module_src)`` (reference-facts §3, §12), so opening
such a file the usual way runs whatever code it holds.

:class:`AdaUnpickler` runs none of it. ``find_class`` answers an allow-list with inert stand-ins
and refuses everything else before importing it (:class:`UnsafeAdaPickleError`):

* ``torch_utils.persistence._reconstruct_persistent_obj`` -> :class:`AdaObject` (the class name,
  the state dict and the sha256 of ``module_src``; ``module_src`` itself is never executed, and
  ``torch_utils``/``dnnlib`` are never imported). A class name outside NVIDIA's networks.py /
  augment.py classes is refused by name;
* ``dnnlib.util.EasyDict``, ``collections.OrderedDict``, ``builtins.set`` -> plain containers;
* ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` -> records of their arguments;
* ``torch.storage._load_from_bytes`` -> :class:`StorageBytes`. NVIDIA's version is
  ``torch.load(io.BytesIO(b), weights_only=False)``, a nested unrestricted load; here the bytes
  (torch's legacy ``torch.save`` format: five small pickles, then the raw values) are parsed by
  :func:`parse_storage` with an allow-list of ``torch.*Storage`` names, their declared sizes checked
  against the bytes there are. ``torch.load`` never sees them;
* numpy's ``scalar``/``dtype`` (the ``weight_gain`` floats) -> the inert records of
  :mod:`i2s.weights.tf_pickle`.

The file is first checked and its opcodes scanned for bombs exactly as the StyleGAN v1 reader does
(:func:`i2s.weights.tf_pickle._check_file`, ``_scan_opcodes``). Then :func:`config_from_ada` reads
the architecture of ``G_ema`` from its class names, attributes and tensor shapes, checks every
run-time constant the forward pass uses (``weight_gain``, ``bias_gain``, ``act_gain``, ``up``,
``padding``, ``conv_clamp``, ``architecture``, ...) against what :mod:`i2s.stylegan2` computes,
and :func:`convert_ada_generator` returns the state dict, checked name by name and shape by shape
before any tensor is built.

The module source. The safety comes from never executing it; its sha256 only identifies the
release. :data:`KNOWN_MODULE_SOURCES` holds the hashes of NVIDIA's published ``training/
networks.py`` and ``training/augment.py`` (``inspect.getsource`` text, as persistence stores it;
unchanged from the first commit 375a436 of 2021-01-30 to d72cc7d). The released ``ffhq.pkl`` and
``afhqcat.pkl`` could not be downloaded here, so whether they carry exactly that text is
unconfirmed: a file whose source differs (a later or internal version, a third party's edit) is
still read, by class names and structure, with one warning line, because i2s renders with its own
implementation of NVIDIA's architecture whatever the source says.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import pickletools
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from ..stylegan2 import StyleGAN2, StyleGAN2Config, setup_filter
from ..stylegan2 import config_problems as stylegan2_config_problems
from .converted import build_from_state_dict
from .limits import PlainValueError, WeightsFormatError, plain_value, quote
from .tf_pickle import (_REFUSED_OPCODES, PickleKind, UnsafePickleError, _build_array, _check_file, _DtypeRecord,
                        _plain_scalar, _ReadOnlyClass, _ScalarRecord, _scan_opcodes, _sha256, _some, _unpickle)

__all__ = ["KNOWN_MODULE_SOURCES", "GENERATOR_CLASSES", "OTHER_CLASSES", "UnsafeAdaPickleError", "AdaObject",
           "AdaUnpickler", "StorageBytes", "parse_storage", "load_ada_pickle", "config_from_ada",
           "convert_ada_generator", "convert_ada_pickle", "validate_ada_pickle", "network_pickle_kind"]

#: sha256 of a persistence ``module_src`` (UTF-8) -> where that text was published.
KNOWN_MODULE_SOURCES: dict[str, str] = {
    "53b4e1ec457171d4e2c1454d48013765ab626141c35cdd383b020950effe11a5":
        "NVlabs/stylegan2-ada-pytorch training/networks.py (the same text from 375a436, 2021-01-30, to d72cc7d)",
    "77eb17876bc7ba87cdc9281caf925daf507ce0937b84d0f32134d4d08e13061e":
        "NVlabs/stylegan2-ada-pytorch training/augment.py (the same text from 375a436, 2021-01-30, to d72cc7d)",
}
#: The persistent classes of training/networks.py that make up the generator.
GENERATOR_CLASSES = frozenset({"Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer",
                               "ToRGBLayer", "FullyConnectedLayer"})
#: The other persistent classes of networks.py and augment.py a training pickle holds (D, augment_pipe).
OTHER_CLASSES = frozenset({"Discriminator", "DiscriminatorBlock", "DiscriminatorEpilogue", "MinibatchStdLayer",
                           "Conv2dLayer", "AugmentPipe"})
#: Classes only StyleGAN3's networks have (said so when refused).
_STYLEGAN3_CLASSES = frozenset({"SynthesisInput"})
#: ``torch_utils.persistence._version`` of every published pickle.
PERSISTENCE_VERSION = 6

ADA_PICKLE = PickleKind(
    what="StyleGAN2-ADA network pickle",
    refetch="download it again (`i2s weights fetch stylegan2-ffhq-1024 --force` for the registry's files)",
    import_hint="download it again and run `i2s weights import NAME PATH`",
    size_hint="NVIDIA's FFHQ-1024 ffhq.pkl holds G, D and G_ema, about 360 MB (an estimate)",
    typical_ops="about 100,000",
    fetch_hint="fetch it with `i2s weights fetch stylegan2-ffhq-1024` (or another registry name)",
)

#: Bounds of what one pickle may hold (ffhq.pkl: three networks of ~200 modules each).
_MAX_OBJECTS = 100_000
_MAX_DEPTH = 8
_MAX_HEADER = 4096  # bytes of the five small pickles in front of one storage's values
#: A storage's header names the storage by a persistent id (BINPERSID); nothing else is needed.
_HEADER_REFUSED = frozenset(_REFUSED_OPCODES - {"BINPERSID"})


class UnsafeAdaPickleError(UnsafePickleError):
    """The pickle references a global outside the ADA allow-list; nothing was imported or run."""

    def __init__(self, module: str, name: str, source: str = "<stream>", where: str = "") -> None:
        self.module, self.name, self.source, self.where = module, name, source, where
        pickle.UnpicklingError.__init__(
            self,
            f"refusing to load {source}: it references the global {quote(f'{module}.{name}')}{where}, which is not "
            "part of a StyleGAN2-ADA network pickle (allowed: torch_utils.persistence's reconstruction, "
            "dnnlib.util.EasyDict, OrderedDict, set, torch's tensor rebuilding and numpy's scalars); nothing was "
            "imported or executed")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.module, self.name, self.source, self.where))


@dataclass(frozen=True, slots=True)
class AdaObject:
    """A persistent object of the file: its class name, its state (the ``nn.Module.__dict__``) and
    the sha256 of its ``module_src``. Nothing of NVIDIA's class is created."""

    class_name: str
    state: dict
    src_sha256: str

    def __repr__(self) -> str:
        return f"<AdaObject {self.class_name} src={self.src_sha256[:12]}>"


class _EasyDict(dict, metaclass=_ReadOnlyClass):
    """Stand-in for ``dnnlib.util.EasyDict`` (NEWOBJ + SETITEMS; a state of its own is refused)."""

    def __setstate__(self, state: Any) -> None:
        raise WeightsFormatError(f"an EasyDict with object state {quote(state)}")


class _OrderedDict(dict, metaclass=_ReadOnlyClass):
    """Stand-in for ``collections.OrderedDict`` (a plain dict keeps the insertion order)."""

    def __setstate__(self, state: Any) -> None:
        raise WeightsFormatError(f"an OrderedDict with object state {quote(state)}")


def _set_of(items: Any = ()) -> frozenset:
    """Stand-in for ``builtins.set`` (protocol 2/3 pickles a set as ``set([items])``)."""
    if type(items) not in (list, tuple) or len(items) > 10_000:
        raise WeightsFormatError(f"set() of {type(items).__name__}")
    return frozenset(items)


class _TensorRecord(metaclass=_ReadOnlyClass):
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])``."""

    def __init__(self, *args: Any) -> None:
        self.args = args


class _ParameterRecord(metaclass=_ReadOnlyClass):
    """``torch._utils._rebuild_parameter(data, requires_grad, hooks)``."""

    def __init__(self, *args: Any) -> None:
        self.args = args


@dataclass(frozen=True, slots=True)
class _StorageKind:
    """A ``torch.<Type>Storage`` class named inside a storage's bytes."""

    name: str
    dtype: Any


#: The storage classes a legacy ``torch.save`` of a storage may name (numpy dtypes of their values).
_STORAGE_KINDS = {name: _StorageKind(name, np.dtype(dt)) for name, dt in (
    ("FloatStorage", "<f4"), ("DoubleStorage", "<f8"), ("HalfStorage", "<f2"), ("LongStorage", "<i8"),
    ("IntStorage", "<i4"), ("ShortStorage", "<i2"), ("CharStorage", "i1"), ("ByteStorage", "u1"),
    ("BoolStorage", "?"))}
#: torch/serialization.py: the magic number and protocol version of the legacy format.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class StorageBytes(metaclass=_ReadOnlyClass):
    """Stand-in for ``torch.storage._load_from_bytes(b)``: the bytes, parsed at once by
    :func:`parse_storage` (never by ``torch.load``). ``dtype``, ``numel`` and ``offset`` (where the
    values start in ``data``) describe the storage."""

    def __init__(self, data: Any, *, source: str = "<stream>") -> None:
        if type(data) is not bytes:
            raise WeightsFormatError(f"tensor storage is a {type(data).__name__}, not bytes")
        self.data = data
        self.dtype, self.numel, self.offset = parse_storage(data, source)


class _HeaderUnpickler(pickle.Unpickler):
    """Unpickles the small pickles in front of a storage's values: no global but ``torch.*Storage``,
    persistent ids only as records."""

    def __init__(self, file: BinaryIO, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_KINDS:
            return _STORAGE_KINDS[name]
        raise UnsafeAdaPickleError(str(module), str(name), self.source,
                                   " inside a tensor's storage bytes (which NVIDIA's loader hands to an unrestricted "
                                   "torch.load)")

    def persistent_load(self, pid: Any) -> Any:
        return ("persistent", pid)


def _header_pickle(f: io.BytesIO, source: str) -> Any:
    start = f.tell()
    window = f.getbuffer()[start: start + _MAX_HEADER].tobytes()
    try:
        end = next(pos for op, _, pos in pickletools.genops(io.BytesIO(window)) if op.name == "STOP") + 1
    except (StopIteration, ValueError) as e:
        raise WeightsFormatError(f"a tensor storage's header is not a short pickle ({quote(str(e))})") from None
    _scan_opcodes(io.BytesIO(window[:end]), Path(source), ADA_PICKLE, _HEADER_REFUSED)
    value = _HeaderUnpickler(io.BytesIO(window[:end]), source).load()
    f.seek(start + end)
    return value


def parse_storage(b: bytes, source: str = "<stream>") -> tuple[np.dtype, int, int]:
    """Parse the legacy ``torch.save`` bytes of one storage: ``(dtype, numel, offset of the values)``.

    torch/serialization.py writes the magic number, the protocol version, the system info, the
    storage as a persistent id ``('storage', torch.<T>Storage, key, location, numel, None)`` and the
    list of keys, each a pickle of its own, then the element count as an int64 and the raw values.
    Everything is checked: the magic, protocol 1001, a little-endian system, one storage, its
    declared count both times, and exactly ``numel * itemsize`` bytes of values.
    """
    f = io.BytesIO(b)
    try:
        magic = _header_pickle(f, source)
        protocol = _header_pickle(f, source)
        info = _header_pickle(f, source)
        obj = _header_pickle(f, source)
        keys = _header_pickle(f, source)
    except (UnsafePickleError, WeightsFormatError):
        raise
    except Exception as e:  # noqa: BLE001 - any failure of a crafted header is one refusal
        raise WeightsFormatError(f"malformed tensor storage ({type(e).__name__}: {quote(str(e))})") from None
    if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
        raise WeightsFormatError(f"tensor storage bytes are not torch's legacy format (magic {quote(magic)}, "
                                 f"protocol {quote(protocol)})")
    if type(info) is not dict or info.get("little_endian") is not True:
        raise WeightsFormatError(f"tensor storage written on a system {quote(info)} (little-endian only)")
    pid = obj[1] if type(obj) is tuple and len(obj) == 2 and obj[0] == "persistent" else None
    if not (type(pid) is tuple and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], _StorageKind)
            and type(pid[2]) is str and len(pid[2]) <= 64 and type(pid[3]) is str and len(pid[3]) <= 64
            and type(pid[4]) is int and pid[4] >= 0 and pid[5] is None):
        raise WeightsFormatError(f"tensor storage bytes hold {quote(obj)}, not one storage")
    if keys != [pid[2]]:
        raise WeightsFormatError(f"tensor storage bytes list the storages {quote(keys)}, not {quote([pid[2]])}")
    kind, numel = pid[1], pid[4]
    pos = f.tell()
    if len(b) < pos + 8 or int.from_bytes(b[pos:pos + 8], "little", signed=True) != numel:
        raise WeightsFormatError(f"tensor storage declares {numel:,} values twice differently")
    if len(b) - pos - 8 != numel * kind.dtype.itemsize:
        raise WeightsFormatError(f"tensor storage declares {numel:,} x {kind.name} but holds "
                                 f"{len(b) - pos - 8:,} bytes of values")
    return kind.dtype, numel, pos + 8


class AdaUnpickler(pickle.Unpickler):
    """Allow-list unpickler for StyleGAN2-ADA network pickles (module docstring)."""

    def __init__(self, file: BinaryIO, *, source: str = "<stream>") -> None:
        super().__init__(file)
        self.source = str(source)
        self.objects = 0
        self._sources: dict[int, tuple[str, str]] = {}  # id(module_src) -> (the string, its sha256)

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key == ("torch_utils.persistence", "_reconstruct_persistent_obj"):
            return self._reconstruct
        if key == ("torch.storage", "_load_from_bytes"):
            return self._storage
        if key in _ALLOWED:
            return _ALLOWED[key]
        raise UnsafeAdaPickleError(str(module), str(name), self.source)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"{self.source}: unexpected persistent id {quote(pid)} in a network pickle")

    def _storage(self, data: Any) -> StorageBytes:
        return StorageBytes(data, source=self.source)

    def _reconstruct(self, meta: Any) -> AdaObject:
        self.objects += 1
        if self.objects > _MAX_OBJECTS:
            raise WeightsFormatError(f"refusing to load {self.source}: more than {_MAX_OBJECTS:,} network objects")
        want = {"type", "version", "module_src", "class_name", "state"}
        if type(meta) is not dict or set(meta) != want:
            keys = sorted(map(str, meta)) if isinstance(meta, dict) else type(meta).__name__
            raise WeightsFormatError(f"refusing to load {self.source}: a persistent object's meta is {quote(keys)}, "
                                     f"not {sorted(want)}")
        name = meta["class_name"]
        if type(name) is not str or name not in GENERATOR_CLASSES | OTHER_CLASSES:
            hint = (" (a StyleGAN3 network: i2s reads StyleGAN2 and StyleGAN2-ADA pickles)"
                    if name in _STYLEGAN3_CLASSES else "")
            raise WeightsFormatError(
                f"refusing to load {self.source}: it holds an object of class {quote(name)}, which is not a class of "
                f"NVIDIA's StyleGAN2-ADA networks{hint}; its code was not run")
        if meta["type"] != "class" or meta["version"] != PERSISTENCE_VERSION or type(meta["version"]) is not int:
            raise WeightsFormatError(
                f"refusing to load {self.source}: persistent object {quote(name)} has type {quote(meta['type'])}, "
                f"version {quote(meta['version'])} (NVIDIA's pickles: 'class', {PERSISTENCE_VERSION})")
        src, state = meta["module_src"], meta["state"]
        if type(src) is not str:
            raise WeightsFormatError(f"refusing to load {self.source}: {name}'s module_src is a {type(src).__name__}")
        if type(state) is not dict:
            raise WeightsFormatError(f"refusing to load {self.source}: {name}'s state is a {type(state).__name__}")
        cached = self._sources.get(id(src))
        if cached is None or cached[0] is not src:
            cached = (src, hashlib.sha256(src.encode("utf-8", "surrogatepass")).hexdigest())
            self._sources[id(src)] = cached  # holding the string keeps its id unique
        return AdaObject(name, state, cached[1])


#: The allow-list besides the two bound methods of :class:`AdaUnpickler`.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("collections", "OrderedDict"): _OrderedDict,
    ("builtins", "set"): _set_of,
    ("torch._utils", "_rebuild_tensor_v2"): _TensorRecord,
    ("torch._utils", "_rebuild_parameter"): _ParameterRecord,
    ("numpy", "dtype"): _DtypeRecord,
    ("numpy.core.multiarray", "scalar"): _ScalarRecord,
    ("numpy._core.multiarray", "scalar"): _ScalarRecord,
}


def load_ada_pickle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Safely unpickle a StyleGAN2-ADA network pickle into a dict whose networks are :class:`AdaObject`.

    Raises:
        FileNotFoundError: no such file.
        UnsafeAdaPickleError: a global outside the allow-list (also inside a tensor's storage bytes).
        WeightsFormatError: empty, HTML, truncated, corrupt, crafted, an unknown class, no ``G_ema``.
    """
    path = Path(path)
    size = _check_file(path, ADA_PICKLE)
    try:
        obj = _unpickle(path, ADA_PICKLE, AdaUnpickler)
    except UnsafePickleError:
        raise
    except WeightsFormatError as e:
        raise e if str(path) in str(e) else WeightsFormatError(f"refusing to load {path}: {e}") from None
    except (EOFError, pickle.UnpicklingError, struct.error, ValueError, TypeError, IndexError, KeyError,
            AttributeError, OverflowError, MemoryError, RecursionError) as e:
        raise WeightsFormatError(f"{path} is truncated or corrupt ({size:,} bytes): {type(e).__name__}: "
                                 f"{quote(str(e))}; {ADA_PICKLE.refetch}") from None
    if type(obj) is not dict or not all(type(k) is str for k in obj):
        raise WeightsFormatError(f"{path}: expected NVIDIA's dict of networks (G, D, G_ema, ...), found a "
                                 f"{type(obj).__name__}")
    G_ema = obj.get("G_ema")
    if not isinstance(G_ema, AdaObject) or G_ema.class_name != "Generator":
        raise WeightsFormatError(f"{path}: no 'G_ema' Generator in the pickle (keys {quote(sorted(obj))}, G_ema is "
                                 f"{quote(getattr(G_ema, 'class_name', type(G_ema).__name__))})")
    return obj


# --------------------------------------------------------------------------- the generator's architecture


def _state(obj: Any, where: str, cls: str) -> dict:
    if not isinstance(obj, AdaObject) or obj.class_name != cls:
        found = obj.class_name if isinstance(obj, AdaObject) else type(obj).__name__
        raise WeightsFormatError(f"{where} is a {quote(found)}, not a {cls}")
    return obj.state


def _child(st: dict, name: str, where: str, cls: str) -> dict:
    mods = st.get("_modules")
    if not isinstance(mods, dict) or name not in mods:
        raise WeightsFormatError(f"{where} has no submodule {name!r}")
    return _state(mods[name], f"{where}.{name}", cls)


_INT = (int,)
_NUM = (int, float)


def _attr(st: dict, key: str, where: str, types: tuple[type, ...] = _INT, none: bool = False) -> Any:
    """An attribute of a module's state: a plain int/float/str/bool/None of the given types (numpy
    scalars become Python numbers)."""
    if key not in st:
        raise WeightsFormatError(f"{where} has no attribute {key!r}")
    v = st[key]
    if isinstance(v, _ScalarRecord):
        v = _build_array(v, f"{where}.{key}").item()
    if v is None and none:
        return None
    if type(v) not in types or (type(v) is bool and bool not in types):
        raise WeightsFormatError(f"{where}.{key} is {quote(v)}, not {' or '.join(t.__name__ for t in types)}")
    return v


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0)


def _size(rec: Any) -> tuple[int, ...] | None:
    """The declared shape of a tensor/parameter record, or None."""
    if isinstance(rec, _ParameterRecord) and rec.args:
        rec = rec.args[0]
    if isinstance(rec, _TensorRecord) and len(rec.args) >= 4 and type(rec.args[2]) in (tuple, list):
        size = tuple(rec.args[2])
        if len(size) <= 8 and all(type(s) is int and s >= 0 for s in size):
            return size
    return None


def _tensor_of(st: dict, group: str, name: str, where: str) -> Any:
    d = st.get(group)
    if not isinstance(d, dict) or d.get(name) is None:
        raise WeightsFormatError(f"{where} has no {group[1:-1]} {name!r}")
    return d[name]


def config_from_ada(G: AdaObject, where: str = "G_ema") -> tuple[StyleGAN2Config, dict[str, Any]]:
    """The :class:`StyleGAN2Config` of a ``Generator`` object, and what else the file says
    (``num_fp16_res``, ``channel_base`` as recorded).

    Read from the attributes NVIDIA's constructors set and the tensor shapes; every constant the
    forward pass uses is checked against what :mod:`i2s.stylegan2` computes, so that a file whose
    objects would compute something else is refused (listing all problems) rather than rendered
    differently. Only the 'skip' architecture, unconditional networks (``c_dim = 0``), ``lrelu``
    and a stored ``w_avg`` are supported, which covers NVIDIA's released StyleGAN2 generators.
    """
    problems: list[str] = []
    g = _state(G, where, "Generator")
    z_dim, c_dim, w_dim = (_attr(g, k, where) for k in ("z_dim", "c_dim", "w_dim"))
    resolution, img_channels, num_ws = (_attr(g, k, where) for k in ("img_resolution", "img_channels", "num_ws"))
    if c_dim != 0:
        problems.append(f"c_dim={c_dim}: a class-conditional network (such as cifar10.pkl) is not supported")
    m = _child(g, "mapping", where, "MappingNetwork")
    mw = f"{where}.mapping"
    n_map = _attr(m, "num_layers", mw)
    beta = _attr(m, "w_avg_beta", mw, _NUM, none=True)
    if beta is None:
        problems.append("the mapping network tracks no w_avg (w_avg_beta=None): w̄ is unknown")
    if _attr(m, "num_ws", mw, none=True) != num_ws:
        problems.append(f"mapping.num_ws differs from the generator's {num_ws}")
    lrs, features = [], None
    for i in range(n_map if type(n_map) is int and 0 < n_map <= 32 else 0):
        fw = f"{mw}.fc{i}"
        fc = _child(m, f"fc{i}", mw, "FullyConnectedLayer")
        shape = _size(_tensor_of(fc, "_parameters", "weight", fw))
        if _attr(fc, "activation", fw, (str,)) != "lrelu":
            problems.append(f"{fw}.activation is {quote(fc.get('activation'))}, only 'lrelu' is supported")
        lr = _attr(fc, "bias_gain", fw, _NUM)
        lrs.append(lr)
        if shape is None or len(shape) != 2:
            problems.append(f"{fw}.weight has no 2-D shape")
        elif not _close(_attr(fc, "weight_gain", fw, _NUM), lr / math.sqrt(shape[1])):
            problems.append(f"{fw}.weight_gain is not bias_gain / sqrt({shape[1]})")
        elif i == 0 and n_map > 1:
            features = shape[0]
    if len(set(lrs)) > 1:
        problems.append(f"the mapping layers have different learning-rate multipliers {quote(sorted(set(lrs)))}")

    s = _child(g, "synthesis", where, "SynthesisNetwork")
    sw = f"{where}.synthesis"
    if _attr(s, "img_resolution", sw) != resolution or _attr(s, "num_ws", sw) != num_ws:
        problems.append("synthesis.img_resolution/num_ws differ from the generator's")
    log2 = int(math.log2(resolution)) if type(resolution) is int and resolution >= 4 else 0
    if 2**log2 != resolution or resolution > 1024:
        raise WeightsFormatError(f"{where}: img_resolution={quote(resolution)} is not a power of two from 4 to 1024")
    resolutions = [2**k for k in range(2, log2 + 1)]
    if s.get("block_resolutions") != resolutions:
        problems.append(f"synthesis.block_resolutions is {quote(s.get('block_resolutions'))}, expected {resolutions}")
    chans: dict[int, int] = {}
    clamps, noise, fp16, taps = set(), set(), 0, None
    cin = 0
    for res in resolutions:
        bw = f"{sw}.b{res}"
        b = _child(s, f"b{res}", sw, "SynthesisBlock")
        arch = _attr(b, "architecture", bw, (str,))
        if arch != "skip":
            problems.append(f"{bw}.architecture is {quote(arch)}; i2s implements NVIDIA's 'skip' generator only")
        fp16 += bool(_attr(b, "use_fp16", bw, (bool,)))
        first = res == 4
        want = {"in_channels": cin, "resolution": res, "img_channels": img_channels, "is_last": res == resolution,
                "num_conv": 1 if first else 2, "num_torgb": 1, "w_dim": w_dim}
        for key, value in want.items():
            got = _attr(b, key, bw, (int, bool))
            if got != value or type(got) is not type(value):
                problems.append(f"{bw}.{key} is {quote(got)}, expected {value!r}")
        f2 = _size(_tensor_of(b, "_buffers", "resample_filter", bw))
        if f2 is None or len(f2) != 2 or f2[0] != f2[1] or not 1 <= f2[0] <= 8:
            problems.append(f"{bw}.resample_filter is not a small square filter ({quote(f2)})")
        elif taps is None:
            taps = _filter_taps(_tensor(_tensor_of(b, "_buffers", "resample_filter", bw), f"{bw}.resample_filter"))
            if taps is None:
                problems.append(f"{bw}.resample_filter is not the outer product of a 1-D filter with itself")
        convs = ["conv1"] if first else ["conv0", "conv1"]
        for cname in convs:
            lw = f"{bw}.{cname}"
            layer = _child(b, cname, bw, "SynthesisLayer")
            up = 1 if cname == "conv1" else 2
            for key, value in (("resolution", res), ("up", up), ("padding", 1)):
                if _attr(layer, key, lw) != value:
                    problems.append(f"{lw}.{key} is {quote(layer.get(key))}, expected {value}")
            if _attr(layer, "activation", lw, (str,)) != "lrelu":
                problems.append(f"{lw}.activation is {quote(layer.get('activation'))}, only 'lrelu' is supported")
            if not _close(_attr(layer, "act_gain", lw, _NUM), math.sqrt(2)):
                problems.append(f"{lw}.act_gain is not sqrt(2)")
            clamps.add(_attr(layer, "conv_clamp", lw, _NUM, none=True))
            noise.add(_attr(layer, "use_noise", lw, (bool,)))
            _check_affine(layer, lw, w_dim, problems)
            shape = _size(_tensor_of(layer, "_parameters", "weight", lw))
            if shape is None or len(shape) != 4 or shape[2:] != (3, 3):
                problems.append(f"{lw}.weight is not a 3x3 kernel ({quote(shape)})")
            elif cname == "conv1":
                chans[res] = shape[0]
        tw = f"{bw}.torgb"
        rgb = _child(b, "torgb", bw, "ToRGBLayer")
        clamps.add(_attr(rgb, "conv_clamp", tw, _NUM, none=True))
        _check_affine(rgb, tw, w_dim, problems)
        c = chans.get(res)
        if c is not None and not _close(_attr(rgb, "weight_gain", tw, _NUM), 1 / math.sqrt(c)):
            problems.append(f"{tw}.weight_gain is not 1/sqrt({c})")
        cin = chans.get(res, 0)
    if len(clamps) > 1 or len(noise) > 1:
        problems.append(f"layers differ in conv_clamp {quote(sorted(map(str, clamps)))} or use_noise")
    if problems:
        raise WeightsFormatError(f"{where}: not a StyleGAN2 generator i2s can render faithfully: "
                                 + _some(problems, "; ", 12))
    channel_base, channel_max = _channel_params(chans)
    cfg = StyleGAN2Config(
        resolution=resolution, img_channels=img_channels, z_dim=z_dim, w_dim=w_dim, mapping_layers=n_map,
        mapping_features=features if features is not None else w_dim, mapping_lrmul=float(lrs[0]) if lrs else 0.01,
        channel_base=channel_base, channel_max=channel_max, resample_filter=taps or (1, 3, 3, 1),
        use_noise=noise.pop() if noise else True, conv_clamp=clamps.pop() if clamps else None,
        w_avg_beta=float(beta))
    bounds = stylegan2_config_problems(cfg)
    if bounds:
        raise WeightsFormatError(f"{where}: refusing its architecture: " + "; ".join(bounds))
    wrong = [f"{r}x{r}: {c} (expected {cfg.channels(r)})" for r, c in chans.items() if cfg.channels(r) != c]
    if wrong or cfg.num_layers != num_ws:
        raise WeightsFormatError(f"{where}: channels per resolution fit no channel_base/channel_max: "
                                 + ", ".join(wrong or [f"num_ws {num_ws}"]))
    return cfg, {"num_fp16_res": fp16}


def _check_affine(layer: dict, where: str, w_dim: int, problems: list[str]) -> None:
    aw = f"{where}.affine"
    fc = _child(layer, "affine", where, "FullyConnectedLayer")
    if _attr(fc, "activation", aw, (str,)) != "linear" or _attr(fc, "bias_gain", aw, _NUM) != 1:
        problems.append(f"{aw} is not a linear layer with bias_gain 1")
    elif not _close(_attr(fc, "weight_gain", aw, _NUM), 1 / math.sqrt(w_dim)):
        problems.append(f"{aw}.weight_gain is not 1/sqrt({w_dim})")


def _filter_taps(f: np.ndarray) -> tuple[int | float, ...] | None:
    """The 1-D taps whose normalised outer product is ``f`` ((1, 3, 3, 1) when it is that filter)."""
    taps = f.sum(axis=1)
    if not np.all(np.isfinite(taps)) or taps.sum() == 0:
        return None
    for cand in ((1, 3, 3, 1), tuple(float(t) for t in taps)):
        if np.allclose(setup_filter(cand).numpy(), f, rtol=0, atol=1e-7):
            return cand
    return None


def _channel_params(chans: dict[int, int]) -> tuple[int, int]:
    """``(channel_base, channel_max)`` with ``min(channel_base // r, channel_max) == chans[r]``."""
    cmax = max(chans.values())
    below = [r * c for r, c in chans.items() if c < cmax]
    return (max(below) if below else cmax * max(chans)), cmax


# --------------------------------------------------------------------------- tensors


def _tensor(rec: Any, where: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The float32 values of a tensor/parameter record, checked against ``shape`` before anything is copied."""
    if isinstance(rec, _ParameterRecord):
        if len(rec.args) != 3:
            raise WeightsFormatError(f"{where}: malformed parameter")
        rec = rec.args[0]
    if not isinstance(rec, _TensorRecord) or len(rec.args) not in (6, 7):
        raise WeightsFormatError(f"{where}: a {type(rec).__name__}, not a tensor")
    storage, offset, size, stride = rec.args[:4]
    if not isinstance(storage, StorageBytes):
        raise WeightsFormatError(f"{where}: tensor storage is a {type(storage).__name__}")
    size = _size(rec)
    if (size is None or type(stride) not in (tuple, list) or len(stride) != len(size)
            or not all(type(x) is int and x >= 0 for x in stride) or type(offset) is not int or offset < 0):
        raise WeightsFormatError(f"{where}: malformed tensor shape {quote(rec.args[1:4])}")
    if shape is not None and size != shape:
        raise WeightsFormatError(f"{where}: shape {size}, expected {shape}")
    count = math.prod(size)
    extent = offset + sum((n - 1) * st for n, st in zip(size, stride)) + 1 if count else offset
    if extent > storage.numel:
        raise WeightsFormatError(f"{where}: a tensor of shape {size} reaches past its storage of {storage.numel:,} values")
    if storage.dtype.kind not in "fiu":
        raise WeightsFormatError(f"{where}: tensor values of type {storage.dtype}")
    base = np.frombuffer(storage.data, dtype=storage.dtype, count=storage.numel, offset=storage.offset)
    item = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(base[offset:], shape=size, strides=[st * item for st in stride],
                                           writeable=False)
    return np.array(view, dtype=np.float32)


def _collect(obj: AdaObject, prefix: str, out: dict[str, Any], depth: int = 0) -> None:
    """``prefix + name -> record`` for every parameter and persistent buffer of ``obj`` and its submodules."""
    if depth > _MAX_DEPTH:
        raise WeightsFormatError(f"{prefix}: modules nested more than {_MAX_DEPTH} deep")
    st = obj.state
    skip = st.get("_non_persistent_buffers_set", frozenset())
    for key, value in st.items():  # hooks would hold callables: a network pickle has none
        if key.endswith("hooks") and isinstance(value, dict) and value:
            raise WeightsFormatError(f"{prefix or 'G_ema.'}{key} is not empty")
    for group in ("_parameters", "_buffers", "_modules"):
        d = st.get(group, {})
        if not isinstance(d, dict) or not all(type(k) is str and k.isidentifier() for k in d):
            raise WeightsFormatError(f"{prefix or 'G_ema.'}{group} is malformed")
        for name, value in d.items():
            if value is None or (group == "_buffers" and isinstance(skip, (set, frozenset)) and name in skip):
                continue
            if group == "_modules":
                if not isinstance(value, AdaObject):
                    raise WeightsFormatError(f"{prefix}{name} is a {type(value).__name__}, not a network object")
                _collect(value, f"{prefix}{name}.", out, depth + 1)
            else:
                out[prefix + name] = value


def convert_ada_generator(G: AdaObject, cfg: StyleGAN2Config) -> dict[str, torch.Tensor]:
    """The state dict of ``StyleGAN2(cfg)`` from a ``Generator`` object: every name of the model
    present with exactly its shape (checked before any value is copied), no other tensor.

    Raises:
        WeightsFormatError: listing all missing, unexpected and wrongly shaped tensors at once.
    """
    records: dict[str, Any] = {}
    _collect(G, "", records)
    with torch.device("meta"):
        want = {k: tuple(t.shape) for k, t in StyleGAN2(cfg).state_dict().items()}
    missing = [k for k in want if k not in records]
    extra = [quote(k) for k in records if k not in want]
    wrong = [f"{k}: {quote(_size(records[k]))}, expected {want[k]}" for k in want
             if k in records and _size(records[k]) != want[k]]
    if missing or extra or wrong:
        parts = [f"{len(x)} {what}: {_some(x)}" for x, what in ((missing, "missing"), (extra, "unexpected"),
                                                                  (wrong, "wrongly shaped")) if x]
        raise WeightsFormatError(f"the G_ema tensors do not match a {cfg.resolution}px StyleGAN2 generator: "
                                 + " | ".join(parts))
    return {k: torch.from_numpy(_tensor(records[k], k, want[k])) for k in want}


# --------------------------------------------------------------------------- files


def _module_sources(data: dict[str, Any]) -> set[str]:
    """sha256 of every module_src behind the generator G_ema."""
    found: set[str] = set()

    def walk(o: AdaObject, depth: int) -> None:
        found.add(o.src_sha256)
        mods = o.state.get("_modules", {})
        if depth < _MAX_DEPTH and isinstance(mods, dict):
            for m in mods.values():
                if isinstance(m, AdaObject):
                    walk(m, depth + 1)

    walk(data["G_ema"], 0)
    return found


def _source_provenance(path: Path, data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(sha256s, provenance)`` of the generator's module sources; one warning line when unknown."""
    hashes = sorted(_module_sources(data))
    unknown = [h for h in hashes if h not in KNOWN_MODULE_SOURCES]
    if unknown:
        warnings.warn(
            f"{path}: its network source code (module_src, sha256 {unknown[0][:16]}...) is not NVIDIA's published "
            "stylegan2-ada-pytorch training/networks.py; i2s never runs it and rebuilt the generator from its class "
            "names, attributes and tensors, which match NVIDIA's StyleGAN2 architecture", stacklevel=3)
    return hashes, [KNOWN_MODULE_SOURCES.get(h, "unknown") for h in hashes]


def _info_of(data: dict[str, Any]) -> dict[str, Any]:
    tsk = data.get("training_set_kwargs")
    try:
        tsk = plain_value(dict(tsk), convert=_plain_scalar) if isinstance(tsk, dict) else None
    except PlainValueError:
        tsk = None
    return {"training_set": {k: quote(v, 200) for k, v in tsk.items()} if tsk else None}


def convert_ada_pickle(path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None, *,
                       name: str | None = None, tier: str = "custom", domain: str | None = None) -> StyleGAN2:
    """Convert the ``G_ema`` of a StyleGAN2-ADA pickle into an :class:`i2s.stylegan2.StyleGAN2`.

    ``G.info`` records ``name`` (default ``stylegan2-<file stem>``), ``tier``, ``domain``, the
    source and its sha256, the module sources' sha256 and provenance, ``num_fp16_res`` (i2s runs
    those blocks in float32). With ``out_path`` the result is also saved (``"i2s-stylegan2"``). A
    cached registry file must match its recorded sha256 first (as for StyleGAN v1).
    """
    path = Path(path)
    _check_file(path, ADA_PICKLE)
    sha256 = _sha256(path)
    from .records import check_cached_hash  # noqa: PLC0415

    check_cached_hash(path, sha256)
    data = load_ada_pickle(path)
    try:
        cfg, extra = config_from_ada(data["G_ema"])
        sd = convert_ada_generator(data["G_ema"], cfg)
    except WeightsFormatError as e:
        raise WeightsFormatError(f"{path}: {e}") from None
    hashes, provenance = _source_provenance(path, data)
    info: dict[str, Any] = {
        "name": name or f"stylegan2-{path.stem}", "tier": tier, "domain": domain or "unknown",
        "source": str(path), "source_sha256": sha256, "source_format": "nvlabs-stylegan2-ada-pytorch-pickle",
        "module_src_sha256": hashes, "module_src": provenance, "num_fp16_res": extra["num_fp16_res"],
        **_info_of(data),
    }
    del data
    return build_from_state_dict(cfg, sd, info, save_to=out_path)


def validate_ada_pickle(path: str | os.PathLike[str]) -> StyleGAN2Config:
    """Everything :func:`convert_ada_pickle` checks, without building the generator (for
    ``i2s weights fetch``/``import``)."""
    path = Path(path)
    data = load_ada_pickle(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cfg, _ = config_from_ada(data["G_ema"])
            records: dict[str, Any] = {}
            _collect(data["G_ema"], "", records)
        except WeightsFormatError as e:
            raise WeightsFormatError(f"{path}: {e}") from None
    with torch.device("meta"):
        want = {k: tuple(t.shape) for k, t in StyleGAN2(cfg).state_dict().items()}
    if set(want) != set(records) or any(_size(records[k]) != want[k] for k in want):
        convert_ada_generator(data["G_ema"], cfg)  # raises, listing the differences
    return cfg


def network_pickle_kind(path: str | os.PathLike[str], max_ops: int = 200_000) -> str:
    """Which of NVIDIA's network pickles ``path`` looks like, from its first global (nothing is
    unpickled): ``"stylegan2-ada-pytorch"``, ``"tf-v4"`` (a dnnlib Network whose first state says
    version 4), ``"tf"`` (another dnnlib Network version: StyleGAN v1) or ``"unknown"``. Only
    chooses the reader; the reader checks everything itself."""
    import mmap

    strings: list[str] = []
    kind = "unknown"
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            for count, (op, arg, _) in enumerate(pickletools.genops(mm)):
                if count > max_ops:
                    break
                if kind == "tf" and op.name in ("BININT1", "BININT2", "BININT", "INT") and strings \
                        and strings[-1] == "version":
                    return "tf-v4" if arg == 4 else "tf"
                name = None
                if op.name == "GLOBAL" and isinstance(arg, str):
                    name = arg.replace(" ", ".")
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    name = f"{strings[-2]}.{strings[-1]}"
                if isinstance(arg, str):
                    strings = [*strings[-1:], arg]
                if name is not None and kind == "unknown":
                    if name.startswith(("torch_utils.", "dnnlib.util.", "torch.", "collections.")):
                        return "stylegan2-ada-pytorch"
                    if not name.startswith("dnnlib.tflib."):
                        return "unknown"
                    kind = "tf"
    except (ValueError, OSError, EOFError, IndexError):
        pass
    return kind
