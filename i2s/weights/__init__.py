"""Pretrained weights: the registry, downloads and hash records (stdlib only, imported at once)
and the generator file formats (torch and numpy, imported on first use, PEP 562: ``i2s --help``
and ``i2s weights list`` never load torch)."""

import importlib
from typing import Any

from .fetch import WeightsUnavailable, cached_path, fetch, i2s_home, import_file, verify
from .registry import REGISTRY, Checkpoint, get

_LAZY = {"load_converted": "converted", "convert_pickle": "tf_pickle", "load_tf_pickle": "tf_pickle",
         "UnsafePickleError": "tf_pickle", "WeightsFormatError": "limits"}

__all__ = ["REGISTRY", "Checkpoint", "get", "WeightsUnavailable", "cached_path", "fetch", "i2s_home", "import_file",
           "verify", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
