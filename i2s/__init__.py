"""i2s: an open reproduction kit for Image2StyleGAN (Abdal, Qin, Wonka, ICCV 2019).

Public API::

    G = i2s.load_generator("auto")              # paper tier (FFHQ-1024) or the embedded mini model
    x = i2s.load_target("photo.jpg", G, align=True)   # [1, 3, R, R], framed for G
    res = i2s.embed(G, x)                       # Algorithm 1 (W+, w̄ init, 5000 Adam steps, Eq. 1)
    res = i2s.embed(G, x, i2s.EmbedSettings(steps=1000))   # every hyper-parameter in one object
    res = i2s.embed(G, x, checkpoint="run.pt")  # how it runs: i2s.RunOptions (never in a result's key)
    i2s.morph(w1, w2, 0.5); i2s.crossover(wc, ws); i2s.expression_transfer(w1, w2, w3, 3.0)
    d = i2s.directions_for(G, "sefa"); i2s.apply_direction(w_plus, d, 0, 2.0)   # directions from G alone

The names are imported on first use (PEP 562), so ``import i2s`` and the ``i2s`` command start
without loading torch until they need it (and Ctrl-C while it loads is a clean exit).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

_NAMES = {
    "crossover": "edits", "default_crossover_layer": "edits", "expression_direction": "edits",
    "expression_transfer": "edits", "morph": "edits",
    "cached_embed": "runner", "load_target": "data", "RunOptions": "runner", "embed": "runner",
    "EmbedResult": "embed", "EmbedSettings": "embed",
    "EmbeddingLoss": "loss", "LossSettings": "loss",
    "load_generator": "models",
    "StyleGAN": "stylegan", "StyleGANConfig": "stylegan", "random_weights": "stylegan",
    "directions_for": "directions", "Directions": "directions", "apply_direction": "directions.apply",
}

__all__ = sorted(_NAMES) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        module, _, attr = _NAMES[name].partition(".")
        value = getattr(importlib.import_module(f".{module}", __name__), attr or name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'i2s' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))


class _Package(types.ModuleType):
    """``i2s.embed`` names the function :func:`i2s.runner.embed` (Algorithm 1, :mod:`i2s.embed`,
    with checkpoints, progress and the encoder's start): the import system's
    ``setattr(i2s, "embed", <module>)`` when the submodule loads is dropped, so the name is
    resolved by :func:`__getattr__`."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "embed" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
