"""Checkpoints of an embedding run, so an interrupted Algorithm 1 resumes exactly.

A checkpoint holds the latent, Adam's state, the loss curve so far and the last good latents,
under the run's key (:func:`run_key`: the run identity of :class:`i2s.embed.EmbedSettings`,
the images and any starting latent). A checkpoint of another run is refused, never mixed in.
:class:`EmbedCheckpoint` attaches to the loop as an ``on_step`` hook (:mod:`i2s.runner`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .io import atomic_torch_save
from .signals import DeferredSignals

__all__ = ["run_key", "EmbedCheckpoint", "check_checkpoint_file", "checkpoint_bytes"]


def run_key(identity: dict, images: torch.Tensor, w_init: torch.Tensor | None, float32: bool = False) -> str:
    """SHA-256 of a run identity (a JSON-able dict), the target images and the starting latent:
    the kit's one run hash, behind checkpoint keys (the batch as it runs) and cache keys (one
    image at a time, in float32, with the generator and the algorithm version in the identity:
    :func:`i2s.cache.entry_key`)."""
    h = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    for t in (images, w_init):
        if t is not None:
            h.update((t.float() if float32 else t).detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def checkpoint_bytes(n: int, G, steps: int | None) -> int:
    """The most bytes a checkpoint of ``n`` images may hold: twice what embed() saves (latents,
    Adam's two moments, last good latents, the loss curve) plus 1 MiB."""
    values = n * G.num_layers * max(G.w_dim, G.z_dim) * 4 + n * max(int(steps or 0), 20_000) * 2
    return 2 * 8 * values + (1 << 20)


def check_checkpoint_file(path: Path, n: int, G, steps: int | None) -> None:
    """Refuse an existing checkpoint whose loading could take more memory than ``n`` images need:
    it must be a ``torch.save`` zip with uncompressed records within :func:`checkpoint_bytes`,
    checked with :func:`i2s.weights.limits.check_torch_zip` before ``torch.load`` runs.

    Raises:
        ValueError: one line naming the file, saying to delete it.
    """
    if not path.exists():
        return
    from .weights.limits import check_torch_zip

    if not path.is_file():
        raise ValueError(f"checkpoint {path} is not a regular file; delete it or choose another checkpoint path")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise ValueError(f"checkpoint {path} is not a torch.save zip file; delete it to start this "
                             "embedding from the beginning")
    hint = "delete it to start this embedding from the beginning"
    what = f"embedding checkpoint for {n} image(s) (this one cannot be resumed: {hint})"
    check_torch_zip(path, max_bytes=checkpoint_bytes(n, G, steps), what=what, error=ValueError)


@dataclass
class EmbedCheckpoint:
    """The checkpoint file of one run, attached to Algorithm 1 as an ``on_step`` hook
    (:func:`i2s.embed.embed`): before the first step it puts a saved state of this run (if any)
    into the run; after a step it saves every ``every`` steps, at the last, and when a signal is
    waiting in ``signals``; :meth:`interrupted` keeps the steps done when the run stops early."""

    path: Path
    key: str
    identity: dict
    desc: str = "embed"
    bounds: tuple = ()  # (n images, G, steps): the size check of check_checkpoint_file
    every: int = 250
    signals: DeferredSignals | None = None
    state: Any = None  # the run's i2s.embed.EmbedState, from the first call on
    saved_at: int = -1

    def __call__(self, st: Any) -> None:
        if self.state is None:
            self.restore(st)
            self.state = st
        elif st.step % self.every == 0 or st.step == st.steps or (self.signals is not None and self.signals.pending):
            self.save()

    def load(self, device: torch.device) -> dict | None:
        """The saved state of this run, or None when there is none (size-checked before loading)."""
        if not self.path.exists():
            return None
        if self.bounds:
            check_checkpoint_file(self.path, *self.bounds)
        try:
            state = torch.load(self.path, map_location=device, weights_only=True)
        except Exception as e:  # cannot happen through our atomic writes; a copied/damaged file can
            raise ValueError(f"checkpoint {self.path} is unreadable ({type(e).__name__}: {e}); delete it to "
                             "start this embedding from the beginning") from e
        if not isinstance(state, dict) or state.get("key") != self.key:
            raise ValueError(f"checkpoint {self.path} belongs to a different run (other images or settings); "
                             "delete it or choose another checkpoint path")
        return state

    def restore(self, st: Any) -> None:
        """Put the saved state of this run (if any) into ``st``: latent, Adam, loss curve, step."""
        saved = self.load(st.latent.device)
        if saved is None:
            return
        with torch.no_grad():
            st.latent.copy_(saved["latent"])
        st.optimizer.load_state_dict(saved["optimizer"])
        st.step = int(saved["step"])
        st.loss_curve[:st.step] = saved["curve"][:st.step]
        st.last_good, st.stopped_at = saved["last_good"], saved["stopped_at"]
        if st.step > 0:
            print(f"[i2s] {self.desc}: resuming from checkpoint {self.path} at step {st.step}/{st.steps}",
                  file=sys.stderr)

    def save(self) -> None:
        st = self.state
        atomic_torch_save({"key": self.key, "step": st.step, "latent": st.latent.detach(),
                           "optimizer": st.optimizer.state_dict(), "curve": st.loss_curve[:st.step].clone(),
                           "last_good": st.last_good, "stopped_at": st.stopped_at,
                           "settings": json.dumps(self.identity)}, self.path)
        self.saved_at = st.step

    def finish(self) -> None:
        """The run ended: its last state is on disk (also when it had nothing left to do)."""
        if self.state is not None and self.saved_at != self.state.steps:
            self.save()

    def interrupted(self, error: BaseException) -> None:
        """The run stopped early (Ctrl-C, SIGTERM, an error): keep the whole steps done so far."""
        st = self.state
        if st is not None and not st.updating and self.saved_at != st.step:
            self.save()
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            where = (f"state after step {self.saved_at}/{st.steps if st is not None else '?'} saved in {self.path}"
                     if self.saved_at >= 0 else f"the last periodic checkpoint in {self.path} is kept")
            print(f"[i2s] {self.desc}: interrupted; {where}. Run the same command (same images and settings) "
                  "again to resume", file=sys.stderr)
