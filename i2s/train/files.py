"""The files a training run reads and writes: their formats, the one bounded reader, atomic saving.

* ``i2s-train-checkpoint`` (:data:`CHECKPOINT_FORMAT`): everything a resume needs
  (:meth:`i2s.train.trainer.Trainer.checkpoint_dict`);
* ``i2s-train-carry`` (:data:`CARRY_FORMAT`): G, G_ema and D in float16 with the training state,
  small enough to commit (:func:`i2s.train.export.export_carry`);
* ``i2s-train-d`` (:data:`D_FORMAT`): D's trained part alone, to commit beside an exported
  generator of the same run (:func:`i2s.train.export.export_discriminator`);
* ``i2s-stylegan1`` (:data:`EXPORT_FORMAT`): an exported EMA generator, what
  :func:`i2s.models.load_generator` reads.

Below both the trainer and the exporter, so neither imports the other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CARRY_FORMAT", "D_FORMAT", "EXPORT_FORMAT", "EXPORT_FORMAT_VERSION",
           "MAX_RUN_FILE_BYTES", "load_run_file", "plain", "atomic_save", "fixed_tensors_sha256"]

CHECKPOINT_FORMAT = "i2s-train-checkpoint"
CHECKPOINT_VERSION = 1
EXPORT_FORMAT = "i2s-stylegan1"
EXPORT_FORMAT_VERSION = 1
CARRY_FORMAT = "i2s-train-carry"
D_FORMAT = "i2s-train-d"

MAX_RUN_FILE_BYTES = 4 << 30  # a training checkpoint of the 1024-px generator is ~1.1 GB


def load_run_file(path: str | os.PathLike) -> dict:
    """A training checkpoint, carried state or exported generator, read with
    :func:`i2s.weights.limits.safe_torch_load` (bounded, tensors and plain values only): a damaged
    or foreign file is one ``ValueError`` line naming it."""
    from ..weights.limits import safe_torch_load

    obj = safe_torch_load(path, max_bytes=MAX_RUN_FILE_BYTES, what="i2s training checkpoint")
    if not isinstance(obj, dict) or not isinstance(obj.get("format"), str):
        raise ValueError(f"{path}: not an i2s training checkpoint, carried state or exported generator "
                         f"(no format field); pass a file written by python -m i2s.train")
    return obj


def plain(v: Any) -> Any:
    """Make ``v`` a plain value that ``torch.load(weights_only=True)`` and JSON accept."""
    if v is None:
        return v
    for t in (bool, int, float, str):  # also turns subclasses (TorchVersion, np.float64) into plain ones
        if isinstance(v, t):
            return t(v)
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    return str(v)


def atomic_save(obj: Any, path: Path, keep_prev: Path | None = None) -> None:
    """:func:`i2s.io.atomic_torch_save`, optionally moving the old file to ``keep_prev`` first
    (serialised before the move, so one good checkpoint always exists; a missing
    ``checkpoint.pt`` next to ``checkpoint-prev.pt`` resumes from the latter)."""
    import io as _io

    from ..io import atomic_write

    buf = _io.BytesIO()
    torch.save(obj, buf)
    if keep_prev is not None and path.exists():
        os.replace(path, keep_prev)
    atomic_write(path, buf.getvalue())


def fixed_tensors_sha256(state_dict: dict, prefix: str = "proj.") -> str:
    """SHA-256 of the tensors under ``prefix`` (the projected D's fixed random projections, which a
    fresh D of the same arguments draws again): ties a :data:`D_FORMAT` file to the D it fits."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(k for k in state_dict if k.startswith(prefix)):
        h.update(name.encode())
        h.update(state_dict[name].detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def as_float(state_dict: dict) -> dict:
    """A state dict stored in float16 (exports, carried states, D files) back in float32; integer
    tensors (counters) as they are."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
