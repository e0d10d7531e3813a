"""An on-disk cache of embeddings, so notebooks and the CLI reuse each other's latents.

An entry's key is the SHA-256 of everything that changes the result: the target image's
pixels, the generator's weights (their hash), and the run identity of
:class:`i2s.embed.EmbedSettings` (space, init, steps, optimiser, loss, perceptual network,
noise mode, seed, schedule, precision; the starting latent), plus ``EMBED_ALGORITHM_VERSION``. Any change gives a different key, so a stale entry
is never reused. Entries are written atomically and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .batching import embed_in_batches
from .embed import EmbedResult, EmbedSettings
from .io import atomic_torch_save
from .loss import EmbeddingLoss
from .models import weights_hash
from .stylegan import StyleGAN

# Bump when embed() changes its results for the same settings. 3: keys derive from
# EmbedSettings.identity() (the latent files' metadata) instead of embed()'s signature, so every
# entry of version 2 is missed by name and recomputed.
EMBED_ALGORITHM_VERSION = 3


def default_cache_dir() -> Path:
    """``$I2S_CACHE_DIR``, else ``$I2S_HOME/embeddings`` (``~/.cache/i2s/embeddings``)."""
    if os.environ.get("I2S_CACHE_DIR"):
        return Path(os.environ["I2S_CACHE_DIR"])
    from .weights.fetch import i2s_home

    return i2s_home() / "embeddings"


def entry_key(G: StyleGAN, image: torch.Tensor, identity: dict, w_init: torch.Tensor | None = None) -> str:
    """The key of one image's entry: the algorithm version, the generator's weights, the run
    identity (:meth:`i2s.embed.EmbedSettings.identity`), the image's pixels and any starting latent."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": EMBED_ALGORITHM_VERSION, "G": weights_hash(G), **identity}, sort_keys=True, default=str).encode())
    h.update(image.detach().cpu().float().contiguous().numpy().tobytes())
    if w_init is not None:
        h.update(w_init.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()


_FIELDS = ("w_plus", "latent", "images", "loss", "dist_to_w_avg", "psnr", "loss_curve", "stopped_at")


def cached_embed(G: StyleGAN, images: torch.Tensor, settings: EmbedSettings | None = None, *,
                 loss_fn: EmbeddingLoss | None = None, cache_dir: str | Path | None = None, batch_size: int = 8,
                 w_init: torch.Tensor | None = None, verbose: bool = True,
                 on_done: Callable[[list[int], EmbedResult], Any] | None = None, **overrides) -> EmbedResult:
    """:func:`i2s.embed.embed` with a disk cache: images already embedded with exactly these
    settings are loaded, the rest embedded through :func:`i2s.batching.embed_in_batches` (equal
    chunks of at most ``batch_size``, halved on out-of-memory) and stored.

    ``settings``/``overrides`` as for :func:`i2s.embed.embed`; speed options (``compile``,
    ``channels_last``, ``progress``, ``desc``, ``checkpoint``) pass through and are not in the key.
    ``on_done(indices, result)`` is called for the reused images first, then for each chunk as
    soon as it is computed and stored (the CLI writes its outputs there). Returns one
    :class:`EmbedResult` for all images, in order.
    """
    speed = {k: overrides.pop(k) for k in ("compile", "channels_last", "progress", "desc", "checkpoint",
                                           "checkpoint_every", "log", "keep_checkpoints", "encoder") if k in overrides}
    s = EmbedSettings.make(settings, **overrides)
    loss_fn = loss_fn or EmbeddingLoss(s.loss)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    enc_id = None
    if s.init == "encoder" and w_init is None:  # which encoder predicts the start is part of the key
        from .encoder import encoder_init, find_encoder, load_encoder

        enc = speed.get("encoder")
        if enc is None or isinstance(enc, (str, Path)):  # loaded once, for the key and the runs
            speed["encoder"] = enc = load_encoder(find_encoder(G, enc), G)
        _, enc_id = encoder_init(G, images[:1], enc, s.space)
    identity = s.identity(G, loss_fn, given_init=w_init is not None, encoder=enc_id)
    n = images.shape[0]
    keys = [entry_key(G, images[i], identity, None if w_init is None else w_init[i]) for i in range(n)]
    parts: list[dict | None] = [_load(cache / f"{k}.pt", images.shape[1:]) for k in keys]
    todo = [i for i in range(n) if parts[i] is None]
    if verbose:
        print(f"[i2s cache] {n - len(todo)} of {n} embeddings reused from {cache}")
    hits = [i for i in range(n) if parts[i] is not None]
    if hits and on_done is not None:
        on_done(hits, _result([parts[i] for i in hits], identity))

    def store(a: int, b: int, res: EmbedResult) -> None:
        for j, i in enumerate(todo[a:b]):
            entry = {f: getattr(res, f)[j].clone() if f != "loss_curve" else res.loss_curve[:, j].clone() for f in _FIELDS}
            entry["settings"] = json.dumps(res.settings, default=str)
            _store(cache / f"{keys[i]}.pt", entry)
            parts[i] = entry
        if on_done is not None:
            on_done(todo[a:b], res)

    if todo:
        if speed.get("checkpoint") is not None and len(todo) < n:  # one checkpoint set per set of images to do
            base = Path(speed["checkpoint"])
            tag = hashlib.sha256("".join(keys[i] for i in todo).encode()).hexdigest()[:12]
            speed["checkpoint"] = base.with_name(f"{base.stem}-{tag}{base.suffix or '.pt'}")
        # equal chunks of at most batch_size (25 -> 7, 6, 6, 6, not 8, 8, 8, 1: a lone image is slow)
        size = math.ceil(len(todo) / math.ceil(len(todo) / batch_size))
        embed_in_batches(G, images[todo], size, settings=s, loss_fn=loss_fn, on_chunk=store,
                         w_init=None if w_init is None else w_init[todo], **speed)
    return _result([p for p in parts if p is not None], identity)


def _result(entries: list[dict], identity: dict) -> EmbedResult:
    """Stack cache entries into one result (``stopped_at`` etc. per image, ``loss_curve`` [steps, N])."""
    return EmbedResult(
        **{f: torch.stack([p[f] for p in entries], dim=1 if f == "loss_curve" else 0) for f in _FIELDS},
        settings=json.loads(entries[0]["settings"]) if entries else identity,
    )


#: Largest cache entry read back: one image's result at 1024 px (the image alone is 12 MB) with loss
#: curves of up to a million steps; anything larger was not written by this module.
MAX_ENTRY_BYTES = 64 << 20


def _load(path: Path, image_shape: torch.Size) -> dict | None:
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
    if not isinstance(entry, dict) or not all(isinstance(entry.get(f), torch.Tensor) for f in _FIELDS):
        return None
    if tuple(entry["images"].shape) != tuple(image_shape) or entry["w_plus"].ndim != 2 or entry["loss"].ndim != 0:
        return None
    return entry


def _store(path: Path, entry: dict) -> None:
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


__all__: Sequence[str] = ("cached_embed", "clear", "default_cache_dir", "entry_key", "EMBED_ALGORITHM_VERSION")
