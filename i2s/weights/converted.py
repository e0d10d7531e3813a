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
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..stylegan import StyleGAN, StyleGANConfig

__all__ = ["FORMAT", "FORMAT_VERSION", "WeightsFormatError", "load_converted", "save_converted",
           "build_from_state_dict"]

#: Value of the ``"format"`` key of a converted generator file.
FORMAT = "i2s-stylegan1"
#: Newest ``"format_version"`` this code reads and the one it writes.
FORMAT_VERSION = 1


class WeightsFormatError(ValueError):
    """A weights file exists but is not what it should be (wrong kind, empty, truncated, ...)."""


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
        raise FileNotFoundError(f"converted generator file not found: {path}")
    if path.stat().st_size == 0:
        raise WeightsFormatError(f"{path} is empty (0 bytes); convert the pickle again")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError / UnpicklingError / EOFError ...
        raise WeightsFormatError(
            f"cannot read {path} as a converted i2s generator ({type(e).__name__}: {e}); "
            "if it is NVIDIA's TensorFlow pickle, use i2s.weights.convert_pickle instead") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise WeightsFormatError(f"{path} is not an {FORMAT!r} file (format: {got!r})")
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
