"""Files in and out: images as tensors, atomic writes, latent files with full metadata.

Every output is written to a temporary file in the same folder and moved into place with
``os.replace``, so a partial file never carries the final name.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
from PIL import Image

LATENT_FORMAT = "i2s-latent"
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """The kit's one way to write a file: to a temporary file in the same folder (named
    ``.NAME.<pid>.<random>.tmp``), fsync, then ``os.replace``. The final name only ever holds a
    complete file (the previous one until the new one is complete). SIGINT/SIGTERM arriving
    during the write are deferred until the file is in place; temporary files left by killed
    processes (SIGKILL, power loss) are removed on the next write."""
    from .signals import DeferredSignals

    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    with DeferredSignals(interrupt_twice=False) as signals:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are for everyone to read
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    signals.raise_pending()
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, data)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, text)


def atomic_torch_save(obj: object, path: str | Path) -> Path:
    """``torch.save`` through :func:`atomic_write` (serialised in memory first)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write(path, buf.getvalue())


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes, read in 4 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _remove_stale_temps(path: Path) -> None:
    """Delete ``.NAME.<pid>[.<random>].tmp`` files of processes that no longer run."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:-4].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (OSError, OverflowError):  # alive (another user's process), or not a pid: leave it
            pass


def pil_to_tensor(img: Image.Image, size: int | None = None, *, min_size: int | None = None) -> torch.Tensor:
    """RGB PIL image -> [1, 3, H, W] in [-1, 1].

    With ``size`` (an embedding target): a non-square image is centre-cropped to its largest
    centred square, which is resized to ``size`` x ``size`` (Lanczos). An image whose shorter side
    is below ``min_size`` (default :data:`i2s.align.MIN_TARGET_SIZE`, 32 px) is refused with
    :class:`i2s.align.ImageTooSmallError` naming the file (from ``load_rgb``) and the minimum.
    """
    img = img.convert("RGB")
    if size is not None:
        from .align import MIN_TARGET_SIZE, ImageTooSmallError, too_small_message

        w, h = img.size
        s = min(w, h)
        minimum = MIN_TARGET_SIZE if min_size is None else min_size
        if s < minimum:
            name = img.info.get("i2s_source") or getattr(img, "filename", "") or "<image>"
            raise ImageTooSmallError(too_small_message(name, img.size, minimum))
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        if s != size:
            img = img.resize((size, size), Image.Resampling.LANCZOS)
    arr = torch.from_numpy(np.asarray(img, dtype=np.float32).copy())
    return (arr.permute(2, 0, 1).unsqueeze(0) / 127.5 - 1.0)


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """[3, H, W] or [1, 3, H, W] in [-1, 1] -> RGB PIL image (clamped, rounded)."""
    if x.ndim == 4:
        x = x[0]
    arr = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(arr, "RGB")


def save_png(x: torch.Tensor | Image.Image, path: str | Path) -> Path:
    img = x if isinstance(x, Image.Image) else tensor_to_pil(x)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())


def image_grid(images: torch.Tensor, cols: int) -> torch.Tensor:
    """[N, 3, H, W] -> one [3, rows*H, cols*W] image (empty cells black = -1)."""
    n, c, h, w = images.shape
    rows = -(-n // cols)
    grid = images.new_full((c, rows * h, cols * w), -1.0)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[:, r * h:(r + 1) * h, k * w:(k + 1) * w] = images[i]
    return grid


def versions() -> dict[str, str]:
    import torchvision

    from . import __version__

    return {"i2s": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version()}


def save_latent(path: str | Path, w_plus: torch.Tensor, metadata: Mapping, latent: torch.Tensor | None = None) -> Path:
    """A W+ code [num_layers, w_dim] with everything needed to re-render it identically:
    the model, noise mode, perceptual net, loss and optimiser settings, seed and versions.
    Loadable with ``torch.load(path, weights_only=True)``."""
    obj = {"format": LATENT_FORMAT, "w_plus": w_plus.detach().cpu().clone(),
           "latent": None if latent is None else latent.detach().cpu().clone(),
           "metadata": json.dumps(dict(metadata), sort_keys=True, default=str)}
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


class LatentFileError(ValueError):
    """A latent file is missing its marker, damaged, too large or crafted (one line naming it)."""


#: Largest latent file: a W+ code and its latent (at most 18 x 1024 each) and the metadata text.
MAX_LATENT_BYTES = 16 << 20
#: Most values of ``w_plus``/``latent`` (18 style layers of at most 1024, the kit's largest generator).
_MAX_LATENT_VALUES = 18 * 1024
_MAX_METADATA_CHARS = 1 << 20


def load_latent(path: str | Path) -> tuple[torch.Tensor, dict]:
    """(w_plus, metadata) from :func:`save_latent`'s file; a one-line :class:`LatentFileError` for
    anything else.

    The file is checked before ``torch.load`` (a ``torch.save`` zip of at most
    :data:`MAX_LATENT_BYTES` with uncompressed records, :func:`i2s.weights.limits.safe_torch_load`),
    and after it: the ``"i2s-latent"`` marker, ``w_plus`` a 2-D float tensor of at most 18 x 1024
    values, ``latent`` absent or a float tensor as small, ``metadata`` a JSON object.
    """
    from .weights.limits import safe_torch_load

    path = Path(path)
    hint = "make one with `i2s embed`"
    try:
        obj = safe_torch_load(path, max_bytes=MAX_LATENT_BYTES, what="i2s latent file", error=LatentFileError)
    except LatentFileError as e:
        raise LatentFileError(f"{e}; {hint}") from None
    if not isinstance(obj, dict) or obj.get("format") != LATENT_FORMAT:
        raise LatentFileError(f"{path}: not an i2s latent file (no '{LATENT_FORMAT}' marker); {hint}")
    w_plus, latent, text = obj.get("w_plus"), obj.get("latent"), obj.get("metadata")
    for name, t, required in (("w_plus", w_plus, True), ("latent", latent, False)):
        if t is None and not required:
            continue
        if not (isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() <= _MAX_LATENT_VALUES
                and (name != "w_plus" or (t.ndim == 2 and t.numel() > 0))):
            what = f"a tensor of shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else f"a {type(t).__name__}"
            raise LatentFileError(f"{path}: {name} is {what}, not a W+ code ([layers, w_dim], at most "
                                  f"{_MAX_LATENT_VALUES} values); {hint}")
    if not isinstance(text, str) or len(text) > _MAX_METADATA_CHARS:
        raise LatentFileError(f"{path}: its metadata is not a JSON text of at most {_MAX_METADATA_CHARS:,} characters")
    try:
        metadata = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise LatentFileError(f"{path}: its metadata is not valid JSON ({type(e).__name__})") from None
    if not isinstance(metadata, dict):
        raise LatentFileError(f"{path}: its metadata is a {type(metadata).__name__}, not a JSON object")
    return w_plus, metadata


def read_csv_rows(path: str | Path) -> list[dict]:
    """The rows of a CSV file written by :func:`write_csv`; [] when it is missing or unreadable."""
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def write_csv(path: str | Path, rows: Iterable[Mapping], fieldnames: list[str] | None = None) -> Path:
    rows = list(rows)
    fieldnames = fieldnames or list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())
