"""Training data: the packed uint8 image array (``--data``) and a deterministic, resumable
order of minibatches over it."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["BatchStream", "open_dataset"]


def open_dataset(path: str | os.PathLike) -> np.ndarray:
    """The packed uint8 array ``[N, H, W, 3]`` (memory-mapped ``.npy``)."""
    arr = np.load(path, mmap_mode="r")
    if arr.ndim != 4 or arr.shape[3] != 3 or arr.dtype != np.uint8 or arr.shape[1] != arr.shape[2]:
        raise ValueError(f"{path}: want a uint8 array [N, H, W, 3] with H == W, got {arr.dtype} {arr.shape}")
    return arr


class BatchStream:
    """Deterministic batch order: epoch ``e`` visits the images in a permutation drawn from
    ``(seed, e)``; the position (epoch, index) is all the state there is."""

    def __init__(self, n: int, seed: int, epoch: int = 0, pos: int = 0) -> None:
        if n <= 0:
            raise ValueError("empty data set")
        self.n, self.seed, self.epoch, self.pos = n, seed, epoch, pos
        self._perm = self._permutation(epoch)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def next(self, batch: int) -> np.ndarray:
        idx: list[np.ndarray] = []
        need = batch
        while need:
            take = min(need, self.n - self.pos)
            idx.append(self._perm[self.pos:self.pos + take])
            self.pos += take
            need -= take
            if self.pos == self.n:
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm = self._permutation(self.epoch)
        return np.concatenate(idx)
