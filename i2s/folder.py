"""A folder of photos embedded with Algorithm 1 on Ray workers (``i2s embed-folder``, issue 36).

Embedding is one optimisation per photo (§5.1: 5000 Adam steps of Eq. 1 from w̄), so a folder
of thousands of photos (the field's benchmark embeds the 2,824 CelebA-HQ test photos) is that
many independent problems: this module spreads them over workers, one GPU each where there
are GPUs, on a Ray session that is either started here on this machine (the default; stopped,
and its temporary folder removed, when the run ends) or an existing cluster (``address``).

* :func:`find_images`: the image files under a folder (recursive, sorted), with output names;
* :class:`FolderJob`: what every worker is told, plain values only: the generator and the
  perceptual network by their names or file paths, which each worker loads itself (no network,
  module or function of ours is pickled and sent; workers import ``i2s`` from their own install);
* :class:`FolderWorker`: a worker (a Ray actor): loads the generator and the loss once, embeds
  batches of photos through :func:`i2s.runner.cached_embed` and returns a row per photo;
* :func:`embed_folder`: the driver: the session, the workers, a queue of batches, one progress
  bar over the whole folder and the merged table ``embeddings.csv``.

Nothing finished is computed twice: every photo's result lands in the content-addressed
embedding cache (:mod:`i2s.cache`) as soon as its batch is done, and the driver writes its latent
file, images and table row at once. A worker process that dies (killed, out of host memory) is
restarted by Ray and its unfinished batch retried there (Ray's ``max_restarts`` and
``max_task_retries``); the retry resumes from the batch's checkpoint. A file that cannot be read
is a row with its error; it never stops its batch or the run.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import shutil
import socket
import sys
import tempfile
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

import torch

from .data import IMAGE_EXTENSIONS
from .loss import EmbeddingLoss

__all__ = ["Photo", "FolderJob", "FolderWorker", "FolderRun", "WorkerLoadError", "find_images", "embed_folder",
           "local_ray", "TABLE", "COLUMNS"]

#: The merged table, one row per photo, in the output folder.
TABLE = "embeddings.csv"
#: Its columns: the photo, what became of it, the numbers ``i2s embed`` reports (Eq. 1's loss and
#: its two parts, PSNR, ‖w* − w̄‖), its latent file, the run's settings, the model and its tier,
#: and which worker on which node and device made it (with its batch's wall time).
COLUMNS = ("image", "path", "status", "error", "loss", "loss_x1e5", "mse_255", "perceptual", "psnr_db",
           "dist_to_w_avg", "stopped_at", "latent", "steps", "schedule", "space", "init", "aligned", "model",
           "tier", "perceptual_net", "worker", "worker_pid", "node", "device", "batch_images", "batch_seconds")
#: Where workers keep their batches' checkpoints (inside the output folder; removed after a full run).
CHECKPOINTS = ".i2s-checkpoints"
#: How often Ray restarts a worker process that died, retrying its batch each time.
RESTARTS = 3
MAX_STEM = 120  # output names: a long file name is cut (plus a hash), as `i2s embed` does


class WorkerLoadError(RuntimeError):
    """A worker could not load the generator or the perceptual network (one line, naming it)."""


# ----------------------------------------------------------------------------- the photos


@dataclass(frozen=True)
class Photo:
    """One photo: its file, its path relative to the folder (the table's ``path``) and its output
    name under ``--out`` (that path without its suffix: ``sub/a.jpg`` -> ``sub/a.latent.pt``)."""

    path: str
    rel: str
    name: str


def find_images(folder: str | Path, exclude: str | Path | None = None) -> list[Photo]:
    """The image files (:data:`i2s.data.IMAGE_EXTENSIONS`) under ``folder``, recursively, sorted;
    hidden files and folders and the folder ``exclude`` (the output folder, when it lies inside)
    are left out. Links to folders are not followed (no loop can make the walk endless)."""
    root = Path(folder).resolve()
    skip = Path(exclude).resolve() if exclude is not None else None
    found: list[Path] = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (Path(here) / d).resolve() != skip)
        found += [Path(here) / f for f in sorted(files)
                  if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    rels = [p.relative_to(root).as_posix() for p in found]
    names = _output_names([str(PurePosixPath(r).with_suffix("")) for r in rels])
    return [Photo(str(p), r, n) for p, r, n in zip(found, rels, names)]


def _output_names(stems: list[str]) -> list[str]:
    """Unique output names: ``a.png`` and ``a.jpg`` become ``a`` and ``a-2``, and no photo's
    NAME.png is another's NAME-target.png (the rule of ``i2s embed``); a long file name is cut."""
    taken: set[str] = set()
    names = []
    for stem in stems:
        p = PurePosixPath(stem)
        if len(p.name.encode()) > MAX_STEM:
            cut = p.name.encode()[: MAX_STEM - 9].decode(errors="ignore")
            p = p.with_name(f"{cut}-{hashlib.sha256(p.name.encode()).hexdigest()[:8]}")
        base, name, k = str(p), str(p), 2
        while name in taken or f"{name}-target" in taken or (name.endswith("-target") and name[:-7] in taken):
            name, k = f"{base}-{k}", k + 1
        taken.add(name)
        names.append(name)
    return names


# ----------------------------------------------------------------------------- a worker


@dataclass(frozen=True)
class FolderJob:
    """What every worker is told: plain values, the options of ``i2s embed``. The generator and
    the perceptual network go by name or file path (each worker loads them from its own disk)."""

    model: str = "mini"  # a kit name or a generator file (i2s.models.load_generator); resolve "auto" first
    perceptual: str = "auto"  # auto | random | efficientnet-lite0 | PATH of vgg16-397923af.pth
    loss: str = "full"  # Eq. 1, or a Fig. 9 ablation
    resize: int | None = 256  # the perceptual loss's resize (None: full resolution, Fig. 12)
    space: str = "w+"
    init: str = "mean"
    steps: int | None = None  # None: the schedule's own (5000 for the paper's)
    schedule: str = "paper"
    seed: int = 0
    align: bool = False  # FFHQ-align faces first (dlib); otherwise centre-crop
    device: str = "auto"  # on each worker: auto = its GPU when Ray gave it one
    cache_dir: str = ""  # the embedding cache the workers read and fill
    checkpoint_dir: str | None = None  # where batches keep resumable checkpoints (None: none)
    checkpoint_every: int = 250


def _one_line(e: BaseException) -> str:
    from .cli_common import plain_torch_text
    from .weights.limits import first_line

    return plain_torch_text(first_line(e, 300))


class _CountingLoss(EmbeddingLoss):
    """Eq. 1, counting the images whose target features it computed: a batch that needed none
    was found whole in the cache."""

    targets = 0

    def target(self, img: torch.Tensor) -> dict[str, object]:
        self.targets += len(img)
        return super().target(img)


class FolderWorker:
    """One worker (a Ray actor, ``ray.remote(FolderWorker)``; a plain object in tests): the
    generator and the loss are loaded once, then :meth:`embed` takes batches of photos.

    A failure to load is kept and reported by :meth:`info` rather than raised, so the driver can
    say it in one line (an actor whose constructor raises is only seen as a dead actor)."""

    def __init__(self, job: FolderJob, index: int) -> None:
        self.job, self.index, self.error = job, index, None
        try:
            self._load()
        except Exception as e:  # noqa: BLE001 - a missing, bad or refused weight file: said by info()
            self.error = f"cannot load the generator {job.model} or the perceptual network {job.perceptual}: " \
                         f"{_one_line(e)}"

    def _load(self) -> None:
        from . import precision as P
        from .embed import EmbedSettings
        from .loss import LossSettings
        from .models import describe_tier, load_generator
        from .runtime import resolve_device

        # Ray sets OMP_NUM_THREADS to the worker's CPUs (1): one thread each, as many workers as cores
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or 1)))
        self.G = load_generator(self.job.model, device=resolve_device(self.job.device), verbose=False)

        self.loss_fn = _CountingLoss(LossSettings(variant=self.job.loss, resize=self.job.resize), self.job.perceptual)
        j = self.job
        self.settings = EmbedSettings.make(space=j.space, init=j.init, steps=j.steps, schedule=j.schedule, seed=j.seed,
                                           loss=self.loss_fn.settings)
        self.device_line = P.describe(self.settings.resolved_precision(self.G.device), self.G.device)
        self.tier = describe_tier(self.G)

    def info(self) -> dict[str, Any]:
        """Who this worker is: its index, process, node, device, model and tier (or its load error)."""
        out: dict[str, Any] = {"worker": self.index, "pid": os.getpid(), "node": socket.gethostname(),
                               "error": self.error}
        if self.error is None:
            out.update(device=self.device_line, model=self.G.name, tier=self.G.info.get("tier"), tier_text=self.tier,
                       perceptual_net=self.loss_fn.perceptual_net, steps=self.settings.steps)
        return out

    def embed(self, photos: list[Photo]) -> list[dict[str, Any]]:
        """Embed a batch: each photo loaded (a bad one becomes a ``failed`` row), the rest through
        :func:`i2s.runner.cached_embed` (found in the cache, or embedded together and stored).
        Returns, per photo in order, ``{"row": ..., "w_plus", "latent", "meta", "png",
        "target_png"}`` (plain values, tensors and PNG bytes; no files are written here but the
        cache's and the checkpoint's)."""
        from .data import load_target
        from .runner import RunOptions, cached_embed

        if self.error is not None:
            return [self._failed(p, self.error) for p in photos]
        t0 = time.perf_counter()
        out: dict[int, dict[str, Any]] = {}
        targets, kept = [], []
        for k, photo in enumerate(photos):
            try:
                targets.append(load_target(photo.path, self.G, align=self.job.align))
                kept.append(k)
            except Exception as e:  # noqa: BLE001 - a bad file is its own row; the batch goes on
                out[k] = self._failed(photo, _one_line(e))
        if targets:
            images, notes = torch.cat(targets), []
            seen = [self.loss_fn.targets]

            def done(indices: list[int], res) -> None:  # noqa: ANN001 - an EmbedResult
                reused = self.loss_fn.targets == seen[0]  # no target features computed: from the cache
                seen[0] = self.loss_fn.targets
                for j, i in enumerate(indices):
                    out[kept[i]] = self._done(photos[kept[i]], res, j, images[i:i + 1], reused, notes)

            ckpt = None
            if self.job.checkpoint_dir and self.job.checkpoint_every:
                tag = hashlib.sha256(json.dumps([asdict(self.job), [p.rel for p in photos]]).encode()).hexdigest()[:16]
                ckpt = Path(self.job.checkpoint_dir) / f"batch-{tag}.pt"
            try:
                cached_embed(self.G, images, self.settings, loss_fn=self.loss_fn, cache_dir=self.job.cache_dir,
                             batch_size=len(images), verbose=False, on_done=done,
                             options=RunOptions(checkpoint=ckpt, checkpoint_every=self.job.checkpoint_every or 250,
                                                progress=False, log=notes.append))
            except Exception as e:  # noqa: BLE001 - e.g. a single image too large for the GPU
                for k in kept:
                    out.setdefault(k, self._failed(photos[k], _one_line(e)))
        seconds = time.perf_counter() - t0
        for r in out.values():
            r["row"].update(batch_images=len(photos), batch_seconds=f"{seconds:.2f}")
        return [out[k] for k in range(len(photos))]

    def _who(self) -> dict[str, Any]:
        return {"worker": self.index, "worker_pid": os.getpid(), "node": socket.gethostname(),
                "device": getattr(self, "device_line", self.job.device)}

    def _failed(self, photo: Photo, error: str) -> dict[str, Any]:
        return {"row": {"image": photo.name, "path": photo.rel, "status": "failed", "error": error, **self._who()}}

    def _done(self, photo: Photo, res, j: int, target, reused: bool, notes: list[str]) -> dict[str, Any]:  # noqa: ANN001
        from .io import tensor_to_pil, versions
        from .loss import mse_255

        s, loss = self.settings, res.loss[j].item()
        mse = mse_255(res.images[j:j + 1], target).item()  # Eq. 1 = perceptual + λ_mse · MSE (0-255 units)
        lam = self.loss_fn.settings.lambda_mse if self.loss_fn.use_mse else 0.0
        stopped = int(res.stopped_at[j])
        note = [m for m in res.messages if m.startswith(f"image {j}:")] + notes
        row = {"image": photo.name, "path": photo.rel, "status": "cached" if reused else "embedded",
               "error": "; ".join(m.split(": ", 1)[-1] for m in note), "loss": f"{loss:.6g}",
               "loss_x1e5": f"{loss / 1e5:.4f}", "mse_255": f"{mse:.4f}", "perceptual": f"{loss - lam * mse:.6g}",
               "psnr_db": f"{res.psnr[j].item():.2f}", "dist_to_w_avg": f"{res.dist_to_w_avg[j].item():.4f}",
               "stopped_at": stopped, "steps": s.steps, "schedule": s.schedule, "space": s.space, "init": s.init,
               "aligned": self.job.align, "model": self.G.name, "tier": self.G.info.get("tier"),
               "perceptual_net": self.loss_fn.perceptual_net, **self._who()}
        meta = {**res.settings, "image": photo.name, "source": photo.rel, "tier": self.tier, "model_info": self.G.info,
                "device": self.device_line, "aligned": self.job.align, "final_loss": loss, "versions": versions(),
                "worker": f"{self.index} (pid {os.getpid()} on {socket.gethostname()})"}

        def png(x) -> bytes:  # noqa: ANN001
            buf = io.BytesIO()
            tensor_to_pil(x).save(buf, format="PNG")
            return buf.getvalue()

        return {"row": row, "w_plus": res.w_plus[j].clone(), "latent": res.latent[j].clone(), "meta": meta,
                "png": png(res.images[j]), "target_png": png(target)}


# ----------------------------------------------------------------------------- the driver


@dataclass
class FolderRun:
    """What a run did: the table, how many photos were embedded, found in the cache or failed,
    the workers (:meth:`FolderWorker.info`) and the wall time of the embedding (workers ready to
    last row written; the session's start is not in it)."""

    table: Path
    photos: int = 0
    embedded: int = 0
    cached: int = 0
    failed: int = 0
    seconds: float = 0.0
    session: str = ""
    workers: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)  # the rows of the photos that failed


#: Tries at starting a local session: Ray 2.60 gives its agents 15 s to come up and the node 30 s,
#: which a busy machine can miss (ray-project/ray#65983); a second try usually makes it.
LOCAL_TRIES = 3


@contextmanager
def local_ray(cpus: int, gpus: int = 0, say: Callable[[str], Any] = print, **init: Any) -> Iterator[None]:
    """A Ray session on this machine only, for the ``with`` block: ``cpus`` CPUs, ``gpus`` GPUs, no
    dashboard, no usage report, its temporary folder under ``$TMPDIR`` (removed at the end), and
    nothing of it left running afterwards. ``init``: more ``ray.init`` keywords (``runtime_env``)."""
    import ray

    import signal
    import threading

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a local run reports nothing anywhere
    tmp = tempfile.mkdtemp(prefix="i2s-ray-")  # short: Ray's socket paths must stay under 108 bytes
    # ray.init installs its own SIGINT/SIGTERM handlers in the driver and ray.shutdown leaves them:
    # give the process its handlers back, or a later SIGTERM ends it Ray's way
    main = threading.current_thread() is threading.main_thread()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        for attempt in range(1, LOCAL_TRIES + 1):
            try:
                ray.init(num_cpus=cpus, num_gpus=gpus, include_dashboard=False, _temp_dir=tmp, log_to_driver=False,
                         logging_level=logging.ERROR, **init)
                break
            except Exception as e:  # noqa: BLE001 - Ray's start-up timeouts are plain Exceptions
                ray.shutdown()
                _stop_processes_of(tmp)  # what the failed try had started
                if attempt == LOCAL_TRIES:
                    raise RuntimeError(f"could not start a local Ray session in {LOCAL_TRIES} tries ({_one_line(e)}); "
                                       "the machine may be too busy: try again, or start Ray yourself with "
                                       "`ray start --head` and give --address auto") from None
                say(f"[i2s] Ray did not come up in time (a busy machine?): trying again ({attempt + 1} of "
                    f"{LOCAL_TRIES})")
        yield
    finally:
        ray.shutdown()
        _stop_processes_of(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)


def _stop_processes_of(session_dir: str, wait_s: float = 10.0) -> None:
    """Stop the processes whose command line names ``session_dir`` (a local session's own
    temporary folder: only its processes do), such as those of a start that timed out, which
    ``ray.shutdown`` does not know: SIGTERM, up to ``wait_s`` for them to go, then SIGKILL (so
    that the folder can be removed after). Linux only (/proc); elsewhere Ray's reaper stops them
    when this process exits."""
    import signal

    proc = Path("/proc")
    if not proc.is_dir():
        return

    def alive() -> list[int]:
        pids = []
        for p in proc.iterdir():
            try:
                if p.name.isdigit() and int(p.name) != os.getpid() and \
                        session_dir in (p / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(p.name))
            except OSError:  # gone meanwhile, or not ours to read
                pass
        return pids

    deadline = time.monotonic() + wait_s
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive():
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        while alive() and time.monotonic() < deadline:
            time.sleep(0.2)


@contextmanager
def _ray_session(address: str | None, cpus: int, gpus: int, say: Callable[[str], Any]) -> Iterator[str]:
    """A Ray session: the one already open in this process (left open), the cluster at
    ``address`` (disconnected at the end), or a local one for the run (:func:`local_ray`)."""
    import ray

    if ray.is_initialized():
        yield "the Ray session already open in this process"
    elif address:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except Exception as e:  # noqa: BLE001 - no cluster there, a refused token, ...
            from .cli_common import UsageError

            raise UsageError(f"--address {address}: cannot connect to a Ray cluster ({_one_line(e)}); start one "
                             "with `ray start --head` and give the address it prints, or leave --address out "
                             "for a local run") from None
        try:
            yield f"the Ray cluster at {address}"
        finally:
            ray.shutdown()
    else:
        say(f"[i2s] starting a local Ray session ({cpus} CPU{'s' * (cpus != 1)}"
            + (f", {gpus} GPU{'s' * (gpus != 1)}" if gpus else "") + ")")
        with local_ray(cpus, gpus, say):
            yield "a local Ray session"


def _batches(photos: list[Photo], batch: int, workers: int) -> list[list[Photo]]:
    """Batches of at most ``batch`` photos, as equal as they can be (25 at most 8: 7, 6, 6, 6; a
    lone photo costs nearly what a batch does), and at least as many as there are workers, so
    that none waits while another holds two."""
    n = len(photos)
    count = max(math.ceil(n / batch), min(workers, n))
    sizes = [n // count + (i < n % count) for i in range(count)]
    starts = [sum(sizes[:i]) for i in range(count)]
    return [photos[a:a + k] for a, k in zip(starts, sizes)]


class _Table:
    """The output folder's side of a run: each finished photo's latent file and images written,
    its row put in ``embeddings.csv`` (rewritten atomically after every batch; rows of earlier
    runs kept), the counts of :class:`FolderRun` kept up."""

    def __init__(self, out: Path, run: FolderRun) -> None:
        from .io import read_csv_rows

        self.out, self.run = out, run
        self.rows = {r.get("image", ""): r for r in read_csv_rows(run.table)}

    def land(self, results: list[dict]) -> None:
        from .io import atomic_write_bytes, save_latent, write_csv

        for r in results:
            row = r["row"]
            if row["status"] != "failed":
                latent = self.out / f"{row['image']}.latent.pt"
                save_latent(latent, r["w_plus"], r["meta"], latent=r["latent"])
                atomic_write_bytes(self.out / f"{row['image']}.png", r["png"])
                atomic_write_bytes(self.out / f"{row['image']}-target.png", r["target_png"])
                row["latent"] = latent.relative_to(self.out).as_posix()
            else:
                self.run.failures.append(row)
            self.rows[row["image"]] = row
            setattr(self.run, row["status"], getattr(self.run, row["status"]) + 1)
        extra = dict.fromkeys(k for r in self.rows.values() for k in r if k not in COLUMNS)
        write_csv(self.run.table, sorted(self.rows.values(), key=lambda r: r.get("path", "")),
                  fieldnames=[*COLUMNS, *extra])


def _failed(photos: list[Photo], error: str) -> list[dict]:
    """Rows for photos no worker could finish."""
    return [{"row": {"image": p.name, "path": p.rel, "status": "failed", "error": error}} for p in photos]


def embed_folder(folder: str | Path, out: str | Path, job: FolderJob, *, workers: int | None = None,
                 address: str | None = None, batch: int = 8, progress: bool = True,
                 say: Callable[[str], Any] = print,
                 on_rows: Callable[[list[dict]], Any] | None = None) -> FolderRun:
    """Embed every photo under ``folder`` (:func:`find_images`) on ``workers`` Ray workers and
    write, per photo, ``NAME.latent.pt``, ``NAME.png`` (its reconstruction), ``NAME-target.png``
    and a row of ``out/embeddings.csv`` (:data:`COLUMNS`; rows of earlier runs kept).

    ``workers``: default one per GPU (the cluster's, or this machine's), 1 without GPUs; each
    worker takes one CPU and, where there are GPUs, one GPU (a share when there are more workers
    than GPUs). ``address``: an existing Ray cluster (``auto``, ``ray://host:10001``, ...); by
    default a local session is started for the run. A Ray session already open in this process
    is used as it is. ``batch``: at most this many photos are optimised together per worker.
    ``on_rows(rows)`` is called after each batch's outputs are written.

    Raises :class:`WorkerLoadError` when the workers cannot load the generator or the loss's
    network, ``ValueError`` when the folder holds no image.
    """
    import ray

    out = Path(out)
    photos = find_images(folder, exclude=out)
    if not photos:
        raise ValueError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in it or its sub-folders")
    use_gpus = job.device != "cpu"
    local_gpus = torch.cuda.device_count() if use_gpus and not address and not ray.is_initialized() else 0
    with _ray_session(address, workers or max(1, local_gpus), local_gpus, say) as session:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if use_gpus else 0
        n, cpus = workers or max(1, gpus), int(resources.get("CPU", 0))
        if n > cpus:  # more would wait for ever (one CPU each); fewer free now only wait their turn
            from .cli_common import UsageError

            raise UsageError(f"--workers {n}: {session} has {cpus} CPU(s), one per worker; give "
                             f"--workers {max(1, cpus)} or fewer")
        say(f"[i2s] starting {n} worker{'s' * (n != 1)} on {session}: each loads the generator {job.model}")
        Worker = ray.remote(FolderWorker).options(num_cpus=1, num_gpus=min(1.0, gpus / n) if gpus else 0,
                                                  max_restarts=RESTARTS, max_task_retries=RESTARTS)
        actors = [Worker.remote(job, i) for i in range(n)]
        try:
            run = FolderRun(out / TABLE, photos=len(photos), session=session,
                            workers=_ready(ray, actors, job, say))
            queue = deque(_batches(photos, batch, n))
            say(f"[i2s] {len(photos)} photos under {folder} in {len(queue)} batches")
            _drive(ray, actors, queue, _Table(out, run), progress, on_rows)
        finally:
            for actor in actors:  # in a session that stays open (a cluster's) the workers go now
                ray.kill(actor)
    if job.checkpoint_dir:  # every photo done or failed: checkpoints of this and older runs go
        shutil.rmtree(job.checkpoint_dir, ignore_errors=True)
    return run


def _ready(ray, actors: list, job: FolderJob, say: Callable[[str], Any]) -> list[dict]:  # noqa: ANN001
    """The workers' :meth:`FolderWorker.info` once each has loaded the generator and the loss."""
    from ray.exceptions import RayError

    try:
        infos = ray.get([a.info.remote() for a in actors])
    except RayError as e:  # a worker process died while loading (out of host memory, say)
        raise WorkerLoadError(f"a worker died while loading the generator {job.model}: {_one_line(e)}") from None
    bad = next((i for i in infos if i["error"]), None)
    if bad is not None:
        raise WorkerLoadError(f"worker {bad['worker']} on {bad['node']}: {bad['error']}")
    first = infos[0]
    say(f"[i2s] model {first['model']} ({first['tier_text']}); perceptual network: {first['perceptual_net']}; "
        f"{first['steps']} steps per photo")
    for i in infos:
        say(f"[i2s] worker {i['worker']}: pid {i['pid']} on {i['node']}, {i['device']}")
    return infos


def _drive(ray, actors: list, queue: deque, table: _Table, progress: bool,  # noqa: ANN001
           on_rows: Callable[[list[dict]], Any] | None) -> None:
    """Hand batches to idle workers until none is left, landing each result as it comes, under
    one progress bar. A worker Ray gave up restarting is dropped; its batch's photos go back to
    the queue one by one (so a photo that kills every worker fails alone)."""
    from ray.exceptions import RayActorError, RayError
    from tqdm.auto import tqdm

    run, idle, running = table.run, deque(actors), {}
    bar = tqdm(total=run.photos, desc="embed-folder", unit="photo", disable=not progress)
    t0 = time.perf_counter()

    def submit() -> None:
        while idle and queue:
            actor, part = idle.popleft(), queue.popleft()
            running[actor.embed.remote(part)] = (actor, part)

    try:
        while queue or running:
            submit()
            if not running:  # photos left and every worker gone
                results = _failed([p for part in queue for p in part], "not embedded: every worker died repeatedly")
                queue.clear()
            else:
                (ref,), _ = ray.wait(list(running), num_returns=1)
                actor, part = running.pop(ref)
                try:
                    results = ray.get(ref)
                    idle.append(actor)
                except RayActorError as e:  # restarted RESTARTS times, died again: this worker is gone
                    results = [] if len(part) > 1 else _failed(part, f"its worker died {RESTARTS + 1} times "
                                                                     f"embedding it (killed, or out of memory): "
                                                                     f"{_one_line(e)}")
                    queue.extendleft(reversed([[p] for p in part]) if len(part) > 1 else [])
                except RayError as e:  # an error in the worker's code: the batch fails, the worker goes on
                    idle.append(actor)
                    results = _failed(part, _one_line(e))
                submit()  # the workers go on while this batch is written
            if results:
                table.land(results)
                bar.update(len(results))
                bar.set_postfix(failed=run.failed, refresh=False)
                if on_rows is not None:
                    on_rows([r["row"] for r in results])
    finally:
        bar.close()
        run.seconds = time.perf_counter() - t0
