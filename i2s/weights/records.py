"""Where pretrained weights live and what their hashes must be (stdlib only).

Cache layout (``i2s_home()`` is ``$I2S_HOME`` or ``~/.cache/i2s``)::

    i2s_home()/weights/<filename>        finished files
    i2s_home()/hashes.json               sha256 of the first good copy of each unconfirmed file

The hash policy (:func:`_judge`) and :func:`check_cached_hash` live here, below both the
downloader (:mod:`i2s.weights.fetch`) and the pickle converter (:mod:`i2s.weights.tf_pickle`),
which both need them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .registry import REGISTRY, Checkpoint, get

__all__ = ["WeightsError", "WeightsUnavailable", "InvalidWeightsFile", "HashMismatch", "WeightsWarning",
           "i2s_home", "weights_dir", "hashes_path", "destination", "cached_path", "recorded_hashes",
           "reference_sha256", "check_cached_hash"]

_CHUNK = 1 << 20


# --------------------------------------------------------------------------- errors


class WeightsError(RuntimeError):
    """Base class of the errors raised by i2s.weights (downloads, imports, hash checks)."""


class WeightsUnavailable(WeightsError):
    """No valid copy could be obtained (offline, or every URL failed).

    The message says which file to get, from where, and where to put it.
    """


class InvalidWeightsFile(WeightsError):
    """A file is not what the registry expects (HTML page, wrong size, wrong magic, hash)."""


class HashMismatch(InvalidWeightsFile):
    """A file's sha256 differs from a confirmed or recorded value."""


class WeightsWarning(UserWarning):
    """Non-fatal doubts about a file, e.g. an unconfirmed sha256 that differs."""



# --------------------------------------------------------------------------- paths


def i2s_home() -> Path:
    """Root of the i2s cache: ``$I2S_HOME`` if set, else ``~/.cache/i2s``."""
    env = os.environ.get("I2S_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "i2s"


def weights_dir() -> Path:
    """Directory holding downloaded weights: ``i2s_home() / "weights"``."""
    return i2s_home() / "weights"


def hashes_path() -> Path:
    """JSON file with the sha256 recorded for files that have no confirmed hash."""
    return i2s_home() / "hashes.json"


def destination(name: str) -> Path:
    """Where :func:`fetch` and :func:`import_file` put the file of checkpoint ``name``."""
    return weights_dir() / get(name).filename


def _torch_hub_checkpoints() -> Path | None:
    """torch.hub's ``checkpoints`` directory.

    Asks torch if it is already imported (it may have been redirected with
    ``torch.hub.set_dir``); otherwise applies torch's documented default
    ($TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub, else ~/.cache/torch/hub) rather than
    importing torch, which takes seconds.
    """
    if "torch" in sys.modules:
        try:
            import torch.hub
        except ImportError:  # pragma: no cover - broken torch install
            return None
        return Path(torch.hub.get_dir()) / "checkpoints"
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch"
    )
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def cached_path(name: str) -> Path | None:
    """Path of an existing local copy of ``name``, or ``None``.

    Looks in :func:`weights_dir` and, for torchvision state dicts such as
    ``vgg16-imagenet``, also in torch.hub's cache (``torch.hub.get_dir()/checkpoints``).
    Only checks that the file exists; use :func:`verify` to check its contents.
    """
    ckpt = get(name)
    path = weights_dir() / ckpt.filename
    if path.is_file():
        return path
    if ckpt.kind == "torchvision-state-dict":
        hub = _torch_hub_checkpoints()
        if hub is not None and (hub / ckpt.filename).is_file():
            return hub / ckpt.filename
    return None


# --------------------------------------------------------------------------- small helpers


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``path`` (POSIX flock; a no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _human(n: int | None) -> str:
    if n is None:
        return "unknown size"
    return f"{n:,} bytes ({n / 1e6:.1f} MB)"


def _digests(path: Path, md5: bool = False) -> tuple[str, str | None]:
    """Return (sha256, md5 or None) of a file, read in chunks."""
    sha = hashlib.sha256()
    m = hashlib.md5(usedforsecurity=False) if md5 else None
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
            if m is not None:
                m.update(chunk)
    return sha.hexdigest(), (m.hexdigest() if m is not None else None)



# --------------------------------------------------------------------------- hash records


def recorded_hashes() -> dict[str, dict]:
    """Contents of ``hashes.json``: name -> {filename, sha256, size, md5, source, recorded}."""
    path = hashes_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot read recorded hashes {path}: {e}; fix or delete it") from e
    if not isinstance(data, dict):
        raise WeightsError(f"{path} should hold a JSON object; fix or delete it")
    return data


def _recorded_for(ckpt: Checkpoint) -> dict | None:
    rec = recorded_hashes().get(ckpt.name)
    if (isinstance(rec, dict) and rec.get("filename") == ckpt.filename and isinstance(rec.get("sha256"), str)
            and re.fullmatch(r"[0-9a-f]{64}", rec["sha256"])):
        return rec
    return None


def reference_sha256(name: str) -> str | None:
    """The sha256 a copy of checkpoint ``name`` must have: the registry's confirmed value, else the
    one recorded in ``hashes.json`` when the first good copy was fetched or imported; ``None``
    when neither exists."""
    ckpt = get(name)
    if ckpt.sha256 and ckpt.sha256_confirmed:
        return ckpt.sha256
    rec = _recorded_for(ckpt)
    return rec["sha256"] if rec is not None else None


def _write_json_atomic(path: Path, data: dict) -> None:
    from ..io import atomic_write

    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _record(ckpt: Checkpoint, sha256: str, md5: str | None, size: int, source: str) -> None:
    path = hashes_path()
    with _locked(path.with_name(path.name + ".lock")):
        data = recorded_hashes()
        data[ckpt.name] = {
            "filename": ckpt.filename,
            "sha256": sha256,
            "md5": md5,
            "size": size,
            "source": source,
            "recorded": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        _write_json_atomic(path, data)


# --------------------------------------------------------------------------- hash policy


@dataclass(frozen=True)
class _Verdict:
    status: str  # "ok" | "warning" | "unrecorded" | "mismatch"
    against: str | None  # "confirmed" | "prefix" | "recorded" | "registry" | None
    detail: str


def _judge(ckpt: Checkpoint, sha256: str, record: dict | None) -> _Verdict:
    """Compare a sha256 with what the registry and ``hashes.json`` know."""
    if ckpt.sha256_prefix and not sha256.startswith(ckpt.sha256_prefix):
        return _Verdict(
            "mismatch", "prefix",
            f"sha256 {sha256} does not start with the confirmed prefix {ckpt.sha256_prefix}",
        )
    if ckpt.sha256 and ckpt.sha256_confirmed:
        if sha256 == ckpt.sha256:
            return _Verdict("ok", "confirmed", f"sha256 {sha256} matches the confirmed value")
        return _Verdict(
            "mismatch", "confirmed", f"sha256 {sha256} differs from the confirmed {ckpt.sha256}"
        )
    if record is not None:
        if sha256 == record["sha256"]:
            return _Verdict(
                "ok", "recorded",
                f"sha256 {sha256} matches the value recorded {record.get('recorded', '?')}",
            )
        return _Verdict(
            "mismatch", "recorded",
            f"sha256 {sha256} differs from the value recorded {record.get('recorded', '?')} "
            f"({record['sha256']}) in {hashes_path()}; "
            f"re-fetch it with `i2s weights fetch {ckpt.name} --force`",
        )
    if ckpt.sha256:
        if sha256 == ckpt.sha256:
            return _Verdict(
                "ok", "registry", f"sha256 {sha256} matches the registry's (unconfirmed) value"
            )
        prefix = f" (the confirmed prefix {ckpt.sha256_prefix} matches)" if ckpt.sha256_prefix else ""
        return _Verdict(
            "warning", "registry",
            f"sha256 {sha256} differs from the registry's unconfirmed value {ckpt.sha256}{prefix}",
        )
    return _Verdict("unrecorded", None, f"sha256 {sha256} (no reference value to compare with)")


def check_cached_hash(path: str | os.PathLike[str], sha256: str | None = None) -> None:
    """Refuse a cache copy of a registry checkpoint whose sha256 disagrees with what is known.

    If ``path`` is the cached file of a checkpoint (see :func:`cached_path`), its sha256
    (``sha256`` if the caller already has it) is judged like :func:`verify` does: a mismatch with
    the confirmed hash, the confirmed prefix or the value recorded in ``hashes.json`` raises
    :class:`HashMismatch` naming the file and the fix; a difference from an unconfirmed registry
    hash only warns. Any other path is left alone (files the user passes by hand have no
    reference value).
    """
    path = Path(path)
    for ckpt in REGISTRY.values():
        cached = cached_path(ckpt.name)
        try:
            same = cached is not None and os.path.samefile(cached, path)
        except OSError:
            same = False
        if not same:
            continue
        digest = sha256 or _digests(path)[0]
        verdict = _judge(ckpt, digest, _recorded_for(ckpt))
        if verdict.status == "mismatch":
            fix = "" if "--force" in verdict.detail else (
                f"; re-fetch it with `i2s weights fetch {ckpt.name} --force`")
            raise HashMismatch(f"{path}: {verdict.detail}{fix}. The file was not loaded "
                               "(a damaged download or a different file from a mirror)")
        if verdict.status == "warning":
            warnings.warn(f"{ckpt.filename}: {verdict.detail}", WeightsWarning, stacklevel=2)
        return
