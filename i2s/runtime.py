"""Where and how fast a run computes: the device (:func:`resolve_device`, the one choice for the
CLI and the trainer), where memory comes from, cuDNN's algorithm search, ``torch.compile``. None
of the tuning changes a number (tests/test_speed_equivalence.py), only speed; :func:`tuned` is
what :func:`i2s.embed.embed` wraps its loop in.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Iterator

import torch

__all__ = ["resolve_device", "tuned", "large_cpu_blocks_kept", "cudnn_autotuned", "compiled"]


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The device a run uses: ``auto`` is the GPU when torch sees one, else the CPU; any other name
    as torch knows it (``cpu``, ``cuda``, ``cuda:1``, ``mps``).

    Raises:
        ValueError: one line, for a CUDA device without a visible GPU or a name torch does not know.
    """
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{name}: no CUDA GPU is visible to torch {torch.__version__} here; use cpu (or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"{name!r}: not a device torch knows (cpu, cuda, cuda:1, mps, ...)") from None


@contextlib.contextmanager
def tuned(device: torch.device) -> Iterator[None]:
    """glibc keeps large blocks on a CPU; cuDNN autotunes on CUDA (each restored on exit)."""
    with large_cpu_blocks_kept(device.type == "cpu"), cudnn_autotuned(device.type == "cuda"):
        yield


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
def large_cpu_blocks_kept(enabled: bool):
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
def cudnn_autotuned(enabled: bool):
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


def compiled(fn):
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
