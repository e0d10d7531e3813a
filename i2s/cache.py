"""The on-disk store of embeddings, so notebooks and the CLI reuse each other's latents
(:func:`i2s.runner.cached_embed` decides what to reuse; this module keeps the entries).

An entry's key is the SHA-256 of everything that changes the result: the target image's
pixels, the generator's weights (their hash), and the run identity of
:class:`i2s.embed.EmbedSettings` (space, init, steps, optimiser, loss, perceptual network,
noise mode, seed, schedule, precision; the starting latent), plus ``EMBED_ALGORITHM_VERSION``.
Any change gives a different key, so a stale entry is never reused. Entries are written
atomically and read bounded with ``weights_only=True``; a damaged one is recomputed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from .checkpoint import run_key
from .embed import EmbedResult
from .io import atomic_torch_save
from .models import weights_hash
from .stylegan import StyleGAN

__all__ = ["EMBED_ALGORITHM_VERSION", "default_cache_dir", "entry_key", "entry_of", "stack_entries", "load_entry",
           "store_entry", "clear"]

# Bump when embed() changes its results for the same settings. 3: keys derive from
# EmbedSettings.identity() (the latent files' metadata) instead of embed()'s signature, so every
# entry of version 2 is missed by name and recomputed.
EMBED_ALGORITHM_VERSION = 3
#: What an entry holds besides the settings: one image's part of an EmbedResult.
FIELDS = ("w_plus", "latent", "images", "loss", "dist_to_w_avg", "psnr", "loss_curve", "stopped_at")
#: Largest cache entry read back: one image's result at 1024 px (the image alone is 12 MB) with loss
#: curves of up to a million steps; anything larger was not written by this module.
MAX_ENTRY_BYTES = 64 << 20


def default_cache_dir() -> Path:
    """``$I2S_CACHE_DIR``, else ``$I2S_HOME/embeddings`` (``~/.cache/i2s/embeddings``)."""
    if os.environ.get("I2S_CACHE_DIR"):
        return Path(os.environ["I2S_CACHE_DIR"])
    from .weights.fetch import i2s_home

    return i2s_home() / "embeddings"


def entry_key(G: StyleGAN, image: torch.Tensor, identity: dict, w_init: torch.Tensor | None = None) -> str:
    """The key of one image's entry: the algorithm version, the generator's weights, the run
    identity (:meth:`i2s.embed.EmbedSettings.identity`), the image's pixels and any starting latent
    (:func:`i2s.checkpoint.run_key` in float32)."""
    return run_key({"v": EMBED_ALGORITHM_VERSION, "G": weights_hash(G), **identity}, image, w_init, float32=True)


def entry_of(res: EmbedResult, j: int) -> dict:
    """Image ``j`` of a result as an entry."""
    entry: dict = {f: getattr(res, f)[j].clone() if f != "loss_curve" else res.loss_curve[:, j].clone() for f in FIELDS}
    entry["settings"] = json.dumps(res.settings, default=str)
    return entry


def stack_entries(entries: list[dict], identity: dict) -> EmbedResult:
    """Entries as one result (``stopped_at`` etc. per image, ``loss_curve`` [steps, N])."""
    return EmbedResult(
        **{f: torch.stack([p[f] for p in entries], dim=1 if f == "loss_curve" else 0) for f in FIELDS},
        settings=json.loads(entries[0]["settings"]) if entries else identity,
    )


def load_entry(path: Path, image_shape: torch.Size) -> dict | None:
    """An entry, or None when it is missing or not a valid entry for an image of this shape
    (unreadable, wrong fields or shapes, not a file): such an entry is recomputed, never trusted."""
    if not path.is_file():
        return None
    from .weights.limits import safe_torch_load

    try:  # bounded before torch.load: a zip of at most MAX_ENTRY_BYTES, records stored uncompressed
        entry = safe_torch_load(path, max_bytes=MAX_ENTRY_BYTES, what="embedding cache entry")
        json.loads(entry["settings"])
    except Exception:  # noqa: BLE001 - any damage means: recompute (and overwrite)
        return None
    if not isinstance(entry, dict) or not all(isinstance(entry.get(f), torch.Tensor) for f in FIELDS):
        return None
    if tuple(entry["images"].shape) != tuple(image_shape) or entry["w_plus"].ndim != 2 or entry["loss"].ndim != 0:
        return None
    return entry



def store_entry(path: Path, entry: dict) -> None:
    """Write an entry; a cache that cannot take it (a directory in the way, a full disk) costs a
    recomputation next time, never the result in hand."""
    try:
        if path.is_dir():
            path.rmdir()  # only an empty one; anything else is reported below
        atomic_torch_save(entry, path)
    except OSError as e:
        print(f"[i2s cache] could not store {path.name} ({type(e).__name__}: {e.strerror or e}); "
              "it will be recomputed next time", file=sys.stderr)


def clear(cache_dir: str | Path | None = None) -> int:
    """Delete every cached embedding; returns how many were removed."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    files = list(cache.glob("*.pt")) if cache.is_dir() else []
    for f in files:
        f.unlink()
    return len(files)
