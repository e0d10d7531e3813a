"""Training data: the packed uint8 image array (``--data``) and a deterministic, resumable
order of minibatches over it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["BatchStream", "open_dataset", "pack_dataset"]


#: Most images a packed archive may hold (a guard against a hostile or mistaken file).
MAX_ARCHIVE_IMAGES = 2_000_000


def open_dataset(path: str | os.PathLike) -> np.ndarray:
    """The training images as uint8 ``[N, H, W, 3]``: a memory-mapped ``.npy`` (what
    scripts/prepare_mini_data.py writes), or a ``.zip`` of same-size PNG/JPEG files in name order
    (:func:`pack_dataset`: the form that fits the 64 MiB a GPU machine receives), decoded once."""
    if str(path).endswith(".zip"):
        return _decode_archive(Path(path))
    arr = np.load(path, mmap_mode="r")
    if arr.ndim != 4 or arr.shape[3] != 3 or arr.dtype != np.uint8 or arr.shape[1] != arr.shape[2]:
        raise ValueError(f"{path}: want a uint8 array [N, H, W, 3] with H == W, got {arr.dtype} {arr.shape}")
    return arr


def _decode_archive(path: Path) -> np.ndarray:
    import io
    import zipfile

    from PIL import Image

    with zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if n.lower().endswith((".png", ".jpg", ".jpeg")))
        if not names or len(names) > MAX_ARCHIVE_IMAGES:
            raise ValueError(f"{path}: want 1 to {MAX_ARCHIVE_IMAGES:,} PNG/JPEG images, found {len(names):,}")
        first = zf.getinfo(names[0])
        out = None
        for i, name in enumerate(names):
            info = zf.getinfo(name)
            if info.file_size > 1 << 20:
                raise ValueError(f"{path}: {name} inflates to {info.file_size:,} bytes; a training image is far smaller")
            with Image.open(io.BytesIO(zf.read(name)), formats=["PNG", "JPEG"]) as im:
                arr = np.asarray(im.convert("RGB"))
            if out is None:
                if arr.shape[0] != arr.shape[1]:
                    raise ValueError(f"{path}: {first.filename} is {arr.shape[1]}x{arr.shape[0]}, not square")
                out = np.empty((len(names), *arr.shape), dtype=np.uint8)
            if arr.shape != out.shape[1:]:
                raise ValueError(f"{path}: {name} is {arr.shape[1]}x{arr.shape[0]}, the first image {out.shape[2]}x{out.shape[1]}")
            out[i] = arr
    return out


def pack_dataset(images: np.ndarray, path: str | os.PathLike, quality: int = 90) -> Path:
    """Write uint8 ``[N, H, W, 3]`` images as one zip of JPEGs (quality 90, 4:2:0 chroma: ~2.2 KB
    per 64-px face, the 28,422 training faces in 55.3 MiB, mean error 2.6 of 255 levels; measured
    on 1000 of them), readable by :func:`open_dataset`."""
    import io
    import zipfile

    from PIL import Image

    from ..io import atomic_write

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, im in enumerate(images):
            b = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(im)).save(b, format="JPEG", quality=quality, subsampling=2)
            zf.writestr(f"{i:07d}.jpg", b.getvalue())
    return atomic_write(path, buf.getvalue())


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
