"""Checkpoints of an embedding run, so an interrupted Algorithm 1 resumes exactly.

A checkpoint holds the latent, Adam's state, the loss curve so far and the last good latents,
under the run's key (:func:`run_key`: the run identity of :class:`i2s.embed.EmbedSettings`,
the images and any starting latent). A checkpoint of another run is refused, never mixed in.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .io import atomic_torch_save

__all__ = ["run_key", "EmbedCheckpoint", "check_checkpoint_file", "checkpoint_bytes"]


def run_key(identity: dict, images: torch.Tensor, w_init: torch.Tensor | None) -> str:
    """SHA-256 of the run identity, the target images and the starting latent."""
    h = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
    h.update(images.detach().cpu().numpy().tobytes())
    if w_init is not None:
        h.update(w_init.detach().cpu().numpy().tobytes())
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
    """The checkpoint file of one run (``path`` None: no checkpointing)."""

    path: Path | None
    key: str
    identity: dict
    desc: str = "embed"
    bounds: tuple = ()  # (n images, G, steps): the size check of check_checkpoint_file

    def load(self, device: torch.device) -> dict | None:
        """The saved state of this run, or None when there is none (size-checked before loading)."""
        if self.path is None or not self.path.exists():
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

    def restore(self, device: torch.device, latent: torch.Tensor, optimizer: torch.optim.Optimizer,
                curve: torch.Tensor, last_good: torch.Tensor, stopped_at: torch.Tensor
                ) -> tuple[int, torch.Tensor, torch.Tensor]:
        """Put a saved state (if any) into ``latent``, ``optimizer`` and ``curve``; returns
        (the step to go on from, last good latents, stopped_at)."""
        state = self.load(device)
        if state is None:
            return 0, last_good, stopped_at
        with torch.no_grad():
            latent.copy_(state["latent"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
        curve[:start] = state["curve"][:start]
        self.resumed(start, curve.shape[0])
        return start, state["last_good"], state["stopped_at"]

    def save(self, step: int, latent: torch.Tensor, optimizer: torch.optim.Optimizer, curve: torch.Tensor,
             last_good: torch.Tensor, stopped_at: torch.Tensor) -> None:
        if self.path is not None:
            atomic_torch_save({"key": self.key, "step": step, "latent": latent.detach(),
                               "optimizer": optimizer.state_dict(), "curve": curve[:step].clone(),
                               "last_good": last_good, "stopped_at": stopped_at,
                               "settings": json.dumps(self.identity)}, self.path)

    def resumed(self, start: int, steps: int) -> None:
        if start > 0:
            print(f"[i2s] {self.desc}: resuming from checkpoint {self.path} at step {start}/{steps}", file=sys.stderr)

    def interrupted(self, saved_at: int, steps: int) -> None:
        where = (f"state after step {saved_at}/{steps} saved in {self.path}" if saved_at >= 0
                 else f"the last periodic checkpoint in {self.path} is kept")
        print(f"[i2s] {self.desc}: interrupted; {where}. Run the same command (same images and settings) "
              "again to resume", file=sys.stderr)
