# A frozen copy of i2s/embed.py before the EmbedSettings refactor (issue 16), kept so that
# tests/test_embed.py can check that the refactored embed() gives the same latents bit for bit.
# Not part of the package; do not edit.
"""Algorithm 1 of the paper: embed images into the latent space of a pre-trained StyleGAN.

    w* = argmin_w  L_percept(G(w), I) + lambda_mse / N * ||G(w) - I||^2        (Eq. 1)

optimised with Adam (lr 0.01, betas (0.9, 0.999), eps 1e-8) for 5000 steps from w̄, with
the generator's noise kept constant (§5, §5.3). ``space`` picks the latent space of §3.3
(``"w+"``: one w per style layer, the paper's choice; ``"w"``: one w broadcast to every layer;
``"z"``: one z through the mapping network); ``init`` the initialisation of §5.1.

Speed (see ``docs/performance.md`` and ``benchmarks/embed_speed.py``): the target's VGG features
are computed once, the N images of a batch are optimised together, the loop never waits for the
device (the loss is read back only for the progress bar, every 50 steps), and neither generator
nor VGG weights get gradients. On a Linux CPU glibc's allocator keeps large blocks while
embedding (:func:`_large_cpu_blocks_kept`). On CUDA the forward and backward passes run under
bf16 autocast (``amp``; the loss is accumulated in float32), cuDNN autotunes its convolutions
and Adam uses its fused kernel.
``compile`` and ``channels_last`` are opt-in. None of this changes the result beyond float
rounding (bf16 aside: ``amp=False`` gives float32 on CUDA too). ``schedule="fast"`` is an opt-in
learning-rate schedule that reaches the paper protocol's final loss in a fraction of the steps;
it does change the path of the optimisation, so it is recorded in ``settings``.

A batch of N images is N independent problems: the per-image losses are summed, so each
latent only receives the gradient of its own loss, and Adam's update is element-wise. With
``init="uniform"`` the seeded U[-1, 1] draw is the same for every image of the batch, so a
batch gives the same latents as N single runs with the same seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from tqdm.auto import tqdm

from i2s.loss import EmbeddingLoss, psnr
from i2s.stylegan import NoiseMode, StyleGAN

Space = Literal["w+", "w", "z"]
Init = Literal["mean", "uniform", "normal"]
Schedule = Literal["paper", "fast"]

PAPER_STEPS, PAPER_LR = 5000, 0.01
# The opt-in fast schedule (stylegan2-ada's projector ramp): peak learning rate FAST_LR, linear
# warm-up over the first FAST_RAMPUP of the steps, cosine ramp-down over the last FAST_RAMPDOWN.
# Chosen by benchmarks/time_to_quality.py on the mini model (peak lr 0.05-1.6, ramp-down 0.25-1,
# 1250 steps = a quarter of the paper's): docs/performance.md.
FAST_STEPS, FAST_LR, FAST_RAMPUP, FAST_RAMPDOWN = 1250, 0.8, 0.05, 0.25


def learning_rate(schedule: Schedule, step: int, steps: int, lr: float) -> float:
    """The learning rate of step ``step`` (0-based) of ``steps``: constant ``lr`` for the paper's
    protocol; for ``"fast"`` ``lr`` times a linear warm-up and a cosine ramp-down."""
    if schedule == "paper":
        return lr
    if schedule != "fast":
        raise ValueError(f"schedule must be 'paper' or 'fast', got {schedule!r}")
    t = step / steps
    ramp = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / FAST_RAMPDOWN))
    return lr * ramp * min(1.0, (step + 1) / max(1.0, FAST_RAMPUP * steps))


@dataclass
class EmbedResult:
    """What Algorithm 1 returns, per image of the batch (all tensors on the CPU).

    ``w_plus``: the embedded W+ codes [N, num_layers, w_dim] (for ``w``/``z`` spaces the one
    code broadcast to every layer); ``latent``: the optimised variable itself;
    ``images``: the reconstructions G(w*) [N, 3, H, W] in [-1, 1]; ``loss``: the final loss L
    (Eq. 1, paper units: divide by 1e5 for the tables); ``dist_to_w_avg``: ||w* - w̄|| (the L2
    norm of the whole W+ difference); ``psnr``: dB; ``loss_curve``: [steps, N], the loss at
    each step before its update (Fig. 10); ``stopped_at``: the step at which an image's loss
    became NaN/inf (its latent is the last good one), -1 if never; ``resumed_from``: the step a
    checkpoint resumed the run from (0 for a fresh run).
    """

    w_plus: torch.Tensor
    latent: torch.Tensor
    images: torch.Tensor
    loss: torch.Tensor
    dist_to_w_avg: torch.Tensor
    psnr: torch.Tensor
    loss_curve: torch.Tensor
    stopped_at: torch.Tensor
    settings: dict = field(default_factory=dict)
    resumed_from: int = 0

    @property
    def messages(self) -> list[str]:
        """One line per image whose loss became NaN/inf: the step, and that its last good latent is kept."""
        return [f"image {i}: loss became non-finite (NaN/inf) at step {int(s)}; optimisation of this image "
                + (f"stopped there and its last good latent (that of step {int(s) - 1}) is kept" if s > 0 else
                   "stopped at once: its initial latent is kept (check the image and the settings)")
                for i, s in enumerate(self.stopped_at) if s >= 0]


def initial_latent(G: StyleGAN, n: int, space: Space, init: Init, seed: int) -> torch.Tensor:
    """The starting point of §5.1: ``mean`` = w̄, ``uniform`` = U[-1, 1] per element.

    ``normal`` = N(0, 1) per element (for Z). One draw per seed, shared by the N images.
    """
    shape = {"w+": (1, G.num_layers, G.w_dim), "w": (1, G.w_dim), "z": (1, G.z_dim)}[space]
    gen = torch.Generator().manual_seed(seed)
    if init == "mean":
        if space == "z":
            raise ValueError("init='mean' is w̄, a point of W; there is no mean code in Z: use init='normal' or 'uniform'")
        x = G.w_avg.detach().cpu().float().expand(shape)
    elif init == "uniform":
        x = torch.rand(shape, generator=gen) * 2 - 1
    elif init == "normal":
        x = torch.randn(shape, generator=gen)
    else:
        raise ValueError(f"init must be 'mean', 'uniform' or 'normal', got {init!r}")
    return x.expand(n, *shape[1:]).clone().to(G.device, G.w_avg.dtype)


def to_w_plus(G: StyleGAN, latent: torch.Tensor, space: Space) -> torch.Tensor:
    """The W+ code the synthesis network sees for a latent of the given space."""
    if space == "w+":
        return latent
    if space == "w":
        return latent.unsqueeze(1).expand(-1, G.num_layers, -1)
    if space == "z":
        return G.mapping(latent)
    raise ValueError(f"space must be 'w+', 'w' or 'z', got {space!r}")


def embed(
    G: StyleGAN,
    images: torch.Tensor,
    *,
    space: Space = "w+",
    init: Init = "mean",
    steps: int | None = None,
    lr: float | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    loss_fn: EmbeddingLoss | None = None,
    noise_mode: NoiseMode = "const",
    seed: int = 0,
    w_init: torch.Tensor | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 250,
    progress: bool = True,
    desc: str = "embed",
    schedule: Schedule = "paper",
    amp: bool | None = None,
    compile: bool = False,
    channels_last: bool = False,
) -> EmbedResult:
    """Algorithm 1: find w* with G(w*) ≈ I for each image of ``images`` ([N, 3, H, W] in [-1, 1]).

    Defaults are the paper's: W+, w̄ initialisation, 5000 Adam steps (lr 0.01, betas
    (0.9, 0.999), eps 1e-8), the loss of Eq. 1 (``EmbeddingLoss()``), constant noise.
    ``w_init`` starts from a given latent instead of ``init``.

    ``schedule="fast"`` (opt-in) uses ``FAST_STEPS`` steps and a learning rate ramped up to
    ``FAST_LR`` and cosine-ramped down to 0 (``steps``/``lr`` override both; ``lr`` is the peak);
    on the mini model it ends near, but not always below, the loss of the paper's 5000 steps, with
    latents about five times farther from w̄ (docs/performance.md). It is meant for reconstruction,
    not for the edits of §4, the ‖w* − w̄‖ of §5.1, or as a replacement for the paper's protocol.

    Speed options, none of which changes the result beyond float rounding: ``amp`` runs the
    generator and VGG under bf16 autocast with the loss accumulated in float32 (default: on for
    CUDA, off elsewhere; it is the one option that changes the numbers by more than float32
    rounding, and it is recorded in ``settings``); ``compile`` wraps the generator + loss in
    ``torch.compile`` (falls back to eager with a warning when compilation fails; on a 2-core
    CPU it costs ~100 s and gains ~3%, so it is off by default); ``channels_last`` feeds VGG
    channels-last tensors (no gain on CPU).

    With ``checkpoint`` the state (latent, Adam state, loss curve, last good latents) is saved
    atomically (temporary file + ``os.replace``) every ``checkpoint_every`` steps, at the end, and
    when the run is interrupted; a later call with the same generator, images and settings resumes
    from it (a line on stderr says from which step) and gives the same latents as an uninterrupted
    run. In the main thread SIGINT (Ctrl-C) and SIGTERM are deferred to the end of the current
    step, so the saved state is always that of a whole number of steps; then ``KeyboardInterrupt``
    (SIGINT) or ``SystemExit(143)`` (SIGTERM) is raised. A second Ctrl-C interrupts at once,
    keeping the last saved checkpoint. After SIGKILL the last periodic checkpoint remains.

    An image whose loss becomes NaN or infinite stops at that step and keeps its last good latent
    (``stopped_at``, ``messages``); the other images of the batch go on.
    """
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != G.resolution or images.shape[-2] != G.resolution:
        raise ValueError(f"images must be [N, 3, {G.resolution}, {G.resolution}] for this generator, got {tuple(images.shape)}")
    if schedule not in ("paper", "fast"):
        raise ValueError(f"schedule must be 'paper' or 'fast', got {schedule!r}")
    steps = (PAPER_STEPS if schedule == "paper" else FAST_STEPS) if steps is None else int(steps)
    lr = (PAPER_LR if schedule == "paper" else FAST_LR) if lr is None else float(lr)
    device, dtype = G.device, G.w_avg.dtype
    G.eval().requires_grad_(False)
    loss_fn = (loss_fn or EmbeddingLoss()).to(device, dtype)
    loss_fn.requires_grad_(False)  # no weight gradients: only the latent is optimised
    images = images.to(device, dtype)
    n = images.shape[0]
    use_amp = (device.type == "cuda") if amp is None else bool(amp)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_amp else contextlib.nullcontext
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    settings = {
        "model": G.name, "model_tier": G.info.get("tier"), "resolution": G.resolution,
        "space": space, "init": "given" if w_init is not None else init, "steps": steps,
        "optimizer": "adam", "lr": lr, "betas": list(betas), "eps": eps, "noise_mode": noise_mode, "seed": seed,
        "loss": loss_fn.settings.to_dict(), "perceptual_net": loss_fn.perceptual_net,
    }
    # Recorded only when they differ from the paper's protocol in float32, so that results and
    # checkpoints of the default settings keep their keys.
    if schedule != "paper":
        settings["schedule"] = schedule
    if use_amp:
        settings["amp"] = "bf16"

    # 1: initialise the latent code
    latent = (w_init.detach().clone().to(device, dtype) if w_init is not None
              else initial_latent(G, n, space, init, seed)).requires_grad_(True)
    # fused Adam on CUDA: one kernel per step (same update rule)
    optimizer = torch.optim.Adam([latent], lr=lr, betas=betas, eps=eps, **({"fused": True} if device.type == "cuda" else {}))
    with autocast():
        target = loss_fn.target(images.contiguous(memory_format=fmt))  # computed once, reused every step

    def forward(z: torch.Tensor, target: dict) -> torch.Tensor:
        """The per-image loss L(G(w), I) of the latent ``z`` (float32 under amp). The target is
        an argument (not a closure) so that a compiled version is reused by later calls."""
        with autocast():
            x = G.synthesis(to_w_plus(G, z, space), noise_mode=noise_mode)
            return loss_fn(x.contiguous(memory_format=fmt), target)

    step_loss = _compiled(forward) if compile else forward
    curve = torch.zeros(steps, n, device=device, dtype=dtype)
    last_good = latent.detach().clone()
    stopped_at = torch.full((n,), -1, dtype=torch.long, device=device)
    start = 0

    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    run_key = _run_key(settings, images, w_init)
    if ckpt_path is not None and ckpt_path.exists():
        try:
            state = torch.load(ckpt_path, map_location=device, weights_only=True)
        except Exception as e:  # cannot happen through our atomic writes; a copied/damaged file can
            raise ValueError(f"checkpoint {ckpt_path} is unreadable ({type(e).__name__}: {e}); delete it to "
                             "start this embedding from the beginning") from e
        if state.get("key") != run_key:
            raise ValueError(f"checkpoint {ckpt_path} belongs to a different run (other images or settings); "
                             "delete it or choose another checkpoint path")
        with torch.no_grad():
            latent.copy_(state["latent"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
        curve[:start] = state["curve"][:start]
        last_good, stopped_at = state["last_good"], state["stopped_at"]
        if start > 0:
            print(f"[i2s] {desc}: resuming from checkpoint {ckpt_path} at step {start}/{steps}", file=sys.stderr)

    def save_checkpoint(step: int) -> None:
        if ckpt_path is not None:
            _atomic_torch_save({"key": run_key, "step": step, "latent": latent.detach(), "optimizer": optimizer.state_dict(),
                                "curve": curve[:step].clone(), "last_good": last_good, "stopped_at": stopped_at,
                                "settings": json.dumps(settings)}, ckpt_path)

    # 2-5: while not converged: L <- L_percept + MSE;  w* <- w* - eta F'(grad L)
    # ``done`` steps are complete; ``consistent`` is False only while a step is updating the state,
    # so what is saved on an interruption always describes exactly ``done`` steps. SIGINT/SIGTERM
    # are deferred to the end of the step (a second SIGINT interrupts at once).
    bar = tqdm(range(start, steps), desc=desc, disable=not progress, initial=start, total=steps)
    done, consistent, saved_at = start, True, -1
    try:
        with _DeferredSignals() as signals, _large_cpu_blocks_kept(device.type == "cpu"), \
                _cudnn_autotuned(device.type == "cuda"):
            for step in bar:
                optimizer.zero_grad(set_to_none=True)
                if schedule != "paper":
                    for group in optimizer.param_groups:
                        group["lr"] = learning_rate(schedule, step, steps, lr)
                losses = step_loss(latent, target)
                finite = torch.isfinite(losses)
                torch.where(finite, losses, torch.zeros_like(losses)).sum().backward()
                consistent = False
                with torch.no_grad():
                    curve[step] = losses.detach()
                    stopped_at = torch.where((stopped_at < 0) & ~finite, step, stopped_at)
                    running = (stopped_at < 0).view(-1, *[1] * (latent.ndim - 1))
                    last_good = torch.where(running, latent, last_good)
                optimizer.step()
                with torch.no_grad():  # an image whose loss blew up keeps its last good latent
                    latent.copy_(torch.where(running, latent, last_good))
                done, consistent = step + 1, True
                if ckpt_path is not None and (done % checkpoint_every == 0 or signals.pending):
                    save_checkpoint(done)
                    saved_at = done
                if progress and (step % 50 == 0 or step == steps - 1):
                    bar.set_postfix(loss=f"{losses.detach().mean().item():.4g}")
                signals.raise_pending()
            if saved_at != steps:
                save_checkpoint(steps)
    except BaseException as e:
        if ckpt_path is not None:
            if consistent and saved_at != done:
                save_checkpoint(done)  # keep the work done so far (Ctrl-C, SIGTERM, errors)
                saved_at = done
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                where = (f"state after step {saved_at}/{steps} saved in {ckpt_path}" if saved_at >= 0
                         else f"the last periodic checkpoint in {ckpt_path} is kept")
                print(f"[i2s] {desc}: interrupted; {where}. Run the same command (same images and settings) "
                      "again to resume", file=sys.stderr)
        raise
    finally:
        bar.close()

    with torch.no_grad():
        w_plus = to_w_plus(G, latent, space)
        with autocast():
            recon = G.synthesis(w_plus, noise_mode=noise_mode)
            final = loss_fn(recon.contiguous(memory_format=fmt), target)
        recon = recon.to(dtype).contiguous()
        dist = (w_plus - G.w_avg).flatten(1).norm(dim=1)
        quality = psnr(recon, images)
    return EmbedResult(
        w_plus=w_plus.detach().cpu(), latent=latent.detach().cpu(), images=recon.cpu(), loss=final.cpu(),
        dist_to_w_avg=dist.cpu(), psnr=quality.cpu(), loss_curve=curve.cpu(), stopped_at=stopped_at.cpu(),
        settings=settings, resumed_from=start,
    )


_MALLOC_LOCK = threading.Lock()
_MALLOC_USERS = 0
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # glibc <malloc.h>
_MALLOC_ENV = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")


def _glibc():
    if not sys.platform.startswith("linux") or os.environ.get("I2S_NO_MALLOC_TUNING") == "1":
        return None
    if any(k in os.environ for k in _MALLOC_ENV):
        return None  # the user tunes malloc: leave it alone
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (musl, ...)
        return None


@contextlib.contextmanager
def _large_cpu_blocks_kept(enabled: bool):
    """While embedding on the CPU, glibc serves large blocks from its heap and keeps it.

    Every PyTorch operation allocates its output. glibc hands blocks above its mmap threshold
    (at most 32 MB, the size of one 1024-px activation of 16 channels is 64 MB) out as fresh
    mmap'd pages that the kernel maps and zero-fills page by page at first touch, and returns
    them at ``free``: at 1024 px those page faults cost as much as the arithmetic (a step of the
    FFHQ generator + VGG takes 1.6x longer). With mmap off and a high trim threshold the same
    heap memory is reused from step to step. On exit the parameters go back to glibc's usual
    steady state (mmap above 32 MB, trim above 64 MB) and the heap is trimmed, so the memory
    returns to the system. Only on Linux/glibc; skipped when the user tunes malloc through the
    environment (``MALLOC_*_``, ``GLIBC_TUNABLES``) or sets ``I2S_NO_MALLOC_TUNING=1``. It does
    not change any number, only where memory comes from.
    """
    global _MALLOC_USERS
    libc = _glibc() if enabled else None
    if libc is None:
        yield
        return
    with _MALLOC_LOCK:
        _MALLOC_USERS += 1
        if _MALLOC_USERS == 1:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    try:
        yield
    finally:
        with _MALLOC_LOCK:
            _MALLOC_USERS -= 1
            if _MALLOC_USERS == 0:
                libc.mallopt(_M_MMAP_MAX, 65536)
                libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
                libc.mallopt(_M_TRIM_THRESHOLD, 64 * 2**20)
                libc.malloc_trim(0)


@contextlib.contextmanager
def _cudnn_autotuned(enabled: bool):
    """``torch.backends.cudnn.benchmark`` on while embedding (restored afterwards): every step has
    the same shapes, so cuDNN's per-shape search for the fastest convolution algorithms (the
    transposed up-convolutions above all) pays off after the first step."""
    if not enabled:
        yield
        return
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def _compiled(fn):
    """``torch.compile(fn)``; if compiling fails (no compiler, unsupported platform), a warning
    and the eager ``fn``. The check happens at the first call, where compilation runs."""
    import warnings

    try:
        compiled = torch.compile(fn)
    except Exception as e:  # noqa: BLE001 - e.g. torch.compile unsupported on this Python
        warnings.warn(f"torch.compile unavailable ({type(e).__name__}: {e}); running eagerly", stacklevel=3)
        return fn
    state = {"fn": compiled, "first": True}

    def call(*args):
        if not state["first"]:
            return state["fn"](*args)
        state["first"] = False
        try:
            return compiled(*args)
        except Exception as e:  # noqa: BLE001 - compilation errors surface at the first call
            warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); running eagerly", stacklevel=3)
            state["fn"] = fn
            return fn(*args)

    return call


def _run_key(settings: dict, images: torch.Tensor, w_init: torch.Tensor | None) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    h.update(images.detach().cpu().numpy().tobytes())
    if w_init is not None:
        h.update(w_init.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def _atomic_torch_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace``: the final
    name only ever holds a complete file (the previous one until the new one is complete).

    SIGINT/SIGTERM arriving during the write are deferred until the file is in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with _DeferredSignals(interrupt_twice=False) as signals:
            with open(tmp, "wb") as f:
                torch.save(obj, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        signals.raise_pending()
    finally:
        if tmp.exists():
            tmp.unlink()


def _remove_stale_temps(path: Path) -> None:
    """Delete ``.NAME.<pid>.tmp`` files left by a killed process (SIGKILL) that no longer runs."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:-4]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except OSError:  # alive (another user's process): leave it
            pass


class _DeferredSignals:
    """Hold SIGINT and SIGTERM while a block runs; :meth:`raise_pending` delivers them.

    Installed only in the main thread and only over Python's default handlers (a handler someone
    else installed, or ``SIG_IGN``, is left alone). A deferred SIGINT is raised as
    ``KeyboardInterrupt``, a SIGTERM as ``SystemExit(143)``. With ``interrupt_twice`` a second
    SIGINT raises at once (the user insists). On exit the previous handlers come back; a signal
    still pending is then re-delivered to them.
    """

    _SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self, interrupt_twice: bool = True) -> None:
        self.interrupt_twice = interrupt_twice
        self.pending: int | None = None
        self._old: dict[int, object] = {}

    def _handler(self, signum: int, frame: object) -> None:
        if self.pending == signal.SIGINT and signum == signal.SIGINT and self.interrupt_twice:
            raise KeyboardInterrupt
        self.pending = signum

    def __enter__(self) -> "_DeferredSignals":
        if not _in_main_thread():
            return self
        for name in self._SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            current = signal.getsignal(signum)
            if current in (signal.default_int_handler, signal.SIG_DFL) or isinstance(current, _BoundDeferral):
                self._old[signum] = current
                signal.signal(signum, _BoundDeferral(self))
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, old)  # type: ignore[arg-type]
        self._old.clear()
        if self.pending is not None and exc[0] is None:
            self.raise_pending()

    def raise_pending(self) -> None:
        """Deliver a deferred signal now (as the default handlers would, but from a safe point)."""
        signum, self.pending = self.pending, None
        if signum is None:
            return
        if self._old:  # still inside the block: raise the Python equivalent
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        signal.raise_signal(signum)  # outside: let whatever handler is now installed decide


class _BoundDeferral:
    """The installed handler (a class, so nested deferrals can recognise each other)."""

    def __init__(self, owner: _DeferredSignals) -> None:
        self.owner = owner

    def __call__(self, signum: int, frame: object) -> None:
        self.owner._handler(signum, frame)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
