"""The kit's own generator file format (``"i2s-stylegan1"``) and its loader.

A converted file is a plain ``torch.save`` of a dict that ``torch.load(...,
weights_only=True)`` can read without executing code::

    {"format": "i2s-stylegan1", "format_version": 1,
     "config": StyleGANConfig.to_dict(), "state_dict": {name: tensor}, "info": {...}}

It is written by :func:`i2s.weights.tf_pickle.convert_pickle` from NVIDIA's official
StyleGAN v1 pickle and read here, with no dependency on the pickle reader, so that
``i2s.load_generator`` can import this module alone.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..stylegan import StyleGAN, StyleGANConfig

__all__ = ["FORMAT", "FORMAT_VERSION", "WeightsFormatError", "UnsafeWeightsError", "load_converted",
           "save_converted", "build_from_state_dict"]

#: Value of the ``"format"`` key of a converted generator file.
FORMAT = "i2s-stylegan1"
#: Newest ``"format_version"`` this code reads and the one it writes.
FORMAT_VERSION = 1


class WeightsFormatError(ValueError):
    """A weights file exists but is not what it should be (wrong kind, empty, truncated, ...)."""


class UnsafeWeightsError(WeightsFormatError):
    """A ``.pt`` file holds pickled Python objects beyond tensors and plain values (its globals could
    run code); ``torch.load(weights_only=True)`` refused it and nothing was executed."""


#: Leading bytes of torch's pre-1.6 (non-zip) serialisation: PROTO 2, then the magic number as a LONG1.
_LEGACY_TORCH_HEAD = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_CONVERT_HINT = ("convert NVIDIA's StyleGAN v1 pickle with `i2s.load_generator('PATH.pkl')` or "
                 "`i2s weights fetch stylegan1-ffhq-1024`")


def build_from_state_dict(cfg: StyleGANConfig, state_dict: dict[str, torch.Tensor],
                          info: dict[str, Any] | None = None) -> StyleGAN:
    """Build ``StyleGAN(cfg)`` and load ``state_dict`` into it with ``strict=True``.

    The module is created on the ``meta`` device and then materialised, so building it
    neither spends time on a random initialisation that is overwritten at once nor draws
    from (and changes) the global torch random generator. Half-precision tensors are
    cast to float32.
    """
    sd = {k: (v.float() if v.is_floating_point() and v.dtype != torch.float32 else v)
          for k, v in state_dict.items()}
    with torch.device("meta"):
        G = StyleGAN(cfg)
    G = G.to_empty(device="cpu")
    G.load_state_dict(sd, strict=True)
    G.info = dict(info or {})
    return G.eval()


def save_converted(path: str | os.PathLike[str], cfg: StyleGANConfig,
                   state_dict: dict[str, torch.Tensor], info: dict[str, Any]) -> Path:
    """Write a converted generator file atomically (temp file in the same folder + ``os.replace``).

    Returns the final path. The file is loadable with ``torch.load(path, weights_only=True)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": cfg.to_dict(),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
        "info": dict(info),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def load_converted(path: str | os.PathLike[str]) -> StyleGAN:
    """Load a generator written by :func:`i2s.weights.tf_pickle.convert_pickle`.

    Reads with ``torch.load(path, map_location="cpu", weights_only=True)`` (no code runs),
    checks ``format``/``format_version``, builds ``StyleGAN(config)``, loads the state dict
    with ``strict=True`` (fp16-stored tensors are cast to float32) and sets ``G.info``
    (plus ``"path"``). The model is returned on the CPU in eval mode.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        WeightsFormatError: the file is not a converted i2s generator (or is damaged).
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
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refused a global: nothing was executed
        if "weights only" not in str(e).lower() and "weights_only" not in str(e).lower():
            raise WeightsFormatError(f"{path} is corrupt ({type(e).__name__}: {_first_line(e)}); "
                                     f"get or convert it again") from e
        glob = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f"the Python global '{glob.group(1)}'" if glob else "pickle instructions a tensor file never needs"
        raise UnsafeWeightsError(
            f"refusing to load {path}: it references {what}, not only tensors and plain values, so "
            "unpickling it could run code; nothing was executed. A converted i2s generator holds only "
            "tensors: do not load this file with weights_only=False; take the weights from a source you "
            f"trust and {_CONVERT_HINT}") from None
    except Exception as e:  # torch raises RuntimeError / EOFError ... for damaged files
        msg = str(e)
        if ("central directory" in msg or "not a zip archive" in msg.lower() or isinstance(e, EOFError)
                or "unexpected eof" in msg.lower()):
            raise WeightsFormatError(
                f"{path} is truncated or corrupt ({size:,} bytes): the copy or download is incomplete; "
                "copy it again or convert the pickle again") from e
        raise WeightsFormatError(
            f"cannot read {path} as a converted i2s generator ({type(e).__name__}: {_first_line(e)}); "
            "if it is NVIDIA's TensorFlow pickle, use i2s.weights.convert_pickle instead") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise WeightsFormatError(_not_ours(path, obj))
    version = obj.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise WeightsFormatError(
            f"{path}: unsupported format_version {version!r} (this code reads 1..{FORMAT_VERSION})")
    for key, typ in (("config", dict), ("state_dict", dict)):
        if not isinstance(obj.get(key), typ):
            raise WeightsFormatError(f"{path}: missing or malformed {key!r}")
    try:
        cfg = StyleGANConfig.from_dict(obj["config"])
        cfg.log2_res  # validates the resolution
    except (TypeError, ValueError) as e:
        raise WeightsFormatError(f"{path}: bad config: {e}") from e
    info = dict(obj.get("info") or {})
    info.setdefault("name", path.stem)
    info["path"] = str(path)
    try:
        return build_from_state_dict(cfg, obj["state_dict"], info)
    except RuntimeError as e:  # load_state_dict: missing / unexpected keys, size mismatch
        raise WeightsFormatError(f"{path}: state dict does not match its config: {e}") from e


def _first_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def _check_head(path: Path, head: bytes, size: int) -> None:
    """Refuse files that are plainly something else, before torch.load sees them."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith(b"<"):
        raise WeightsFormatError(
            f"{path} is an HTML/XML page ({size:,} bytes), not a generator file: the mirror sent a web page "
            "(quota or login page?); download the file itself")
    if head.startswith(b"PK\x03\x04") or head.startswith(_LEGACY_TORCH_HEAD):
        return  # a torch file (zip, or the legacy format): torch.load with weights_only decides
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
            return f"{path} is not an {FORMAT!r} file (format: {fmt!r}); {_CONVERT_HINT}"
        tensors = [k for k, v in obj.items() if isinstance(v, torch.Tensor)]
        if tensors and len(tensors) == len(obj):
            return (f"{path} is a bare state dict ({len(tensors)} tensors, e.g. {tensors[0]!r}), not an "
                    f"{FORMAT!r} generator file (no 'format' key: which network it belongs to is unknown); "
                    f"{_CONVERT_HINT}")
        keys = sorted(map(str, obj))[:6]
        return f"{path} is not an {FORMAT!r} file (a dict with keys {keys}, no 'format'); {_CONVERT_HINT}"
    return f"{path} is not an {FORMAT!r} file (it holds a {type(obj).__name__}); {_CONVERT_HINT}"
