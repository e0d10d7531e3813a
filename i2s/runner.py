"""Everything around Algorithm 1 (:func:`i2s.embed.embed`): the encoder's start, checkpoints,
deferred Ctrl-C and progress (attached as ``on_step`` hooks), batching with the out-of-memory
fallback, and the disk cache (:mod:`i2s.cache`).

Two objects carry a run: :class:`i2s.embed.EmbedSettings` (what is computed: the run identity
that latent files, checkpoint and cache keys record, derived once per call) and
:class:`RunOptions` (how it is carried out: never in a key). Keyword arguments are sorted into
the two by the dataclasses' own field names, so no list of names has to be kept in step.

* :func:`embed`: one batch (``embed(G, x, steps=1000, checkpoint="run.pt")``);
* :func:`embed_in_batches`: chunks of at most ``batch_size``, halved when a GPU runs out of memory;
* :func:`cached_embed`: images embedded before with the same identity are loaded, the rest
  embedded in equal chunks and stored.

A batch of N images is N independent problems (:mod:`i2s.embed`), so none of this changes a
result: chunks give what one batch gives (bit-identical to running each chunk alone), and a
chunk that runs out of memory is halved and retried without changing what is computed.
"""

from __future__ import annotations

import gc
import hashlib
import math
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from . import cache
from .checkpoint import EmbedCheckpoint, run_key
from .embed import EmbedResult, EmbedSettings, EmbedState, check_images
from .embed import embed as algorithm_1
from .loss import EmbeddingLoss
from .signals import DeferredSignals
from .stylegan import StyleGAN

__all__ = ["RunOptions", "embed", "embed_in_batches", "cached_embed", "default_batch_size", "is_out_of_memory",
           "chunk_checkpoints"]


@dataclass(frozen=True)
class RunOptions:
    """How a run is carried out; none of it changes a latent, so none of it is in a key."""

    encoder: str | Path | torch.nn.Module | None = None  # init="encoder": the encoder or its file (default: G's own)
    checkpoint: str | Path | None = None  # resumable state; per chunk: <stem>.<first>-<end><suffix>
    checkpoint_every: int = 250  # steps between checkpoints (and at the end, and on Ctrl-C/SIGTERM)
    keep_checkpoints: bool = False  # keep the chunks' checkpoints (delete chunk_checkpoints() once saved)
    progress: bool = True  # a progress bar per batch
    desc: str = "embed"  # its label
    compile: bool = False  # torch.compile of generator + loss (eager, with a warning, if it fails)
    channels_last: bool = False  # memory format of the images
    log: Callable[[str], Any] | None = None  # where out-of-memory retries are said (default: stderr)


def _sort(settings: EmbedSettings | None, options: RunOptions | None,
          keywords: dict[str, Any]) -> tuple[EmbedSettings, RunOptions]:
    """``keywords`` split between the settings and the options by their field names."""
    names = {f.name for f in fields(RunOptions)}
    o = replace(options or RunOptions(), **{k: v for k, v in keywords.items() if k in names})
    return EmbedSettings.make(settings, **{k: v for k, v in keywords.items() if k not in names}), o


def _prepare(G: StyleGAN, s: EmbedSettings, loss_fn: EmbeddingLoss, w_init: torch.Tensor | None,
             o: RunOptions) -> tuple[RunOptions, dict]:
    """The encoder loaded once (``init="encoder"``: its id is part of the run identity, computed
    from its weights without running it) and the run identity, shared by every chunk."""
    enc_id = None
    if s.init == "encoder" and w_init is None:
        from .encoder import encoder_id, find_encoder, load_encoder

        if not isinstance(o.encoder, torch.nn.Module):
            o = replace(o, encoder=load_encoder(find_encoder(G, o.encoder), G))
        enc_id = encoder_id(o.encoder)
    return o, s.identity(G, loss_fn, given_init=w_init is not None, encoder=enc_id)


class _Progress:
    """A progress bar over the steps as an ``on_step`` hook, the mean loss beside it (read back
    every step on a CPU, every 50 on a GPU, where reading it waits for the device)."""

    def __init__(self, desc: str, enabled: bool, device: torch.device) -> None:
        self.desc, self.enabled, self.every, self.bar = desc, enabled, 1 if device.type == "cpu" else 50, None

    def __call__(self, st: EmbedState) -> None:
        if self.bar is None:
            self.bar = tqdm(desc=self.desc, disable=not self.enabled, initial=st.step, total=st.steps)
            return
        self.bar.update(1)
        if self.enabled and ((st.step - 1) % self.every == 0 or st.step == st.steps):
            self.bar.set_postfix(loss=f"{st.losses.mean().item():.4g}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def embed(G: StyleGAN, images: torch.Tensor, settings: EmbedSettings | None = None, *,
          loss_fn: EmbeddingLoss | None = None, w_init: torch.Tensor | None = None, options: RunOptions | None = None,
          identity: dict | None = None, **keywords: Any) -> EmbedResult:
    """Algorithm 1 on one batch (``images`` [N, 3, R, R] in [-1, 1]) with what surrounds a run.

    ``settings``/``keywords`` as for :func:`i2s.embed.embed` (``steps=1000``, ``init="uniform"``);
    keywords naming a :class:`RunOptions` field amend ``options``. ``init="encoder"`` starts from
    the prediction of ``options.encoder`` (an :class:`i2s.encoder.Encoder` or its file; default:
    the one for G, :func:`i2s.encoder.default_encoder`). ``identity``: the run identity when the
    caller has it (:func:`embed_in_batches`, with the encoder already loaded).

    With ``checkpoint`` the state is saved atomically every ``checkpoint_every`` steps, at the end
    and when the run is interrupted; the same call again resumes from it and gives the same
    latents as an uninterrupted run. SIGINT/SIGTERM wait for the end of the current step (a second
    Ctrl-C interrupts at once), then raise ``KeyboardInterrupt`` / ``SystemExit(143)``.
    """
    s, o = _sort(settings, options, keywords)
    check_images(G, images)
    images, loss_fn = images.to(G.device, G.w_avg.dtype), loss_fn or EmbeddingLoss(s.loss)
    if identity is None:
        o, identity = _prepare(G, s, loss_fn, w_init, o)
    if s.init == "encoder" and w_init is None:  # §5.1's start replaced by a learned prediction
        from .encoder import encoder_init

        w_init = encoder_init(G, images, o.encoder, s.space)
    ckpt = None if o.checkpoint is None else EmbedCheckpoint(
        Path(o.checkpoint), run_key(identity, images, w_init), identity, o.desc, (len(images), G, s.steps),
        o.checkpoint_every)
    progress = _Progress(o.desc, o.progress, G.device)
    try:
        with DeferredSignals() as signals:
            if ckpt is not None:
                ckpt.signals = signals
            hooks = [h for h in (ckpt, progress) if h is not None]

            def on_step(st: EmbedState) -> None:  # save, show, then deliver a waiting Ctrl-C / SIGTERM
                for hook in hooks:
                    hook(st)
                signals.raise_pending()

            res = algorithm_1(G, images, s, loss_fn=loss_fn, w_init=w_init, identity=identity, on_step=on_step,
                                  compile=o.compile, channels_last=o.channels_last)
        if ckpt is not None:
            ckpt.finish()
        return res
    except BaseException as e:
        if ckpt is not None:
            ckpt.interrupted(e)
        raise
    finally:
        progress.close()


# ----------------------------------------------------------------------------- batches


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


def embed_in_batches(G: StyleGAN, images: torch.Tensor, batch_size: int, settings: EmbedSettings | None = None, *,
                     loss_fn: EmbeddingLoss | None = None, w_init: torch.Tensor | None = None,
                     options: RunOptions | None = None, identity: dict | None = None,
                     on_chunk: Callable[[int, int, EmbedResult], Any] | None = None, **keywords: Any) -> EmbedResult:
    """:func:`embed` over ``images`` ([N, 3, R, R]) in chunks of at most ``batch_size``.

    When a chunk runs out of memory (``torch.cuda.OutOfMemoryError``, or a ``RuntimeError`` whose
    message says "out of memory"), the chunk size is halved (down to 1), the CUDA cache emptied,
    and that chunk is retried from its start; one line is said each time (``log``, default
    stderr). The smaller size is kept for the remaining chunks. If a single image does not fit,
    the error is raised with a message saying so. Since a batch is N independent problems, the
    results equal embedding with any chunk size.

    With ``checkpoint=PATH`` each chunk gets its own checkpoint (``PATH`` with ``.<first>-<end>``
    before the suffix) so that an interrupted call resumes chunk by chunk; they are deleted when
    all chunks are done unless ``keep_checkpoints`` (then delete :func:`chunk_checkpoints` after
    saving the results, so a crash in between loses nothing). The checkpoint of a chunk that ran
    out of memory is deleted: its images start again in the smaller chunks.
    ``on_chunk(i, j, result)`` is called as soon as images ``i:j`` are done; ``identity`` as for
    :func:`embed`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    s, o = _sort(settings, options, keywords)
    loss_fn = loss_fn or EmbeddingLoss(s.loss)
    if identity is None:
        o, identity = _prepare(G, s, loss_fn, w_init, o)
    log = o.log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    n = images.shape[0]
    parts: list[EmbedResult] = []
    written: list[Path] = []
    size, i = min(batch_size, max(n, 1)), 0
    while i < n:
        j = min(i + size, n)
        ckpt = _chunk_checkpoint(o.checkpoint, i, j) if o.checkpoint is not None else None
        failed: BaseException | None = None
        try:
            res = embed(G, images[i:j], settings=s, loss_fn=loss_fn, w_init=None if w_init is None else w_init[i:j],
                        identity=identity, options=replace(o, checkpoint=ckpt, desc=f"{o.desc} {i + 1}-{j}/{n}"))
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
    if not o.keep_checkpoints:
        for ckpt in written:
            ckpt.unlink(missing_ok=True)
    if not parts:
        raise ValueError("no images to embed")
    return _concat(parts)


# ----------------------------------------------------------------------------- the disk cache


#: Peak memory of one image of one optimiser step at 1024 px on a CPU (float32, forward and backward of
#: the FFHQ generator and the loss; measured 1.3 GB) and the most one batch may take there.
_CPU_BYTES_PER_1024_IMAGE = 1.3e9
CPU_BATCH_BYTES = 3e9


def default_batch_size(G: StyleGAN) -> int:
    """Images optimised together when the caller does not say: 8, except on a CPU at high
    resolution, where a batch is held to :data:`CPU_BATCH_BYTES` (2 at 1024 px): a CPU has no
    out-of-memory error to halve the batch on (the kernel kills the process instead), and there a
    batch is no faster per image than one image at a time at 1024 px."""
    if G.device.type != "cpu":
        return 8
    per_image = _CPU_BYTES_PER_1024_IMAGE * (G.resolution / 1024) ** 2
    return max(1, min(8, int(CPU_BATCH_BYTES // per_image)))


def cached_embed(G: StyleGAN, images: torch.Tensor, settings: EmbedSettings | None = None, *,
                 loss_fn: EmbeddingLoss | None = None, cache_dir: str | Path | None = None, batch_size: int | None = None,
                 w_init: torch.Tensor | None = None, verbose: bool = True, options: RunOptions | None = None,
                 on_done: Callable[[list[int], EmbedResult], Any] | None = None, **keywords: Any) -> EmbedResult:
    """Algorithm 1 with a disk cache (:mod:`i2s.cache`): images already embedded with exactly this
    run identity are loaded, the rest embedded through :func:`embed_in_batches` (equal chunks of
    at most ``batch_size``, default :func:`default_batch_size`, halved on out-of-memory) and stored.

    ``settings``/``options``/``keywords`` as for :func:`embed`; options are never in the key.
    ``on_done(indices, result)`` is called for the reused images first, then for each chunk as
    soon as it is computed and stored (the CLI writes its outputs there). Returns one
    :class:`EmbedResult` for all images, in order.
    """
    s, o = _sort(settings, options, keywords)
    loss_fn = loss_fn or EmbeddingLoss(s.loss)
    folder = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()
    o, identity = _prepare(G, s, loss_fn, w_init, o)
    n = images.shape[0]
    keys = [cache.entry_key(G, images[i], identity, None if w_init is None else w_init[i]) for i in range(n)]
    parts: list[dict | None] = [cache.load_entry(folder / f"{k}.pt", images.shape[1:]) for k in keys]
    todo = [i for i in range(n) if parts[i] is None]
    if verbose:
        print(f"[i2s cache] {n - len(todo)} of {n} embeddings reused from {folder}")
    hits = [i for i in range(n) if parts[i] is not None]
    if hits and on_done is not None:
        on_done(hits, cache.stack_entries([parts[i] for i in hits], identity))

    def store(a: int, b: int, res: EmbedResult) -> None:
        for j, i in enumerate(todo[a:b]):
            parts[i] = cache.entry_of(res, j)
            cache.store_entry(folder / f"{keys[i]}.pt", parts[i])
        if on_done is not None:
            on_done(todo[a:b], res)

    if todo:
        if o.checkpoint is not None and len(todo) < n:  # one checkpoint set per set of images to do
            base = Path(o.checkpoint)
            tag = hashlib.sha256("".join(keys[i] for i in todo).encode()).hexdigest()[:12]
            o = replace(o, checkpoint=base.with_name(f"{base.stem}-{tag}{base.suffix or '.pt'}"))
        # chunks of ceil(n / ceil(n / batch_size)) images (25 at most 8 -> 7, 7, 7, 4, not 8, 8, 8, 1: a lone image is slow)
        batch_size = batch_size or default_batch_size(G)
        size = math.ceil(len(todo) / math.ceil(len(todo) / batch_size))
        embed_in_batches(G, images[todo], size, s, loss_fn=loss_fn, options=o, identity=identity, on_chunk=store,
                         w_init=None if w_init is None else w_init[todo])
    return cache.stack_entries([p for p in parts if p is not None], identity)

