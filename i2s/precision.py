"""Which arithmetic runs: float32, or bf16 autocast where the hardware has it.

One home for the run-time capability check. On CUDA, bf16 needs compute capability 8.0+; on
a CPU it needs AVX-512 bf16 (``avx512_bf16``) or AMX, which oneDNN reports as
``torch.ops.mkldnn._is_mkldnn_bf16_supported()``. Without it, CPU bf16 autocast is
emulated and slower than float32, so ``"auto"`` falls back to float32 there.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager, Literal

import torch

__all__ = ["Precision", "bf16_supported", "resolve", "autocast", "describe"]

Precision = Literal["auto", "float32", "bf16"]


def bf16_supported(device: str | torch.device = "cpu") -> bool:
    """Does ``device`` run bf16 matrix arithmetic natively?"""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve(precision: Precision | str | None, device: str | torch.device = "cpu") -> str:
    """``"auto"``/``None`` -> ``"bf16"`` where supported, else ``"float32"``; explicit values pass
    through (``"bf16"`` on hardware without it is allowed: emulated, slow, but it runs)."""
    if precision in (None, "auto"):
        return "bf16" if bf16_supported(device) else "float32"
    if precision in ("float32", "fp32"):
        return "float32"
    if precision in ("bf16", "bfloat16"):
        return "bf16"
    raise ValueError(f"precision must be auto, float32 or bf16, got {precision!r}")


def autocast(precision: str, device: str | torch.device = "cpu") -> ContextManager:
    """The autocast context for a resolved precision (a no-op for float32)."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(precision: str, device: str | torch.device = "cpu") -> str:
    """``"cpu (AVX512, bf16 native), bf16 autocast"``: the device line every result carries."""
    device = torch.device(device)
    if device.type == "cpu":
        cap = torch.backends.cpu.get_cpu_capability()
        hw = f"cpu ({cap}, bf16 {'native' if bf16_supported(device) else 'not native'})"
    else:
        hw = f"{device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else device.type})"
    return f"{hw}, {'bf16 autocast' if precision == 'bf16' else 'float32'}"
