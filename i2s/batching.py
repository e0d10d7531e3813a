"""Embed many images in chunks, falling back to smaller chunks when the GPU runs out of memory.

A batch of N images is N independent problems (:mod:`i2s.embed`): the per-image losses are
summed, so each latent only receives its own gradient and Adam's update is element-wise. The
result therefore does not depend on how the images are split into chunks (up to float32
rounding of batched convolutions; bit-identical to running each chunk alone), and a chunk that
does not fit in GPU memory can be halved and retried without changing what is computed.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from .embed import EmbedResult, embed
from .stylegan import StyleGAN

__all__ = ["embed_in_batches", "is_out_of_memory", "chunk_checkpoints"]

#: Fragments of the messages of out-of-memory errors that are not ``torch.cuda.OutOfMemoryError``
#: (older torch, MPS, cuBLAS/cuDNN workspace allocation, torch's CPU allocator).
_OOM_TEXT = ("out of memory", "cublas_status_alloc_failed", "cudnn_status_alloc_failed",
             "mps backend out of memory", "can't allocate memory")


def is_out_of_memory(e: BaseException) -> bool:
    """True for ``torch.cuda.OutOfMemoryError`` and for a ``RuntimeError`` that reports running out
    of memory (a GPU, MPS, or torch's CPU allocator; Python's own ``MemoryError`` is not included)."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(e, oom_type):
        return True
    return isinstance(e, RuntimeError) and any(t in str(e).lower() for t in _OOM_TEXT)


def _free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _chunk_checkpoint(checkpoint: str | Path, i: int, j: int) -> Path:
    base = Path(checkpoint)
    return base.with_name(f"{base.stem}.{i}-{j}{base.suffix or '.pt'}")


def chunk_checkpoints(checkpoint: str | Path) -> list[Path]:
    """The per-chunk checkpoint files :func:`embed_in_batches` wrote for ``checkpoint`` (to delete
    them once the results are safely written, when it ran with ``keep_checkpoints=True``)."""
    base = Path(checkpoint)
    suffix = base.suffix or ".pt"
    return sorted(p for p in base.parent.glob(f"{base.stem}.*-*{suffix}")
                  if p.name[len(base.stem) + 1:-len(suffix)].replace("-", "", 1).isdigit())


def _concat(parts: list[EmbedResult]) -> EmbedResult:
    """One :class:`EmbedResult` for the chunks, in order."""
    if len(parts) == 1:
        return parts[0]
    cat = {f: torch.cat([getattr(p, f) for p in parts], dim=0)
           for f in ("w_plus", "latent", "images", "loss", "dist_to_w_avg", "psnr", "stopped_at")}
    return EmbedResult(**cat, loss_curve=torch.cat([p.loss_curve for p in parts], dim=1),
                       settings=parts[0].settings, resumed_from=min(p.resumed_from for p in parts))


def embed_in_batches(
    G: StyleGAN,
    images: torch.Tensor,
    batch_size: int,
    *,
    log: Callable[[str], Any] | None = None,
    keep_checkpoints: bool = False,
    on_chunk: Callable[[int, int, EmbedResult], Any] | None = None,
    **embed_kwargs: Any,
) -> EmbedResult:
    """:func:`i2s.embed.embed` over ``images`` ([N, 3, R, R]) in chunks of at most ``batch_size``.

    When a chunk runs out of memory (``torch.cuda.OutOfMemoryError``, or a ``RuntimeError`` whose
    message says "out of memory"), the chunk size is halved (down to 1), the CUDA cache emptied,
    and that chunk is retried from its start; one line is printed each time (``log``, default
    stderr). The smaller size is kept for the remaining chunks. If a single image does not fit,
    the error is raised with a message saying so. The results are concatenated in order; since a
    batch is N independent problems they equal embedding with any chunk size.

    ``embed_kwargs`` go to :func:`embed` (``steps``, ``loss_fn``, ``seed``, ...). With
    ``checkpoint=PATH`` each chunk gets its own checkpoint (``PATH`` with ``.<first>-<end>``
    before the suffix) so that an interrupted call resumes chunk by chunk (finished chunks are
    restored at once); they are deleted when all chunks are done unless ``keep_checkpoints`` (then
    delete :func:`chunk_checkpoints` after saving the results, so a crash in between loses
    nothing). ``on_chunk(i, j, result)`` is called as soon as images ``i:j`` are done. The checkpoint of a chunk that ran out of memory is deleted: its images start again
    in the smaller chunks.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    checkpoint = embed_kwargs.pop("checkpoint", None)
    desc = embed_kwargs.pop("desc", "embed")
    n = images.shape[0]
    parts: list[EmbedResult] = []
    written: list[Path] = []
    size, i = min(batch_size, max(n, 1)), 0
    while i < n:
        j = min(i + size, n)
        ckpt = _chunk_checkpoint(checkpoint, i, j) if checkpoint is not None else None
        failed: BaseException | None = None
        try:
            res = embed(G, images[i:j], checkpoint=ckpt, desc=f"{desc} {i + 1}-{j}/{n}", **embed_kwargs)
        except Exception as e:  # noqa: BLE001 - only out-of-memory errors are handled below
            if not is_out_of_memory(e):
                raise
            if j - i == 1:
                raise RuntimeError(
                    f"out of memory embedding a single image ({tuple(images.shape[1:])}) on {G.device}: "
                    "use a smaller generator, free GPU memory, or run on the CPU (--device cpu)") from e
            failed = e
        if failed is not None:
            failed = None  # drop the traceback (and the tensors its frames hold) before freeing
            if ckpt is not None:
                ckpt.unlink(missing_ok=True)
            _free_device_memory()
            new = max(1, (j - i) // 2)
            log(f"[i2s] out of memory embedding images {i + 1}-{j} of {n} in one batch of {j - i}; "
                f"retrying with batches of {new}")
            size = new
            continue
        parts.append(res)
        if on_chunk is not None:
            on_chunk(i, j, res)  # e.g. store the chunk's results now: finished work is never lost
        if ckpt is not None:
            written.append(ckpt)
        i = j
    if not keep_checkpoints:
        for ckpt in written:
            ckpt.unlink(missing_ok=True)
    if not parts:
        raise ValueError("no images to embed")
    return _concat(parts)
