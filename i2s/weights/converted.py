"""The kit's own generator file formats (``"i2s-stylegan1"``, ``"i2s-stylegan2"``) and their loader.

A converted file is a plain ``torch.save`` of a dict that ``torch.load(...,
weights_only=True)`` can read without executing code::

    {"format": "i2s-stylegan1", "format_version": 1,
     "config": StyleGANConfig.to_dict(), "state_dict": {name: tensor}, "info": {...}}

It is written by :func:`i2s.weights.tf_pickle.convert_pickle` from NVIDIA's official
StyleGAN v1 pickle and read here, with no dependency on the pickle reader, so that
``i2s.load_generator`` can import this module alone. ``"i2s-stylegan2"`` is the same dict for a
:class:`i2s.stylegan2.StyleGAN2` (``config`` a ``StyleGAN2Config``), written by the StyleGAN2
readers (:mod:`i2s.weights.ada_pickle`, :mod:`i2s.weights.tf_stylegan2`).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from ..stylegan import StyleGAN, StyleGANConfig
from ..stylegan2 import StyleGAN2, StyleGAN2Config
from ..stylegan2 import config_problems as stylegan2_config_problems
from .limits import (MAX_GENERATOR_ELEMENTS, PlainValueError, WeightsFormatError, check_torch_zip, config_problems,
                     first_line, legacy_torch_globals, plain_value, quote, unsafe_global)

__all__ = ["FORMAT", "FORMAT_STYLEGAN2", "FORMAT_VERSION", "WeightsFormatError", "UnsafeWeightsError", "load_converted",
           "save_converted", "build_from_state_dict"]

#: Value of the ``"format"`` key of a converted generator file.
FORMAT = "i2s-stylegan1"
#: The same for a StyleGAN2 generator.
FORMAT_STYLEGAN2 = "i2s-stylegan2"
#: format -> (config class, generator class, the config's bounds check)
_FORMATS: dict[str, tuple[Any, Any, Any]] = {FORMAT: (StyleGANConfig, StyleGAN, config_problems),
                                             FORMAT_STYLEGAN2: (StyleGAN2Config, StyleGAN2, stylegan2_config_problems)}
#: Newest ``"format_version"`` this code reads and the one it writes.
FORMAT_VERSION = 1


class UnsafeWeightsError(WeightsFormatError):
    """A ``.pt`` file holds pickled Python objects beyond tensors and plain values (its globals could
    run code); ``torch.load(weights_only=True)`` refused it and nothing was executed."""


#: Leading bytes of torch's pre-1.6 (non-zip) serialisation: PROTO 2, then the magic number as a LONG1.
_LEGACY_TORCH_HEAD = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_CONVERT_HINT = ("convert NVIDIA's StyleGAN v1 pickle with `i2s.load_generator('PATH.pkl')` or "
                 "`i2s weights fetch stylegan1-ffhq-1024`")


def _format_of(cfg: Any) -> str:
    return FORMAT_STYLEGAN2 if isinstance(cfg, StyleGAN2Config) else FORMAT


def build_from_state_dict(cfg: StyleGANConfig | StyleGAN2Config, state_dict: dict[str, torch.Tensor],
                          info: dict[str, Any] | None = None,
                          save_to: str | os.PathLike[str] | None = None) -> StyleGAN | StyleGAN2:
    """Build ``StyleGAN(cfg)`` (``StyleGAN2(cfg)`` for a StyleGAN2Config) and load ``state_dict``
    into it with ``strict=True``; with ``save_to``, also write the converted file there
    (:func:`save_converted`, after the build has checked the state dict).

    The module is created on the ``meta`` device and then materialised, so building it
    neither spends time on a random initialisation that is overwritten at once nor draws
    from (and changes) the global torch random generator. Half-precision tensors are
    cast to float32.
    """
    sd = {k: (v.float() if v.is_floating_point() and v.dtype != torch.float32 else v)
          for k, v in state_dict.items()}
    with torch.device("meta"):
        G = _FORMATS[_format_of(cfg)][1](cfg)
    G = G.to_empty(device="cpu")
    G.load_state_dict(sd, strict=True)
    G.info = dict(info or {})
    if save_to is not None:
        save_converted(save_to, cfg, state_dict, G.info)
    return G.eval()


def save_converted(path: str | os.PathLike[str], cfg: StyleGANConfig | StyleGAN2Config,
                   state_dict: dict[str, torch.Tensor], info: dict[str, Any]) -> Path:
    """Write a converted generator file atomically (temp file in the same folder + ``os.replace``).

    Returns the final path. The file is loadable with ``torch.load(path, weights_only=True)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": _format_of(cfg),
        "format_version": FORMAT_VERSION,
        "config": cfg.to_dict(),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
        "info": dict(info),
    }
    from ..io import atomic_torch_save

    atomic_torch_save(payload, path)
    return path


#: Largest converted generator file: the bounded architecture in float32, plus room for its info.
MAX_CONVERTED_BYTES = 4 * MAX_GENERATOR_ELEMENTS + (16 << 20)
#: ``info`` fields the kit reads, and the types they must have.
_INFO_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "tier": (str,), "source": (str,), "source_sha256": (str,), "source_format": (str,),
    "kimg": (int, float), "planned_kimg": (int, float), "align_zoom": (int, float),
    "trained_resolution": (int,), "fully_grown": (bool,), "finished": (bool,), "domain": (str,),
}


def load_converted(path: str | os.PathLike[str]) -> StyleGAN | StyleGAN2:
    """Load a generator written by :func:`i2s.weights.tf_pickle.convert_pickle`.

    Before ``torch.load(path, map_location="cpu", weights_only=True)`` (no code runs) the file
    must be a ``torch.save`` zip of at most :data:`MAX_CONVERTED_BYTES` whose records are stored
    uncompressed (:func:`i2s.weights.limits.check_torch_zip`); the pre-1.6 format is refused. Then
    ``format``/``format_version`` are checked, the config must be within the bounds of
    :func:`i2s.weights.limits.config_problems`, every state-dict tensor must have the shape
    ``StyleGAN(config)`` expects (before anything is cast or copied), and the ``info`` fields the kit
    reads must have their types. The state dict is loaded with ``strict=True`` (fp16-stored tensors
    are cast to float32) and ``G.info`` set (plus ``"path"``). The model is returned on the CPU in
    eval mode.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        WeightsFormatError: the file is not a converted i2s generator (or is damaged or crafted).
    """
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise WeightsFormatError(f"{path} is a directory; pass the generator file (.pt) inside it")
        raise FileNotFoundError(f"converted generator file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise WeightsFormatError(f"{path} is empty (0 bytes); convert the pickle again")
    with open(path, "rb") as f:
        head = f.read(4096)
    _check_head(path, head, size)
    check_torch_zip(path, max_bytes=MAX_CONVERTED_BYTES, what="converted generator")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refused a global: nothing was executed
        if "weights only" not in str(e).lower() and "weights_only" not in str(e).lower():
            raise WeightsFormatError(f"{path} is corrupt ({type(e).__name__}: {first_line(e)}); "
                                     f"get or convert it again") from None
        raise UnsafeWeightsError(_unsafe_message(path, unsafe_global(e))) from None
    except Exception as e:  # torch raises RuntimeError / EOFError ... for damaged files
        msg = str(e)
        if ("central directory" in msg or "not a zip archive" in msg.lower() or isinstance(e, EOFError)
                or "unexpected eof" in msg.lower()):
            raise WeightsFormatError(
                f"{path} is truncated or corrupt ({size:,} bytes): the copy or download is incomplete; "
                "copy it again or convert the pickle again") from None
        raise WeightsFormatError(
            f"cannot read {path} as a converted i2s generator ({type(e).__name__}: {first_line(e)}); "
            "if it is NVIDIA's TensorFlow pickle, use i2s.weights.convert_pickle instead") from None
    if not isinstance(obj, dict) or obj.get("format") not in _FORMATS:
        raise WeightsFormatError(_not_ours(path, obj))
    version = obj.get("format_version")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise WeightsFormatError(
            f"{path}: unsupported format_version {quote(version)} (this code reads 1..{FORMAT_VERSION})")
    cfg = _checked_config(path, obj.get("config"), obj["format"])
    state_dict = _checked_state_dict(path, obj.get("state_dict"), cfg)
    info = _checked_info(path, obj.get("info"))
    info.setdefault("name", path.stem)
    info["path"] = str(path)
    try:
        return build_from_state_dict(cfg, state_dict, info)
    except RuntimeError as e:  # load_state_dict: cannot happen after the checks above
        raise WeightsFormatError(f"{path}: state dict does not match its config: {first_line(e)}") from None


def _unsafe_message(path: Path, what: str) -> str:
    return (f"refusing to load {path}: it references {what}, not only tensors and plain values, so "
            "unpickling it could run code; nothing was executed. A converted i2s generator holds only "
            "tensors: do not load this file with weights_only=False; take the weights from a source you "
            f"trust and {_CONVERT_HINT}")


def _checked_config(path: Path, config: Any, fmt: str = FORMAT) -> StyleGANConfig | StyleGAN2Config:
    """The file's StyleGANConfig (StyleGAN2Config for ``"i2s-stylegan2"``), if its fields are known,
    typed and within the kit's bounds."""
    if not isinstance(config, dict) or not all(type(k) is str for k in config):
        raise WeightsFormatError(f"{path}: missing or malformed 'config' ({type(config).__name__})")
    config_cls, _, problems_of = _FORMATS[fmt]
    try:
        cfg = config_cls.from_dict(config)
    except (TypeError, ValueError) as e:
        raise WeightsFormatError(f"{path}: bad config: {first_line(e)}") from None
    problems = problems_of(cfg)
    if problems:
        raise WeightsFormatError(f"{path}: refusing its config: " + "; ".join(problems))
    return cfg


def _checked_state_dict(path: Path, state_dict: Any, cfg: StyleGANConfig | StyleGAN2Config,
                        ) -> dict[str, torch.Tensor]:
    """The state dict, if it has exactly the tensors of ``StyleGAN(cfg)`` with their shapes.

    Checked against a ``meta``-device model before any tensor is cast or copied, so a crafted
    stride-0 tensor that claims a huge shape is refused instead of materialised.
    """
    if not isinstance(state_dict, dict):
        raise WeightsFormatError(f"{path}: missing or malformed 'state_dict' ({type(state_dict).__name__})")
    with torch.device("meta"):
        want = {k: tuple(t.shape) for k, t in _FORMATS[_format_of(cfg)][1](cfg).state_dict().items()}
    missing = [k for k in want if k not in state_dict]
    extra = [quote(k) for k in state_dict if k not in want]
    wrong = [f"{k}: {quote(tuple(v.shape)) if isinstance(v, torch.Tensor) else type(v).__name__}, expected {want[k]}"
             for k, v in state_dict.items() if k in want and not (
                 isinstance(v, torch.Tensor) and v.is_floating_point() and tuple(v.shape) == want[k])]
    if missing or extra or wrong:
        parts = [f"{len(x)} {what}: {', '.join(x[:10])}{', ...' if len(x) > 10 else ''}"
                 for x, what in ((missing, "missing"), (extra, "unexpected"), (wrong, "wrongly shaped or typed"))
                 if x]
        raise WeightsFormatError(f"{path}: state dict does not match its config "
                                 f"({cfg.resolution}px): " + "; ".join(parts))
    return state_dict


def _checked_info(path: Path, info: Any) -> dict[str, Any]:
    """A copy of ``info``: a small dict of plain values whose known fields have their types."""
    if info is None:
        return {}
    try:
        info = plain_value(info, max_nodes=10_000)
    except PlainValueError as e:
        raise WeightsFormatError(f"{path}: 'info' is not a small set of plain values: {e}") from None
    if not isinstance(info, dict):
        raise WeightsFormatError(f"{path}: 'info' is a {type(info).__name__}, not a dict")
    for key, types in _INFO_TYPES.items():
        value = info.get(key)
        if value is not None and (type(value) not in types or (bool not in types and type(value) is bool)):
            raise WeightsFormatError(f"{path}: info[{key!r}] is {quote(value)}, not of type "
                                     f"{' or '.join(t.__name__ for t in types)}")
    return info


def _check_head(path: Path, head: bytes, size: int) -> None:
    """Refuse files that are plainly something else, before torch.load sees them."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith(b"<"):
        raise WeightsFormatError(
            f"{path} is an HTML/XML page ({size:,} bytes), not a generator file: the mirror sent a web page "
            "(quota or login page?); download the file itself")
    if head.startswith(b"PK\x03\x04"):
        return  # a torch.save zip: check_torch_zip, then torch.load with weights_only decide
    if head.startswith(_LEGACY_TORCH_HEAD):
        foreign = [g for g in legacy_torch_globals(path) if g.split(".")[0] not in ("torch", "collections")]
        if foreign:
            raise UnsafeWeightsError(_unsafe_message(path, f"the Python global {quote(foreign[0])}"))
        raise WeightsFormatError(
            f"{path} is in torch's pre-1.6 file format, which i2s never writes and whose storage sizes cannot "
            "be checked before loading; it was not loaded. Re-save it with a current torch.save, or "
            f"{_CONVERT_HINT}")
    if head[:1] == b"\x80":
        if b"dnnlib.tflib.network" in head:
            raise WeightsFormatError(
                f"{path} is NVIDIA's TensorFlow network pickle, not a converted i2s generator: load it with "
                "`i2s.load_generator(PATH)` under a .pkl name (the suffix selects the safe converter) or "
                "i2s.weights.convert_pickle(PATH)")
        raise WeightsFormatError(
            f"{path} is a raw Python pickle, not a converted i2s generator (a torch.save zip file); it was not "
            f"unpickled. {_CONVERT_HINT[0].upper() + _CONVERT_HINT[1:]}")
    raise WeightsFormatError(
        f"{path} is not a PyTorch file (it starts with {head[:8]!r}, {size:,} bytes); {_CONVERT_HINT}")


def _not_ours(path: Path, obj: Any) -> str:
    """Why a torch file that loaded is still not a converted generator, and what to do."""
    if isinstance(obj, dict):
        fmt = obj.get("format")
        if fmt == "i2s-latent":
            return (f"{path} is an i2s latent file (written by `i2s embed`), not a generator: pass it to "
                    "`i2s morph`, and give the generator with --model")
        if fmt is not None:
            return f"{path} is not an {FORMAT!r} or {FORMAT_STYLEGAN2!r} file (format: {quote(fmt)}); {_CONVERT_HINT}"
        tensors = [k for k, v in obj.items() if isinstance(v, torch.Tensor)]
        if tensors and len(tensors) == len(obj):
            return (f"{path} is a bare state dict ({len(tensors)} tensors, e.g. {quote(tensors[0])}), not an "
                    f"{FORMAT!r} generator file (no 'format' key: which network it belongs to is unknown); "
                    f"{_CONVERT_HINT}")
        keys = quote(sorted(map(str, obj))[:6])
        return f"{path} is not an {FORMAT!r} file (a dict with keys {keys}, no 'format'); {_CONVERT_HINT}"
    return f"{path} is not an {FORMAT!r} file (it holds a {type(obj).__name__}); {_CONVERT_HINT}"
