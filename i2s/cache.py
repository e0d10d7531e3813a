"""An on-disk cache of embeddings, so notebooks and the CLI reuse each other's latents.

An entry's key is the SHA-256 of everything that changes the result: the target image's
pixels, the generator's weights (their hash), the perceptual network, and every setting of
:func:`i2s.embed.embed` (space, init, steps, optimiser, loss, noise mode, seed, starting
latent), plus ``EMBED_ALGORITHM_VERSION``. Any change gives a different key, so a stale entry
is never reused. Entries are written atomically and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import math
import os
from pathlib import Path
from typing import Sequence

import torch

from .embed import FAST_LR, FAST_STEPS, PAPER_LR, PAPER_STEPS, EmbedResult, embed
from .io import atomic_write_bytes
from .loss import EmbeddingLoss
from .stylegan import StyleGAN

EMBED_ALGORITHM_VERSION = 2  # bump when embed() changes its results for the same settings
# embed() keyword arguments that do not change the result.
_NOT_IN_KEY = ("progress", "desc", "checkpoint", "checkpoint_every")


def default_cache_dir() -> Path:
    """``$I2S_CACHE_DIR``, else ``$I2S_HOME/embeddings`` (``~/.cache/i2s/embeddings``)."""
    if os.environ.get("I2S_CACHE_DIR"):
        return Path(os.environ["I2S_CACHE_DIR"])
    from .weights.fetch import i2s_home

    return i2s_home() / "embeddings"


def weights_hash(G: StyleGAN) -> str:
    """SHA-256 of the generator's parameters and buffers (cached in ``G.info``)."""
    if "weights_sha256" not in G.info:
        h = hashlib.sha256()
        for name, t in sorted(G.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
        G.info["weights_sha256"] = h.hexdigest()
    return G.info["weights_sha256"]


_EMBED_DEFAULTS = {k: p.default for k, p in inspect.signature(embed).parameters.items()
                   if p.default is not inspect.Parameter.empty and k not in _NOT_IN_KEY + ("loss_fn", "w_init")}


def key_settings(G: StyleGAN, loss_fn: EmbeddingLoss, settings: dict) -> dict:
    """The settings that decide an embedding, with embed()'s defaults filled in, so that
    ``embed(x)`` and ``embed(x, space="w+", init="mean")`` share their entries."""
    out = {**_EMBED_DEFAULTS, **{k: v for k, v in settings.items() if k not in _NOT_IN_KEY}}
    if out["steps"] is None:
        out["steps"] = PAPER_STEPS if out["schedule"] == "paper" else FAST_STEPS
    if out["lr"] is None:
        out["lr"] = PAPER_LR if out["schedule"] == "paper" else FAST_LR
    if out["amp"] is None:  # embed's default: bf16 autocast on CUDA only
        out["amp"] = G.device.type == "cuda"
    out["steps"], out["lr"], out["betas"] = int(out["steps"]), float(out["lr"]), [float(b) for b in out["betas"]]
    out.update(loss=loss_fn.settings.to_dict(), perceptual_net=loss_fn.perceptual_net, resolution=G.resolution)
    return out


def entry_key(G: StyleGAN, image: torch.Tensor, settings: dict, w_init: torch.Tensor | None = None) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": EMBED_ALGORITHM_VERSION, "G": weights_hash(G), **settings}, sort_keys=True, default=str).encode())
    h.update(image.detach().cpu().float().contiguous().numpy().tobytes())
    if w_init is not None:
        h.update(w_init.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()


_FIELDS = ("w_plus", "latent", "images", "loss", "dist_to_w_avg", "psnr", "loss_curve", "stopped_at")


def cached_embed(G: StyleGAN, images: torch.Tensor, *, loss_fn: EmbeddingLoss | None = None,
                 cache_dir: str | Path | None = None, batch_size: int = 8, w_init: torch.Tensor | None = None,
                 verbose: bool = True, **settings) -> EmbedResult:
    """:func:`i2s.embed.embed` with a disk cache: images already embedded with exactly these
    settings are loaded, the rest embedded (in batches of ``batch_size``) and stored.

    ``settings`` are embed()'s keyword arguments (space, init, steps, lr, seed, ...).
    Returns one :class:`EmbedResult` for all images, in order.
    """
    loss_fn = loss_fn or EmbeddingLoss()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    decided_by = key_settings(G, loss_fn, settings)
    n = images.shape[0]
    keys = [entry_key(G, images[i], decided_by, None if w_init is None else w_init[i]) for i in range(n)]
    parts: list[dict | None] = [_load(cache / f"{k}.pt") for k in keys]
    todo = [i for i in range(n) if parts[i] is None]
    if verbose:
        print(f"[i2s cache] {n - len(todo)} of {n} embeddings reused from {cache}")
    # Equal batches of at most batch_size (25 -> 7, 6, 6, 6, not 8, 8, 8, 1: a lone image is slow).
    size = math.ceil(len(todo) / max(1, math.ceil(len(todo) / batch_size))) if todo else 1
    for s in range(0, len(todo), size):
        idx = todo[s:s + size]
        res = embed(G, images[idx], loss_fn=loss_fn, w_init=None if w_init is None else w_init[idx], **settings)
        for j, i in enumerate(idx):
            entry = {f: getattr(res, f)[j].clone() if f != "loss_curve" else res.loss_curve[:, j].clone() for f in _FIELDS}
            entry["settings"] = json.dumps(res.settings, default=str)
            _store(cache / f"{keys[i]}.pt", entry)
            parts[i] = entry
    full = [p for p in parts if p is not None]
    return EmbedResult(
        **{f: torch.stack([p[f] for p in full], dim=1 if f == "loss_curve" else 0) for f in _FIELDS},
        settings=json.loads(full[0]["settings"]) if full else {},
    )


def _load(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        return entry if all(f in entry for f in _FIELDS) else None
    except Exception:  # an unreadable entry is recomputed (and overwritten), never trusted
        return None


def _store(path: Path, entry: dict) -> None:
    buf = io.BytesIO()
    torch.save(entry, buf)
    atomic_write_bytes(path, buf.getvalue())


def clear(cache_dir: str | Path | None = None) -> int:
    """Delete every cached embedding; returns how many were removed."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    files = list(cache.glob("*.pt")) if cache.is_dir() else []
    for f in files:
        f.unlink()
    return len(files)


__all__: Sequence[str] = ("cached_embed", "clear", "default_cache_dir", "entry_key", "weights_hash")
