"""Read NVIDIA's official StyleGAN v1 pickle without TensorFlow and convert it.

The file ``karras2019stylegan-ffhq-1024x1024.pkl`` (NVlabs/stylegan README,
``pretrained_example.py``) is a pickle of the tuple ``(G, D, Gs)`` written by
``training/misc.py`` ``save_pkl`` with ``pickle.HIGHEST_PROTOCOL`` (4). Each element is a
``dnnlib.tflib.network.Network`` whose ``__getstate__`` (``dnnlib/tflib/network.py``)
returns a plain dict::

    {"version": 3, "name": "Gs", "static_kwargs": {...}, "components": {"synthesis": Network,
     "mapping": Network}, "build_module_src": "...", "build_func_name": "G_style",
     "variables": [(local_name, numpy array), ...]}

Loading it normally would import ``dnnlib`` and, through ``Network.__setstate__``, execute
the stored ``build_module_src`` with TensorFlow. Instead :class:`SafeUnpickler` maps the one
class ``dnnlib.tflib.network.Network`` to :class:`TFNetworkStub` (no ``__setstate__``, so the
state dict lands in its ``__dict__``, as in stylegan2-ada-pytorch ``legacy.py``
``_TFNetworkStub``) and answers numpy's array-reconstruction globals with inert stand-ins that
only record their arguments; every other global is refused before it is imported. Nothing in
the file is ever executed, and no numpy code sees the file's state: arrays are rebuilt
afterwards from a plain number dtype and a bytes object whose length must match the declared
shape (a crafted dtype with an object field could otherwise forge pointers). The opcodes are
scanned first, and every size is bounded (:mod:`i2s.weights.limits`), so a crafted file is
refused in one line naming it instead of exhausting memory.

:func:`convert_gs` then maps every variable of ``Gs`` (the long-term average generator) onto
:class:`i2s.stylegan.StyleGAN`; the variable names, shapes and layouts are those created by
``training/networks_stylegan.py`` (``G_style``, ``G_mapping``, ``G_synthesis``):

* dense weights are stored ``[in, out]`` (transposed to torch's ``[out, in]``),
* conv weights ``[kh, kw, in, out]`` (``permute(3, 2, 0, 1)`` to ``[out, in, kh, kw]``, no flip),
* the runtime scales of the equalized learning rate are *not* baked into the stored values;
  :mod:`i2s.stylegan` applies them at run time exactly as the official code does.

Public API: :func:`load_tf_pickle`, :func:`collect_variables`, :func:`config_from_stub`,
:func:`convert_gs`, :func:`convert_pickle` and :func:`load_converted` (re-exported from
:mod:`i2s.weights.converted`).
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import pickle
import pickletools
import re
import struct
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
import torch

from ..stylegan import StyleGAN, StyleGANConfig
from .converted import WeightsFormatError, build_from_state_dict, load_converted
from .limits import PlainValueError, config_problems, plain_value, quote

__all__ = [
    "UnsafePickleError", "WeightsFormatError", "TFNetworkStub", "SafeUnpickler", "ALLOWED_GLOBALS",
    "load_tf_pickle", "collect_variables", "config_from_stub", "convert_gs", "convert_pickle",
    "load_converted", "is_paper_layout", "check_gs_variables", "validate_pickle",
]

#: What to tell a user whose download is broken.
REFETCH_HINT = "re-fetch it with `i2s weights fetch stylegan1-ffhq-1024 --force`"
_IMPORT_HINT = ("download it in a browser or with gdown and then run "
                "`i2s weights import stylegan1-ffhq-1024 PATH`")
#: Estimated size of the official FFHQ-1024 file (reference-facts §1; no published size).
_OFFICIAL_SIZE_HINT = "the official FFHQ-1024 pickle is about 324.5 MB"


@dataclass(frozen=True)
class PickleKind:
    """What the file checks say a network pickle is and how to get it again (the StyleGAN2 readers,
    :mod:`i2s.weights.tf_stylegan2` and :mod:`i2s.weights.ada_pickle`, pass their own)."""

    what: str = "StyleGAN v1 network pickle"
    refetch: str = REFETCH_HINT
    import_hint: str = _IMPORT_HINT
    size_hint: str = _OFFICIAL_SIZE_HINT
    typical_ops: str = "about 10,000"
    fetch_hint: str = "fetch it with `i2s weights fetch stylegan1-ffhq-1024`"


V1_PICKLE = PickleKind()


# --------------------------------------------------------------------------- unpickling


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global outside the allow-list; it was neither imported nor run."""

    def __init__(self, module: str, name: str, source: str = "<stream>") -> None:
        self.module, self.name, self.source = module, name, source
        hint = ""
        if str(module).split(".")[0] in ("torch_utils", "torch", "legacy"):
            hint = (" (this looks like a StyleGAN2-ADA/StyleGAN3 PyTorch pickle, whose loading runs code stored "
                    "in the file; i2s reads only NVIDIA's StyleGAN v1 TensorFlow pickle)")
        super().__init__(
            f"refusing to load {source}: it references the global {quote(f'{module}.{name}')}, which is not "
            "part of a StyleGAN v1 network pickle (allowed: dnnlib.tflib.network.Network and "
            f"numpy's array reconstruction){hint}; nothing was imported or executed. Use the official "
            "file (`i2s weights fetch stylegan1-ffhq-1024`)")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.module, self.name, self.source))


class _ReadOnlyClass(type):
    """Metaclass of the stand-ins: a pickle's BUILD cannot set attributes on the classes themselves."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise TypeError(f"{cls.__name__} is read-only")


class TFNetworkStub(metaclass=_ReadOnlyClass):
    """Stand-in for ``dnnlib.tflib.network.Network``.

    It deliberately has no ``__setstate__``: pickle's BUILD then copies the state dict
    (``version``, ``name``, ``static_kwargs``, ``components``, ``build_module_src``,
    ``build_func_name``, ``variables``) into the instance ``__dict__``, so those are plain
    attributes. ``build_module_src`` is kept as text and never executed.
    """

    def __repr__(self) -> str:
        d = self.__dict__
        n = len(d["variables"]) if isinstance(d.get("variables"), (list, tuple, dict)) else "?"
        comps = list(d["components"])[:8] if isinstance(d.get("components"), dict) else "?"
        return f"<TFNetworkStub {quote(d.get('name'))} version={quote(d.get('version'))} vars={n} components={quote(comps)}>"


class _NdarrayMarker(metaclass=_ReadOnlyClass):
    """Stand-in for ``numpy.ndarray``: only a marker argument of ``_reconstruct``; it builds nothing."""


class _ArrayRecord(metaclass=_ReadOnlyClass):
    """Stand-in for numpy's ``_reconstruct``: records its arguments and its ``__setstate__`` state.

    The real array is built afterwards by :func:`_build_array`, from a plain numeric dtype and
    a bytes object only, so no state from the file ever reaches numpy.
    """

    args: tuple[Any, ...] = ()
    state: Any = None

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _DtypeRecord(_ArrayRecord):
    """Stand-in for ``numpy.dtype``: records ``(typestr, align, copy)`` and the pickled state."""


class _ScalarRecord(_ArrayRecord):
    """Stand-in for numpy's ``scalar(dtype, bytes)`` (0-d values such as ``lod``)."""


#: The complete allow-list: ``(module, qualified name) -> stand-in``. Nothing here is numpy's.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("dnnlib.tflib.network", "Network"): TFNetworkStub,
    ("numpy.core.multiarray", "_reconstruct"): _ArrayRecord,
    ("numpy._core.multiarray", "_reconstruct"): _ArrayRecord,
    ("numpy", "ndarray"): _NdarrayMarker,
    ("numpy", "dtype"): _DtypeRecord,
    ("numpy.core.multiarray", "scalar"): _ScalarRecord,
    ("numpy._core.multiarray", "scalar"): _ScalarRecord,
}

#: numpy type codes an array of a network pickle may have (the official file: float32 only).
_PLAIN_CODES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"}
#: Opcodes a protocol 0-4 network pickle never needs (out-of-band buffers, the extension registry,
#: persistent ids); refused before unpickling.
_REFUSED_OPCODES = {"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER", "EXT1", "EXT2", "EXT4",
                    "PERSID", "BINPERSID"}
#: Most opcodes in a network pickle (the FFHQ-1024 file has about 9,000; each opcode may create an
#: object, so this bounds what unpickling allocates beyond the file's own bytes).
MAX_OPCODES = 1_000_000
#: Most characters of text in a network pickle (three copies of networks_stylegan.py, ~100 KB).
MAX_TEXT_CHARS = 16_000_000
#: Largest network pickle accepted: about 3x the official FFHQ-1024 file (324.5 MB).
MAX_PICKLE_BYTES = 1 << 30
#: Structure bounds of a dnnlib Network (the official Gs: 2 components, 1 level, ~200 variables).
_MAX_DEPTH, _MAX_NETWORKS, _MAX_VARIABLES, _MAX_NAME = 3, 16, 4096, 256


class SafeUnpickler(pickle.Unpickler):
    """Allow-list unpickler for TensorFlow-era dnnlib network pickles.

    ``find_class`` answers only the names in :data:`ALLOWED_GLOBALS`, each with an inert
    stand-in, and raises :class:`UnsafePickleError` for anything else *before* importing the
    module, so an ``os.system`` or ``builtins.exec`` reference cannot run, and no numpy code
    runs either (numpy's ``_reconstruct``/``dtype`` would accept crafted state). ``encoding='latin1'``
    as in NVlabs/stylegan ``training/misc.py`` ``load_pkl``.
    """

    def __init__(self, file: BinaryIO, *, source: str = "<stream>", encoding: str = "latin1") -> None:
        super().__init__(file, encoding=encoding)
        self.source = str(source)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickleError(str(module), str(name), self.source) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"{self.source}: unexpected persistent id {quote(pid)} in a network pickle")


def _html_title(head: bytes) -> str:
    m = re.search(rb"<title[^>]*>(.*?)</title>", head, re.I | re.S)
    if m:
        return quote(" ".join(m.group(1).decode("utf-8", "replace").split()), 120)
    return quote(head[:60])


def _check_file(path: Path, kind: PickleKind = V1_PICKLE) -> int:
    """Existence, size and magic-bytes checks before unpickling; returns the size."""
    if not path.exists():
        raise FileNotFoundError(f"StyleGAN pickle not found: {path}; {kind.fetch_hint}")
    if not path.is_file():
        raise WeightsFormatError(f"{path} is not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise WeightsFormatError(
            f"{path} is empty (0 bytes): the download did not complete; {kind.refetch}")
    if size > MAX_PICKLE_BYTES:
        raise WeightsFormatError(
            f"refusing to load {path}: {size:,} bytes, more than any {kind.what} needs "
            f"({MAX_PICKLE_BYTES:,} at most; {kind.size_hint})")
    with open(path, "rb") as f:
        head = f.read(4096)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") or b"<html" in text[:1024]:
        raise WeightsFormatError(
            f"{path}: this is an HTML page (Google Drive quota/confirmation page?), not the pickle: "
            f"title {_html_title(head)}, {size:,} bytes. Google Drive answers busy or large files with such "
            f"a page; {kind.import_hint}, or {kind.refetch}")
    if head.startswith(b"PK\x03\x04"):
        raise WeightsFormatError(
            f"{path} is a zip archive (a PyTorch checkpoint or a zipped download?), not NVIDIA's "
            "TensorFlow pickle; a converted i2s generator is read with i2s.weights.load_converted")
    if head.startswith(b"\x1f\x8b"):
        raise WeightsFormatError(f"{path} is gzip-compressed; decompress it first")
    if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= 5:
        raise WeightsFormatError(
            f"{path} is not a binary pickle (it starts with {head[:16]!r}, {size:,} bytes); {kind.refetch}")
    return size


def _scan_opcodes(stream: Any, path: Path, kind: PickleKind = V1_PICKLE,
                  refused: frozenset[str] | set[str] = _REFUSED_OPCODES) -> None:
    """Walk the pickle's opcodes (``pickletools.genops``, nothing is built) and refuse bombs.

    Refused: more than :data:`MAX_OPCODES` opcodes or :data:`MAX_TEXT_CHARS` characters of text,
    opcodes a network pickle never has (:data:`_REFUSED_OPCODES`), and memo indices beyond the
    number of objects stored so far (the C unpickler would size its memo table by the index:
    a 10-byte file could claim gigabytes). A truncated or garbled stream raises ``ValueError``.
    """
    stores = text = 0
    for count, (op, arg, _) in enumerate(pickletools.genops(stream), 1):
        if count > MAX_OPCODES:
            raise WeightsFormatError(f"refusing to load {path}: more than {MAX_OPCODES:,} pickle opcodes; "
                                     f"a {kind.what} has {kind.typical_ops}")
        if op.name in refused:
            raise WeightsFormatError(f"refusing to load {path}: it uses the pickle opcode {op.name}, which no "
                                     f"{kind.what} contains; nothing was loaded")
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if not isinstance(arg, int) or arg > stores:
                raise WeightsFormatError(f"refusing to load {path}: a pickle memo index {quote(arg)} beyond the "
                                         f"{stores:,} objects stored so far (a crafted file)")
            stores += 1
        elif op.name == "MEMOIZE":
            stores += 1
        elif isinstance(arg, str):
            text += len(arg)
            if text > MAX_TEXT_CHARS:
                raise WeightsFormatError(f"refusing to load {path}: more than {MAX_TEXT_CHARS:,} characters of "
                                         f"text, far more than a {kind.what} holds")


def _unpickle(path: Path, kind: PickleKind = V1_PICKLE, unpickler: Any = None) -> Any:
    """Scan, then unpickle ``path`` through a read-only memory map (no read preallocates), with
    :class:`SafeUnpickler` or ``unpickler(stream, source=...)``."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        _scan_opcodes(mm, path, kind)
        mm.seek(0)
        return (unpickler or SafeUnpickler)(mm, source=str(path)).load()


def _raw_bytes(data: Any, where: str) -> bytes:
    if isinstance(data, str):  # a Python 2 pickle read with encoding='latin1'
        data = data.encode("latin1")
    if type(data) is not bytes:
        raise WeightsFormatError(f"{where}: array data is a {type(data).__name__}, not bytes")
    return data


def _plain_dtype(rec: Any, where: str) -> np.dtype:
    """The numpy dtype a ``_DtypeRecord`` stands for, if it is a plain number type; else a refusal.

    Only the exact state numpy writes for a plain dtype is accepted: ``('f4', False, True)`` and
    ``(3, '<', None, None, None, -1, -1, 0)`` (structured, subarray and object dtypes, and any
    other flags, elsize or alignment, are refused).
    """
    if not isinstance(rec, _DtypeRecord):
        raise WeightsFormatError(f"{where}: the dtype is a {type(rec).__name__}, not a numpy dtype")
    args, state = rec.args, rec.state
    code = args[0] if len(args) == 3 and type(args[0]) is str else None
    if code not in _PLAIN_CODES:
        raise WeightsFormatError(f"{where}: dtype {quote(args)} is not a plain number type "
                                 f"(allowed: {', '.join(sorted(_PLAIN_CODES))})")
    order = state[1] if type(state) is tuple and len(state) == 8 else None
    plain = (type(state) is tuple and len(state) == 8 and state[0] == 3 and state[2:] == (None, None, None, -1, -1, 0)
             and type(state[5]) is int and type(state[7]) is int)
    if not plain or order not in ("<", ">", "=", "|") or (order == "|" and code[1] != "1"):
        raise WeightsFormatError(f"{where}: dtype {code} has the state {quote(state)}, not that of a plain "
                                 "number type (structured, subarray or object dtypes are refused)")
    return np.dtype(code if order in ("=", "|") else order + code)


def _build_array(rec: Any, where: str) -> np.ndarray:
    """A read-only numpy array over the bytes of an ``_ArrayRecord``/``_ScalarRecord``.

    The declared shape must be a tuple of at most 8 non-negative ints whose product times the
    item size is exactly the length of the data, so nothing is allocated: the array is a view of
    the bytes the pickle already holds.
    """
    if isinstance(rec, _ScalarRecord):
        if len(rec.args) != 2:
            raise WeightsFormatError(f"{where}: malformed numpy scalar")
        dtype, data = _plain_dtype(rec.args[0], where), _raw_bytes(rec.args[1], where)
        if len(data) != dtype.itemsize:
            raise WeightsFormatError(f"{where}: a {dtype} scalar with {len(data)} bytes of data")
        return np.frombuffer(data, dtype=dtype).reshape(())
    if not isinstance(rec, _ArrayRecord) or type(rec) is not _ArrayRecord:
        raise WeightsFormatError(f"{where}: a {type(rec).__name__}, not a numpy array")
    if not rec.args or rec.args[0] is not _NdarrayMarker:
        raise WeightsFormatError(f"{where}: numpy _reconstruct called for {quote(rec.args)}, not numpy.ndarray")
    state = rec.state
    if type(state) is tuple and len(state) == 5 and state[0] == 1:
        state = state[1:]
    if type(state) is not tuple or len(state) != 4:
        raise WeightsFormatError(f"{where}: malformed array state {quote(state)}")
    shape, dtype_rec, fortran, data = state
    if (type(shape) is not tuple or len(shape) > 8 or not all(type(d) is int and d >= 0 for d in shape)
            or type(fortran) is not bool):
        raise WeightsFormatError(f"{where}: malformed array shape {quote(shape)}")
    dtype, data = _plain_dtype(dtype_rec, where), _raw_bytes(data, where)
    count = math.prod(shape)
    if count * dtype.itemsize != len(data):
        raise WeightsFormatError(f"{where}: the array declares shape {quote(shape)} ({count:,} x {dtype}) but "
                                 f"holds {len(data):,} bytes")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


def _plain_scalar(value: Any) -> Any:
    """``plain_value``'s converter: a numpy scalar stand-in in static_kwargs becomes a Python number."""
    if isinstance(value, _ScalarRecord):
        return _build_array(value, "static_kwargs").item()
    return NotImplemented


def _check_stub(net: Any, what: str, path: Path, stack: tuple[int, ...] = (), done: set[int] | None = None,
                versions: tuple[int, ...] = (2, 3)) -> None:
    """Validate one Network stub and its components, and build its arrays (views, no copies).

    Every field is type-checked and bounded (names, static_kwargs, components nested at most
    :data:`_MAX_DEPTH` deep, no cycles, at most :data:`_MAX_NETWORKS` networks and
    :data:`_MAX_VARIABLES` variables each); each variable's value becomes a numpy array through
    :func:`_build_array`. ``done`` holds the networks already validated (one object may appear
    twice, e.g. as D and as Gs).
    """
    done = done if done is not None else set()
    if not isinstance(net, TFNetworkStub):
        raise WeightsFormatError(f"{path}: {what} is a {type(net).__name__}, not a dnnlib Network")
    if id(net) in done:
        return
    if id(net) in stack:
        raise WeightsFormatError(f"{path}: {what}: the components form a cycle")
    if len(stack) > _MAX_DEPTH or len(done) >= _MAX_NETWORKS:
        raise WeightsFormatError(f"{path}: {what}: components nested more than {_MAX_DEPTH} deep or more than "
                                 f"{_MAX_NETWORKS} networks (a StyleGAN v1 Gs has 2 components, 1 level)")
    state = net.__dict__
    missing = [k for k in ("version", "name", "static_kwargs", "components", "build_func_name", "variables")
               if k not in state]
    if missing:
        raise WeightsFormatError(f"{path}: {what} lacks the Network state keys {missing}")
    version = net.version
    if versions == (4,):
        if not (type(version) is int and version == 4):
            raise WeightsFormatError(
                f"{path}: {what} has network version {quote(version)}, not 4: not a StyleGAN2 (NVlabs/stylegan2) "
                "TensorFlow pickle" + (", but a StyleGAN v1 one" if version in (2, 3) else ""))
    elif type(version) is int and version == 4:
        raise WeightsFormatError(
            f"{path}: {what} is a version-4 network, i.e. a StyleGAN2 (NVlabs/stylegan2) pickle; "
            "only StyleGAN v1 pickles (network version 2 or 3, NVlabs/stylegan) are supported")
    elif type(version) is not int or version not in (2, 3):
        raise WeightsFormatError(
            f"{path}: {what} has network version {quote(version)}; only StyleGAN v1 pickles "
            "(version 2 or 3) are supported")
    for key in ("name", "build_func_name"):
        if type(state[key]) is not str or len(state[key]) > _MAX_NAME:
            raise WeightsFormatError(f"{path}: {what}.{key} is {quote(state[key])}, not a short string")
    if type(net.static_kwargs) is not dict or type(net.components) is not dict:
        raise WeightsFormatError(f"{path}: {what} has malformed static_kwargs/components "
                                 f"({type(net.static_kwargs).__name__}, {type(net.components).__name__})")
    try:
        state["static_kwargs"] = plain_value(net.static_kwargs, convert=_plain_scalar)
    except PlainValueError as e:
        raise WeightsFormatError(f"{path}: {what}.static_kwargs is not a small set of plain values: {e}") from None
    state["variables"] = _checked_variables(net.variables, f"{path}: {what}")
    for key, comp in net.components.items():
        if type(key) is not str or len(key) > _MAX_NAME:
            raise WeightsFormatError(f"{path}: {what} has a component named {quote(key)}")
        _check_stub(comp, f"{what}.components[{quote(key)}]", path, stack + (id(net),), done, versions)
    done.add(id(net))


def _checked_variables(variables: Any, where: str) -> list[tuple[str, np.ndarray]]:
    """``[(name, array)]`` from a Network's ``variables`` list (or dict), every entry checked."""
    if type(variables) is dict:
        variables = list(variables.items())
    if type(variables) not in (list, tuple) or len(variables) > _MAX_VARIABLES:
        raise WeightsFormatError(f"{where}: variables is a {type(variables).__name__} "
                                 f"{'of ' + format(len(variables), ',') + ' entries' if hasattr(variables, '__len__') else ''}"
                                 f", not a list of at most {_MAX_VARIABLES} (name, array) pairs")
    out = []
    for entry in variables:
        if type(entry) not in (list, tuple) or len(entry) != 2 or type(entry[0]) is not str or len(entry[0]) > _MAX_NAME:
            raise WeightsFormatError(f"{where}: malformed variables entry {quote(entry)}")
        out.append((entry[0], _build_array(entry[1], f"{where}: variable {quote(entry[0])}")))
    return out


def load_tf_pickle(path: str | os.PathLike[str], *, versions: tuple[int, ...] = (2, 3), kind: PickleKind = V1_PICKLE,
                   ) -> tuple[TFNetworkStub, TFNetworkStub, TFNetworkStub]:
    """Safely unpickle an official StyleGAN v1 network pickle into ``(G, D, Gs)`` stubs.

    Checks, in order: the file exists, is not empty or oversized, is not an HTML page or another
    container, starts like a binary pickle; its opcodes are scanned for bombs
    (:func:`_scan_opcodes`); it is unpickled with :class:`SafeUnpickler` (inert stand-ins only);
    and a 3-tuple of Network stubs of version 2 or 3 is validated (NVlabs/stylegan
    ``Network.__setstate__`` asserts ``state["version"] in [2, 3]``; StyleGAN2 writes 4), with
    every variable rebuilt as a read-only numpy array of a plain number type (:func:`_build_array`).

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: the file references a global outside the allow-list.
        WeightsFormatError: empty, HTML, truncated, corrupt, crafted, not ``(G, D, Gs)``, or StyleGAN2.

    ``versions=(4,)`` reads StyleGAN2 pickles instead (only version 4), for
    :mod:`i2s.weights.tf_stylegan2`; ``kind`` words the file checks' messages.
    """
    path = Path(path)
    size = _check_file(path, kind)
    try:
        obj = _unpickle(path, kind)
    except (UnsafePickleError, WeightsFormatError):
        raise
    except (EOFError, pickle.UnpicklingError, struct.error, ValueError, TypeError, IndexError,
            KeyError, AttributeError, OverflowError, MemoryError, RecursionError) as e:
        raise WeightsFormatError(
            f"{path} is truncated or corrupt ({size:,} bytes; {kind.size_hint}): "
            f"{type(e).__name__}: {quote(str(e))}; {kind.refetch}") from None
    if not isinstance(obj, (tuple, list)) or len(obj) != 3:
        desc = f"a {len(obj)}-tuple" if isinstance(obj, (tuple, list)) else f"a {type(obj).__name__}"
        raise WeightsFormatError(
            f"{path}: expected the official (G, D, Gs) 3-tuple of networks, found {desc}")
    done: set[int] = set()
    for what, net in zip(("G", "D", "Gs"), obj):
        _check_stub(net, what, path, done=done, versions=versions)
    return tuple(obj)  # type: ignore[return-value]


# --------------------------------------------------------------------------- variables


def collect_variables(net: TFNetworkStub) -> dict[str, np.ndarray]:
    """All variables of ``net`` and its components, keyed like stylegan2-ada ``_collect_tf_params``.

    ``net``'s own variables keep their local names (``dlatent_avg``, ``lod``); a component's
    are prefixed with its *key* in ``components`` (``synthesis/4x4/Const/const``,
    ``mapping/Dense0/weight``), recursively. 0-d values (``lod``) are 0-d arrays. ``net`` comes
    from :func:`load_tf_pickle`, which has validated it and built its (read-only) arrays.
    """
    out: dict[str, np.ndarray] = {}

    def visit(n: TFNetworkStub, prefix: str, stack: tuple[int, ...]) -> None:
        if id(n) in stack or len(stack) > _MAX_DEPTH:
            raise WeightsFormatError(f"network {quote(n.name)}: components form a cycle or nest too deep")
        for name, value in n.variables:
            key = prefix + name
            if key in out:
                raise WeightsFormatError(f"duplicate variable {quote(key)}")
            arr = value if isinstance(value, np.ndarray) else _build_array(value, f"variable {quote(key)}")
            if arr.dtype.kind not in "fiu":
                raise WeightsFormatError(f"variable {quote(key)} has non-numeric dtype {arr.dtype}")
            out[key] = arr
        for ckey, comp in n.components.items():
            visit(comp, f"{prefix}{ckey}/", stack + (id(n),))

    visit(net, "", ())
    return out

# --------------------------------------------------------------------------- config

# Keyword arguments of G_style / G_synthesis / G_mapping (networks_stylegan.py) that must keep
# their default value, because i2s.stylegan implements only that architecture.
_REQUIRED_VALUES: dict[str, Any] = {
    "use_styles": True, "const_input_layer": True, "use_noise": True, "nonlinearity": "lrelu",
    "use_wscale": True, "use_pixel_norm": False, "use_instance_norm": True, "dtype": "float32",
    "blur_filter": [1, 2, 1], "mapping_nonlinearity": "lrelu", "normalize_latents": True, "label_size": 0,
}
# Keyword arguments read into StyleGANConfig (or checked against the variables).
_CONFIG_KWARGS = {
    "resolution", "num_channels", "fmap_base", "fmap_decay", "fmap_max", "dlatent_size", "latent_size",
    "mapping_layers", "mapping_fmaps", "mapping_lrmul", "truncation_psi", "truncation_cutoff",
    "dlatent_avg_beta", "fused_scale", "structure", "dlatent_broadcast",
}
# Run-time or training-only arguments that do not change the weights or the architecture.
_RUNTIME_KWARGS = {
    "randomize_noise", "is_template_graph", "force_clean_graph", "truncation_psi_val",
    "truncation_cutoff_val", "style_mixing_prob", "is_training", "is_validation",
}

_PAPER_IGNORED_FIELDS = {"truncation_psi", "truncation_cutoff", "w_avg_beta"}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple, np.ndarray)) or isinstance(b, (list, tuple, np.ndarray)):
        try:
            return bool(np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))
        except (TypeError, ValueError):
            return False
    return bool(a == b)


def _shape(v: dict[str, np.ndarray], name: str) -> tuple[int, ...] | None:
    return tuple(v[name].shape) if name in v else None


_FLOAT_FIELDS = {"mapping_lrmul", "fmap_decay", "truncation_psi", "w_avg_beta"}


def _make_config(problems: list[str], **values: Any) -> StyleGANConfig | None:
    """``StyleGANConfig(**values)`` if every value has the right type and the architecture is
    within :func:`i2s.weights.limits.config_problems`'s bounds; else ``None``, with ``problems``
    extended. Nothing is built: the bounds are checked arithmetically."""
    before = len(problems)
    for key, value in values.items():
        if key in _FLOAT_FIELDS:
            if type(value) not in (int, float):
                problems.append(f"{key}={quote(value)} is not a number")
            else:
                values[key] = float(value)
        elif type(value) is not int:
            problems.append(f"{key}={quote(value)} is not an integer")
    if len(problems) > before:
        return None
    cfg = StyleGANConfig(**values)
    bounds = config_problems(cfg)
    problems.extend(bounds)
    return None if bounds else cfg


def config_from_stub(Gs: TFNetworkStub) -> StyleGANConfig:
    """Derive the :class:`StyleGANConfig` of a ``Gs`` stub from its ``static_kwargs`` and variables.

    Values come from the ``static_kwargs`` of ``Gs`` and of its ``synthesis``/``mapping``
    components (a component's own value wins, since it built that component), with the
    defaults of NVlabs/stylegan ``G_style``/``G_synthesis``/``G_mapping`` otherwise. What the
    variables determine (resolution, RGB channels, mapping sizes, per-resolution feature
    maps) is inferred from them when absent and checked against them when present.

    Raises:
        WeightsFormatError: not a ``G_style`` network, an architecture option that
            :mod:`i2s.stylegan` does not implement (``use_styles=False``, ``use_pixel_norm=True``,
            ``use_instance_norm=False``, ``const_input_layer=False``, ``use_noise=False``,
            ``blur_filter`` other than ``[1, 2, 1]``, ``label_size > 0``, ``structure='fixed'``,
            ...), or kwargs that contradict the variable shapes.
    """
    problems: list[str] = []
    if Gs.build_func_name != "G_style":
        problems.append(f"build_func_name is {quote(Gs.build_func_name)}, expected 'G_style' (a StyleGAN v1 generator)")
    comps = Gs.components
    for key, func in (("synthesis", "G_synthesis"), ("mapping", "G_mapping")):
        if key not in comps:
            problems.append(f"component {key!r} is missing (components: {quote(sorted(comps))})")
        elif comps[key].build_func_name != func:
            problems.append(f"component {key!r} is built by {quote(comps[key].build_func_name)}, expected {func!r}")
    if problems:
        raise WeightsFormatError("not a StyleGAN v1 generator (Gs): " + "; ".join(problems))
    synth_kw = {**Gs.static_kwargs, **comps["synthesis"].static_kwargs}
    map_kw = {**Gs.static_kwargs, **comps["mapping"].static_kwargs}
    for key in sorted(set(Gs.static_kwargs) & set(comps["synthesis"].static_kwargs)):
        if not _same(Gs.static_kwargs[key], comps["synthesis"].static_kwargs[key]):
            problems.append(f"{quote(key)} differs between Gs ({quote(Gs.static_kwargs[key])}) and its synthesis "
                            f"network ({quote(comps['synthesis'].static_kwargs[key])})")
    everything = {**synth_kw, **map_kw}

    # Architecture options i2s.stylegan does not implement.
    for key, required in _REQUIRED_VALUES.items():
        for where, kw in (("synthesis", synth_kw), ("mapping", map_kw)):
            if key in kw and not _same(kw[key], required):
                problems.append(f"{key}={quote(kw[key])} ({where}) is not supported (only {required!r})")
                break
    structure = synth_kw.get("structure", "auto")
    if structure not in ("auto", "linear", "recursive"):
        problems.append(f"structure={quote(structure)} is not supported ('auto', 'linear' or 'recursive'; "
                        "'fixed' has no ToRGB layers for lod > 0)")
    fused = synth_kw.get("fused_scale", "auto")
    if not (fused == "auto" or fused is True or fused is False):
        problems.append(f"fused_scale={quote(fused)} is not supported ('auto', True or False)")
    unknown = sorted(set(everything) - set(_REQUIRED_VALUES) - _CONFIG_KWARGS - _RUNTIME_KWARGS)
    if unknown:
        # networks_stylegan.py swallows unknown keyword arguments (**_kwargs), so they cannot
        # have changed the network; say so rather than fail.
        warnings.warn(f"ignoring unknown static_kwargs of the StyleGAN pickle: {quote(unknown, 200)}", stacklevel=2)

    v = collect_variables(Gs)

    def pick(kw: dict[str, Any], key: str, default: Any, inferred: Any = None) -> Any:
        if key in kw and kw[key] is not None:
            value = kw[key]
            if inferred is not None and not _same(value, inferred):
                problems.append(f"static_kwargs {key}={quote(value)} but the variables say {quote(inferred)}")
            return value
        return inferred if inferred is not None else default

    # Resolution: the largest RxR block.
    blocks = sorted({int(m.group(1)) for k in v if (m := re.match(r"synthesis/(\d+)x\1/", k))})
    resolution = pick(synth_kw, "resolution", 1024, blocks[-1] if blocks else None)
    rgb = _shape(v, "synthesis/ToRGB_lod0/weight")
    num_channels = pick(synth_kw, "num_channels", 3, rgb[-1] if rgb and len(rgb) == 4 else None)

    # Mapping network sizes.
    dense = sorted(int(m.group(1)) for k in v if (m := re.fullmatch(r"mapping/Dense(\d+)/weight", k)))
    mapping_layers = pick(map_kw, "mapping_layers", 8, len(dense) or None)
    d0 = _shape(v, "mapping/Dense0/weight")
    dl = _shape(v, f"mapping/Dense{dense[-1]}/weight") if dense else None
    latent_size = pick(map_kw, "latent_size", 512, d0[0] if d0 and len(d0) == 2 else None)
    mapping_fmaps = pick(map_kw, "mapping_fmaps", 512,
                         d0[1] if d0 and len(d0) == 2 and len(dense) > 1 else None)
    style_w = _shape(v, "synthesis/4x4/Const/StyleMod/weight")
    dlatent_syn = pick(synth_kw, "dlatent_size", 512, style_w[0] if style_w and len(style_w) == 2 else None)
    dlatent_map = pick(map_kw, "dlatent_size", 512, dl[1] if dl and len(dl) == 2 else None)
    if dlatent_syn != dlatent_map:
        problems.append(f"dlatent_size differs: synthesis {dlatent_syn}, mapping {dlatent_map}")

    if isinstance(resolution, (int, np.integer)) and resolution >= 4 and 2 ** int(math.log2(resolution)) == resolution:
        resolution = int(resolution)
    else:
        problems.append(f"resolution={quote(resolution)} is not a power of two >= 4 (non-square networks such "
                        "as the 512x384 cars model are not supported)")
        resolution = 1024
    num_layers = 2 * int(math.log2(resolution)) - 2
    broadcast = map_kw.get("dlatent_broadcast")
    if broadcast is not None and broadcast != num_layers:
        problems.append(f"dlatent_broadcast={quote(broadcast)} but a {resolution}px network has {num_layers} layers")

    # fused_scale (networks_stylegan.py upscale2d_conv2d): 'auto' fuses when the output is
    # >= 128 px, True always, False never.
    fused_min_res = 8 if fused is True else (2 * resolution if fused is False else 128)
    psi = Gs.static_kwargs.get("truncation_psi", 0.7)
    cutoff = Gs.static_kwargs.get("truncation_cutoff", 8)
    cfg = _make_config(problems, resolution=resolution, num_channels=num_channels, z_dim=latent_size,
                       w_dim=dlatent_syn, mapping_layers=mapping_layers, mapping_fmaps=mapping_fmaps,
                       mapping_lrmul=map_kw.get("mapping_lrmul", 0.01), fmap_base=synth_kw.get("fmap_base", 8192),
                       fmap_decay=synth_kw.get("fmap_decay", 1.0), fmap_max=synth_kw.get("fmap_max", 512),
                       fused_min_res=fused_min_res, truncation_psi=1.0 if psi is None else psi,
                       truncation_cutoff=num_layers if cutoff is None else cutoff,
                       w_avg_beta=Gs.static_kwargs.get("dlatent_avg_beta", 0.995))
    if cfg is not None:
        # Feature maps per resolution (fmap_base / fmap_decay / fmap_max) against the variables.
        bad = []
        for log2r in range(2, int(math.log2(resolution)) + 1):
            r = 2**log2r
            name = "synthesis/4x4/Conv/bias" if r == 4 else f"synthesis/{r}x{r}/Conv1/bias"
            got = _shape(v, name)
            if got is not None and got != (cfg.channels(r),):
                bad.append(f"{r}x{r}: {got[0] if len(got) == 1 else quote(got)} (expected {cfg.channels(r)})")
        if bad:
            problems.append(f"feature maps from fmap_base={cfg.fmap_base}, fmap_decay={cfg.fmap_decay}, "
                            f"fmap_max={cfg.fmap_max} do not match the variables: " + ", ".join(bad))
    if problems:
        raise WeightsFormatError("unsupported or inconsistent StyleGAN v1 network: " + "; ".join(problems))
    assert cfg is not None
    return cfg


def is_paper_layout(cfg: StyleGANConfig) -> bool:
    """True if ``cfg`` is the architecture of the paper's generator (StyleGAN v1, FFHQ, 1024 px).

    Truncation settings are ignored. Note that the CelebA-HQ 1024 network has the same layout.
    """
    ref = StyleGANConfig.ffhq1024()
    return all(getattr(cfg, f.name) == getattr(ref, f.name)
               for f in fields(StyleGANConfig) if f.name not in _PAPER_IGNORED_FIELDS)


# --------------------------------------------------------------------------- conversion

_Transform = str  # "id": as is; "T": [in,out] -> [out,in]; "conv": [kh,kw,in,out] -> [out,in,kh,kw]


def _conversion_plan(cfg: StyleGANConfig) -> list[tuple[str, str, _Transform]]:
    """``(our state-dict key, TF variable name, transform)`` for every tensor of ``StyleGAN(cfg)``."""
    plan: list[tuple[str, str, _Transform]] = []
    for i in range(cfg.mapping_layers):
        plan += [(f"mapping.layers.{i}.weight", f"mapping/Dense{i}/weight", "T"),
                 (f"mapping.layers.{i}.bias", f"mapping/Dense{i}/bias", "id")]
    plan.append(("mapping.w_avg", "dlatent_avg", "id"))

    def epilogue(k: int, scope: str) -> None:
        p, s = f"synthesis.layers.{k}.epilogue", f"synthesis/{scope}"
        plan.extend([(f"{p}.noise_strength", f"{s}/Noise/weight", "id"),
                     (f"{p}.bias", f"{s}/bias", "id"),
                     (f"{p}.style.weight", f"{s}/StyleMod/weight", "T"),
                     (f"{p}.style.bias", f"{s}/StyleMod/bias", "id"),
                     (f"{p}.noise_const", f"synthesis/noise{k}", "id")])

    plan.append(("synthesis.layers.0.const", "synthesis/4x4/Const/const", "id"))
    epilogue(0, "4x4/Const")
    plan.append(("synthesis.layers.1.conv.weight", "synthesis/4x4/Conv/weight", "conv"))
    epilogue(1, "4x4/Conv")
    for log2r in range(3, cfg.log2_res + 1):
        r = 2**log2r
        for k, scope in ((2 * log2r - 4, f"{r}x{r}/Conv0_up"), (2 * log2r - 3, f"{r}x{r}/Conv1")):
            plan.append((f"synthesis.layers.{k}.conv.weight", f"synthesis/{scope}/weight", "conv"))
            epilogue(k, scope)
    last = cfg.log2_res - 2
    for b in range(last + 1):
        plan += [(f"synthesis.torgb.{b}.conv.weight", f"synthesis/ToRGB_lod{last - b}/weight", "conv"),
                 (f"synthesis.torgb.{b}.bias", f"synthesis/ToRGB_lod{last - b}/bias", "id")]
    return plan


def _tf_shape(ours: tuple[int, ...], transform: _Transform) -> tuple[int, ...]:
    if transform == "T":
        return (ours[1], ours[0])
    if transform == "conv":
        o, i, kh, kw = ours
        return (kh, kw, i, o)
    return ours


def _to_torch(arr: np.ndarray, transform: _Transform) -> torch.Tensor:
    t = torch.from_numpy(np.array(arr, dtype=np.float32, copy=True))
    if transform == "T":
        t = t.t()
    elif transform == "conv":
        t = t.permute(3, 2, 0, 1)
    return t.contiguous()


#: TF variables that are checked but not stored: the progressive-growing level of detail.
_LOD_VARIABLES = ("lod", "synthesis/lod")


def convert_gs(Gs: TFNetworkStub, cfg: StyleGANConfig | None = None) -> dict[str, torch.Tensor]:
    """Convert every variable of a ``Gs`` stub into the state dict of ``StyleGAN(cfg)``.

    The mapping of names (NVlabs/stylegan ``networks_stylegan.py`` -> :mod:`i2s.stylegan`):
    ``mapping/Dense{i}/weight`` (transposed) -> ``mapping.layers.{i}.weight``;
    ``dlatent_avg`` -> ``mapping.w_avg``; style layer ``k`` (0: ``4x4/Const``, 1: ``4x4/Conv``,
    ``2*log2(r)-4``: ``{r}x{r}/Conv0_up``, ``2*log2(r)-3``: ``{r}x{r}/Conv1``) ->
    ``synthesis.layers.{k}`` with ``conv.weight`` (``permute(3, 2, 0, 1)``),
    ``epilogue.{noise_strength, bias, style.weight (transposed), style.bias}`` and
    ``epilogue.noise_const`` <- ``noise{k}``; ``ToRGB_lod{L-b}`` -> ``synthesis.torgb.{b}``.
    Both ``lod`` variables must be 0 (a fully grown network) and are not stored.

    Raises:
        WeightsFormatError: listing *all* missing, unexpected and wrongly shaped variables
            (and a non-zero ``lod``) at once.
    """
    cfg = cfg or config_from_stub(Gs)
    tf = collect_variables(Gs)
    plan, ours = check_gs_variables(tf, cfg)
    sd = {key: _to_torch(tf[name], transform) for key, name, transform in plan}
    return {k: sd[k] for k in ours}


def check_gs_variables(tf: dict[str, np.ndarray], cfg: StyleGANConfig
                       ) -> tuple[list[tuple[str, str, _Transform]], dict[str, tuple[int, ...]]]:
    """Check the variables of a ``Gs`` against the layout ``StyleGAN(cfg)`` expects; build nothing.

    Every variable of the conversion plan must exist with exactly the expected shape and a float
    dtype (so that converting allocates only what the bounded architecture needs), the two ``lod``
    scalars must be 0, and no other variable may exist. Returns ``(plan, our shapes)``.

    Raises:
        WeightsFormatError: listing all missing, unexpected and wrongly shaped variables at once.
    """
    plan = _conversion_plan(cfg)
    with torch.device("meta"):
        ours = {k: tuple(t.shape) for k, t in StyleGAN(cfg).state_dict().items()}
    planned = [k for k, _, _ in plan]
    if set(planned) != set(ours) or len(planned) != len(ours):
        raise RuntimeError(  # a bug in this module or in i2s.stylegan, not in the file
            "i2s.stylegan.StyleGAN and the converter disagree on parameter names: "
            f"not converted {sorted(set(ours) - set(planned))}, unknown {sorted(set(planned) - set(ours))}")

    missing: list[str] = []
    misshaped: list[str] = []
    for key, name, transform in plan:
        if name not in tf:
            missing.append(name)
            continue
        want = _tf_shape(ours[key], transform)
        arr = tf[name]
        if tuple(arr.shape) != want or arr.dtype.kind != "f":
            misshaped.append(f"{name}: {quote(tuple(arr.shape))} {arr.dtype}, expected {want} float")
    lod_problems = []
    for name in _LOD_VARIABLES:
        if name not in tf:
            missing.append(name)
        elif tf[name].size != 1:
            misshaped.append(f"{name}: {quote(tuple(tf[name].shape))}, expected a scalar")
        elif float(tf[name].reshape(())) != 0.0:
            lod_problems.append(f"{name} = {float(tf[name].reshape(()))}")
    used = {name for _, name, _ in plan} | set(_LOD_VARIABLES)
    extra = sorted(set(tf) - used)

    errors = []
    if missing:
        errors.append(f"{len(missing)} missing: {_some(missing)}")
    if extra:
        errors.append(f"{len(extra)} unexpected: {_some([quote(x) for x in extra])}")
    if misshaped:
        errors.append(f"{len(misshaped)} with a wrong shape or dtype: {_some(misshaped, '; ')}")
    if lod_problems:
        errors.append("not a fully grown network (progressive-growing level of detail must be 0): "
                      + ", ".join(lod_problems))
    if errors:
        raise WeightsFormatError(
            f"the Gs variables do not match a {cfg.resolution}px StyleGAN v1 generator "
            f"(fmap_base={cfg.fmap_base}, fmap_max={cfg.fmap_max}, mapping_layers={cfg.mapping_layers}): "
            + " | ".join(errors))
    return plan, ours


def _some(items: list[str], sep: str = ", ", n: int = 20) -> str:
    """The first ``n`` items joined, and how many more there are."""
    more = f"{sep}... ({len(items) - n} more)" if len(items) > n else ""
    return sep.join(items[:n]) + more


def _sha256(path: Path) -> str:
    from ..io import sha256_file

    return sha256_file(path)


def convert_pickle(path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None,
                   *, name: str | None = None) -> StyleGAN:
    """Convert NVIDIA's StyleGAN v1 pickle (``Gs``) into an :class:`i2s.stylegan.StyleGAN`.

    ``G.info`` is ``{"name", "tier", "source", "source_sha256", ...}``: ``tier`` is
    ``"paper"`` for the FFHQ-1024 layout (see :func:`is_paper_layout`; the layout alone
    cannot tell FFHQ from CelebA-HQ 1024) and ``"custom"`` otherwise; ``name`` defaults to
    ``"stylegan1-ffhq-1024"`` for that layout and ``"stylegan1-<file stem>"`` otherwise.
    With ``out_path`` the result is also saved atomically in the ``"i2s-stylegan1"``
    format (see :func:`i2s.weights.converted.load_converted`).

    When ``path`` is the cache copy of a registry checkpoint (``i2s_home()/weights/...``), its
    sha256 must agree with the registry's confirmed hash/prefix or the value recorded when it was
    fetched or imported, else :class:`i2s.weights.records.HashMismatch` is raised before unpickling.
    """
    path = Path(path)
    _check_file(path)
    sha256 = _sha256(path)
    from .records import check_cached_hash  # noqa: PLC0415 - stdlib only, but keep imports lazy

    check_cached_hash(path, sha256)  # a cached registry file must match its confirmed/recorded sha256
    _, _, Gs = load_tf_pickle(path)
    with _naming(path):
        cfg = config_from_stub(Gs)
        sd = convert_gs(Gs, cfg)
    paper = is_paper_layout(cfg)
    info: dict[str, Any] = {
        "name": name or ("stylegan1-ffhq-1024" if paper else f"stylegan1-{path.stem}"),
        "tier": "paper" if paper else "custom",
        "source": str(path),
        "source_sha256": sha256,
        "source_format": "nvlabs-stylegan1-tf-pickle",
        "tf_network_version": int(Gs.version),
        "tf_static_kwargs": {k: quote(v, 200) for k, v in Gs.static_kwargs.items()},
    }
    del Gs
    return build_from_state_dict(cfg, sd, info, save_to=out_path)


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Re-raise a :class:`WeightsFormatError` about a network with the file's name in front."""
    try:
        yield
    except WeightsFormatError as e:
        if str(path) in str(e):
            raise
        raise WeightsFormatError(f"{path}: {e}") from None


def validate_pickle(path: str | os.PathLike[str]) -> StyleGANConfig:
    """Check that ``path`` is a StyleGAN v1 pickle this kit converts, without converting it.

    Everything :func:`convert_pickle` checks (safe unpickling, bounded architecture, every
    variable's name, shape and dtype, ``lod`` 0) runs; no tensor is built. Used by
    ``i2s weights fetch``/``import`` before a file is installed or its sha256 is recorded.

    Raises:
        UnsafePickleError, WeightsFormatError: as :func:`convert_pickle`.
    """
    path = Path(path)
    _, _, Gs = load_tf_pickle(path)
    with _naming(path), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown kwargs are reported when the file is converted
        cfg = config_from_stub(Gs)
        check_gs_variables(collect_variables(Gs), cfg)
    return cfg
