"""Bounds for untrusted files: quoting their contents, plain values, architectures, torch zips.

A weight, latent or checkpoint file from a mirror or a colleague may be crafted. Whatever it
declares, what the kit allocates or prints must be bounded by what a real file of that kind
needs. This module holds the checks every loader shares:

* :func:`quote`: a file's text in a message, escaped (``ascii()``-style: no ANSI escapes, no
  newlines) and at most :data:`QUOTE_LIMIT` characters, whatever its size or nesting;
* :func:`plain_value`: a keyword-argument value that is only ``None``/bool/int/float/str and
  small lists, tuples and dicts of those, visited with a node budget (no "billion laughs");
* :func:`config_problems`: a :class:`~i2s.stylegan.StyleGANConfig` within the sizes StyleGAN v1
  uses (at most 1024 px, :data:`MAX_GENERATOR_ELEMENTS` values in all), checked without
  allocating anything;
* :func:`check_torch_zip`: a ``torch.save`` zip whose records are stored uncompressed (as
  ``torch.save`` writes them) and whose declared sizes fit a limit, checked before
  ``torch.load`` inflates or allocates anything.
"""

from __future__ import annotations

import itertools
import math
import os
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["WeightsFormatError", "QUOTE_LIMIT", "quote", "plain_value", "PlainValueError", "first_line", "bounds_problems",
           "legacy_torch_globals", "safe_torch_load",
           "MAX_RESOLUTION", "MAX_GENERATOR_ELEMENTS", "config_problems", "generator_elements",
           "check_torch_zip", "MAX_PICKLE_RECORD"]


class WeightsFormatError(ValueError):
    """A weights file exists but is not what it should be (wrong kind, empty, truncated, ...)."""


#: Longest quotation of file contents in a message (characters, after escaping).
QUOTE_LIMIT = 80


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``value`` as escaped, bounded text for a one-line message.

    Strings and bytes are shown with ``ascii()`` (so ANSI escapes and newlines appear as
    ``\\x1b`` and ``\\n``); containers are walked with a budget, never fully; anything else is
    named by its type. The result has at most ``limit`` characters (ending in ``...``).
    """
    out: list[str] = []
    budget = [limit + 4]

    def emit(text: str) -> bool:
        out.append(text[: budget[0]])
        budget[0] -= len(text)
        return budget[0] > 0

    def walk(v: Any, depth: int) -> bool:
        if isinstance(v, (str, bytes)):
            return emit(ascii(v[: limit + 4]))
        if v is None or isinstance(v, (bool, float)):
            return emit(ascii(v))
        if isinstance(v, int):
            return emit(str(v) if v.bit_length() < 200 else f"<int of {v.bit_length()} bits>")
        if isinstance(v, (list, tuple, dict)):
            if depth > 4:
                return emit("...")
            opening, closing = {list: "[]", tuple: "()", dict: "{}"}.get(type(v), "[]")
            if not emit(opening):
                return False
            items = list(itertools.islice(v.items(), 16)) if isinstance(v, dict) else list(v[:16])
            for k, item in enumerate(items):
                if k and not emit(", "):
                    return False
                if isinstance(v, dict):
                    if not (walk(item[0], depth + 1) and emit(": ") and walk(item[1], depth + 1)):
                        return False
                elif not walk(item, depth + 1):
                    return False
            if len(v) > 16 and not emit(", ..."):
                return False
            if type(v) is tuple and len(v) == 1 and not emit(","):
                return False
            return emit(closing)
        return emit(f"<{type(v).__name__}>")

    walk(value, 0)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PlainValueError(ValueError):
    """A value is not a small plain Python value (see :func:`plain_value`)."""


def plain_value(value: Any, *, max_nodes: int = 1000, max_depth: int = 8, max_str: int = 4096,
                convert: Any = None) -> Any:
    """Check that ``value`` is a small plain value and return it (with ``convert`` applied).

    Allowed: ``None``, bool, int (< 2**63 in magnitude), float, str (at most ``max_str``
    characters), and lists, tuples and dicts (str keys) of those, at most ``max_depth`` deep and
    ``max_nodes`` visits in all. Shared references are counted at every visit, so a pickle's
    "billion laughs" (lists of references to lists) is refused after ``max_nodes`` steps, as is a
    cycle (by its depth). ``convert(obj)`` may turn other objects into plain values (for
    example a numpy scalar stand-in into a float); it returns ``NotImplemented`` to refuse.

    Raises:
        PlainValueError: saying what was found where.
    """
    nodes = [0]

    def walk(v: Any, depth: int) -> Any:
        nodes[0] += 1
        if nodes[0] > max_nodes:
            raise PlainValueError(f"more than {max_nodes} values (a nested or self-referencing structure)")
        if depth > max_depth:
            raise PlainValueError(f"nested more than {max_depth} deep (or a cycle)")
        if v is None or isinstance(v, (bool, float)):
            return v
        if isinstance(v, int):
            if abs(v) >= 2**63:
                raise PlainValueError(f"an integer of {v.bit_length()} bits")
            return int(v)
        if isinstance(v, str):
            if len(v) > max_str:
                raise PlainValueError(f"a string of {len(v):,} characters")
            return v
        if type(v) in (list, tuple):
            return type(v)(walk(x, depth + 1) for x in v)
        if type(v) is dict:
            out = {}
            for k, x in v.items():
                if not isinstance(k, str):
                    raise PlainValueError(f"a dict key of type {type(k).__name__}")
                out[walk(k, depth + 1)] = walk(x, depth + 1)
            return out
        if convert is not None:
            c = convert(v)
            if c is not NotImplemented:
                return c
        raise PlainValueError(f"an object of type {type(v).__name__}")

    return walk(value, 0)


# --------------------------------------------------------------------------- architectures

#: Largest output resolution: StyleGAN v1's published networks stop at 1024 px.
MAX_RESOLUTION = 1024
#: Most values (parameters and buffers) a generator may hold: about 2.3x the paper's
#: FFHQ-1024 generator (29.0 M: 26.2 M trainable, 2.8 M noise maps), i.e. 256 MiB of float32.
MAX_GENERATOR_ELEMENTS = 64 * 2**20
#: Upper bounds of the integer fields of StyleGANConfig (twice the paper's widths, four times its
#: mapping depth; the paper: 3 channels, 512, 8 layers, 512, 8192, 512).
_INT_BOUNDS = {"num_channels": (1, 4), "z_dim": (1, 1024), "w_dim": (1, 1024), "mapping_layers": (1, 32),
               "mapping_fmaps": (1, 1024), "fmap_base": (1, 2**16), "fmap_max": (1, 1024),
               "fused_min_res": (1, 2**16), "truncation_cutoff": (0, 64)}
_FLOAT_BOUNDS = {"mapping_lrmul": (1e-6, 1e3), "fmap_decay": (-8.0, 8.0), "truncation_psi": (-16.0, 16.0),
                 "w_avg_beta": (0.0, 1.0)}


def bounds_problems(cfg: Any, int_bounds: dict[str, tuple[int, int]], float_bounds: dict[str, tuple[float, float]],
                    max_resolution: int) -> list[str]:
    """The checks every generator config shares: a power-of-two ``resolution`` in
    4..``max_resolution``, and each named field an integer (a finite number) within its bounds."""
    problems: list[str] = []
    res = getattr(cfg, "resolution", None)
    if not (type(res) is int and 4 <= res <= max_resolution and res & (res - 1) == 0):
        problems.append(f"resolution={quote(res)} is not a power of two from 4 to {max_resolution}")
    for name, (lo, hi) in int_bounds.items():
        v = getattr(cfg, name, None)
        if not (type(v) is int and lo <= v <= hi):
            problems.append(f"{name}={quote(v)} is not an integer from {lo} to {hi}")
    for name, (lo, hi) in float_bounds.items():
        v = getattr(cfg, name, None)
        if not (type(v) in (int, float) and math.isfinite(v) and lo <= v <= hi):
            problems.append(f"{name}={quote(v)} is not a number from {lo:g} to {hi:g}")
    return problems


def config_problems(cfg: Any) -> list[str]:
    """What makes ``cfg`` (a StyleGANConfig) too large or impossible; ``[]`` when it is fine.

    Checked arithmetically, before any module or tensor exists: field types and ranges, a
    power-of-two resolution in 4..:data:`MAX_RESOLUTION`, at least one feature map at every
    resolution, and at most :data:`MAX_GENERATOR_ELEMENTS` values in all.
    """
    problems = bounds_problems(cfg, _INT_BOUNDS, _FLOAT_BOUNDS, MAX_RESOLUTION)
    if problems:
        return problems
    empty = [r for r in _resolutions(cfg.resolution) if cfg.channels(r) < 1]
    if empty:
        problems.append(f"fmap_base={cfg.fmap_base}, fmap_decay={cfg.fmap_decay} leave no feature maps at "
                        f"{empty[0]}x{empty[0]}")
        return problems
    n = generator_elements(cfg)
    if n > MAX_GENERATOR_ELEMENTS:
        problems.append(f"the architecture needs {n:,} values, more than the {MAX_GENERATOR_ELEMENTS:,} any "
                        "StyleGAN v1 generator this kit runs may have (the paper's has 29.0 M)")
    return problems


def _resolutions(resolution: int) -> list[int]:
    return [2**k for k in range(2, int(math.log2(resolution)) + 1)]


def generator_elements(cfg: Any) -> int:
    """Number of values in the state dict of ``StyleGAN(cfg)``, computed without building it."""
    n = 0
    for i in range(cfg.mapping_layers):
        fin = cfg.z_dim if i == 0 else cfg.mapping_fmaps
        fout = cfg.w_dim if i == cfg.mapping_layers - 1 else cfg.mapping_fmaps
        n += fin * fout + fout
    n += cfg.w_dim  # w_avg

    def epilogue(c: int, r: int) -> int:  # noise strength, bias, style dense (2c x w + 2c), noise map
        return 2 * c + 2 * c * cfg.w_dim + 2 * c + r * r

    cin = cfg.channels(4)
    n += cin * 16 + epilogue(cin, 4) + 9 * cin * cin + epilogue(cin, 4)
    n += cin * cfg.num_channels + cfg.num_channels
    for r in _resolutions(cfg.resolution)[1:]:
        c = cfg.channels(r)
        n += 9 * cin * c + epilogue(c, r) + 9 * c * c + epilogue(c, r)
        n += c * cfg.num_channels + cfg.num_channels
        cin = c
    return n


# --------------------------------------------------------------------------- torch zip files

#: Largest pickle record (``data.pkl``) in a torch zip: the kit's files hold a few KB of it
#: (a generator's ~200 tensor references and info); unpickling amplifies it at most ~64x.
MAX_PICKLE_RECORD = 1 << 20
#: Most records in a torch zip (a generator has ~200 tensors).
_MAX_RECORDS = 10_000


def check_torch_zip(path: str | os.PathLike[str], *, max_bytes: int, what: str,
                    error: type[Exception] = WeightsFormatError,
                    max_pickle: int = MAX_PICKLE_RECORD) -> None:
    """Refuse a ``torch.save`` zip whose loading could take more memory than ``max_bytes``.

    Reads only the zip's central directory (``zipfile``): every record must be stored without
    compression, as ``torch.save`` writes it (a deflated record could inflate 1000x inside
    ``torch.load``), the records must add up to at most ``max_bytes`` and to no more than the
    file holds, and the pickle record to at most ``max_pickle`` bytes. A file that is not a zip
    is left to the caller.

    Raises:
        error: (``WeightsFormatError`` by default) one line naming the file and the limit.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise error(f"refusing to load {path}: {size:,} bytes, more than any {what} needs "
                    f"({max_bytes:,} bytes at most)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # not a (readable) zip: torch.load reports it, or the caller refuses it
    if len(infos) > _MAX_RECORDS:
        raise error(f"refusing to load {path}: {len(infos):,} records, more than any {what} has")
    total = 0
    for info in infos:
        name = quote(info.filename, 60)
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise error(f"refusing to load {path}: its record {name} is compressed (method "
                        f"{info.compress_type}, {info.compress_size:,} -> {info.file_size:,} bytes); torch.save "
                        f"stores records uncompressed, so this {what} was not written by it")
        if info.filename.endswith(".pkl") and info.file_size > max_pickle:
            raise error(f"refusing to load {path}: its pickle record {name} has {info.file_size:,} bytes, "
                        f"more than a {what} needs ({max_pickle:,})")
        total += info.file_size
    if total > min(size, max_bytes):
        raise error(f"refusing to load {path}: its records declare {total:,} bytes, more than the file "
                    f"({size:,} bytes) or a {what} ({max_bytes:,} bytes at most) can hold")


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's text, escaped and at most ``limit`` characters."""
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    text = ascii(lines[0])[1:-1] if lines else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def legacy_torch_globals(path: str | os.PathLike[str], max_ops: int = 1_000_000) -> list[str]:
    """The globals named by the pickles of a pre-1.6 (non-zip) ``torch.save`` file, read without
    unpickling (``pickletools.genops`` over the leading pickles; the raw storages after them are
    not read). Used to say why such a file is refused."""
    import mmap
    import pickletools

    found: list[str] = []
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        ops = 0
        for _ in range(5):  # magic number, protocol, sys info, the object, the storage keys
            try:
                for op, arg, _pos in pickletools.genops(mm):
                    ops += 1
                    if ops > max_ops:
                        return found
                    if op.name == "GLOBAL" and isinstance(arg, str):
                        found.append(arg.replace(" ", "."))
            except (ValueError, EOFError, IndexError, TypeError, UnicodeDecodeError):
                break
    return found


def unsafe_global(e: BaseException) -> str:
    """What torch's ``weights_only`` unpickler refused, from its message, quoted and bounded."""
    import re

    m = re.search(r"GLOBAL ([\w.]+)", str(e))
    return f"the Python global {quote(m.group(1))}" if m else "pickle instructions a tensor file never needs"


def safe_torch_load(path: str | os.PathLike[str], *, max_bytes: int, what: str,
                    error: type[Exception] = ValueError, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` of a kit-written file, bounded before it starts.

    The file must exist, be a ``torch.save`` zip (the legacy format declares its storage sizes only
    inside its pickle, so its allocations cannot be bounded beforehand) and pass
    :func:`check_torch_zip` with ``max_bytes``. Any failure is one line naming the file.

    Raises:
        FileNotFoundError: no such file.
        error: the file is not such a zip, too large, compressed, or ``torch.load`` refused it.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if not path.is_file():
        raise error(f"{path} is not a regular file")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        raise error(f"{path} is not a {what} (not a torch.save zip file: it starts with {head!r})")
    check_torch_zip(path, max_bytes=max_bytes, what=what, error=error)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refused something: nothing was executed
        raise error(f"refusing to load {path}: it references {unsafe_global(e)}, not only tensors and plain "
                    f"values, so it is not a {what} written by i2s; nothing was executed") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for damaged files
        raise error(f"{path} is not a readable {what} ({type(e).__name__}: {first_line(e)})") from None


def load_kit_file(path: str | os.PathLike[str], max_bytes: int, what: str) -> Any:
    """``torch.load(weights_only=True)`` of a kit-written file, size-checked before it starts
    (:func:`safe_torch_load`); any failure is one ``ValueError`` line, a missing file a
    ``FileNotFoundError``."""
    try:
        return safe_torch_load(path, max_bytes=max_bytes, what=what, error=ValueError)
    except FileNotFoundError:
        raise
    except ValueError as e:
        raise ValueError(f"{path}: not a readable {what} ({e})") from None
