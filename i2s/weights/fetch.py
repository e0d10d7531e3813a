"""Download, import and verify pretrained weights (stdlib ``urllib`` only).

Cache layout (``i2s_home()`` is ``$I2S_HOME`` or ``~/.cache/i2s``; paths, hash records and the
hash policy live in :mod:`i2s.weights.records`)::

    i2s_home()/weights/<filename>        finished files, landed with os.replace
    i2s_home()/weights/<filename>.part   partial download, resumed with an HTTP Range request
    i2s_home()/hashes.json               sha256 of the first good copy of each unconfirmed file

Hash policy:

* a *confirmed* sha256 in the registry must match; a mismatching file is deleted;
* a confirmed ``sha256_prefix`` (e.g. the ``397923af`` in ``vgg16-397923af.pth``) must match;
* otherwise the first good copy is pinned in ``hashes.json`` and :func:`verify` checks later
  copies against it; an unconfirmed registry sha256 that differs only gives a warning.

Set ``I2S_OFFLINE=1`` to fail at once (with instructions) instead of touching the network.
``I2S_WEIGHTS_URL_<NAME>`` (the registry name upper-cased, ``-`` as ``_``: e.g.
``I2S_WEIGHTS_URL_STYLEGAN1_FFHQ_1024``) replaces the registry's URLs of that file by its own, one or
more separated by spaces (a mirror; ``make rehearse`` points it at a loopback server). Google Drive's
virus-scan confirmation page is answered: its "download anyway" form is followed once.
"""

from __future__ import annotations

import contextlib
import html.parser
import http.client
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .records import (_CHUNK, REGISTRY, Checkpoint, HashMismatch, InvalidWeightsFile, WeightsError,  # noqa: F401
                      WeightsUnavailable, WeightsWarning, _digests, _human, _judge, _locked, _record,
                      _recorded_for, cached_path, check_cached_hash, destination, get, hashes_path, i2s_home,
                      recorded_hashes, reference_sha256, weights_dir)

__all__ = [
    "WeightsError",
    "WeightsUnavailable",
    "InvalidWeightsFile",
    "HashMismatch",
    "WeightsWarning",
    "i2s_home",
    "weights_dir",
    "hashes_path",
    "destination",
    "cached_path",
    "is_offline",
    "url_override",
    "fetch",
    "import_file",
    "verify",
    "recorded_hashes",
    "check_cached_hash",
    "reference_sha256",
]

log = logging.getLogger(__name__)

#: Socket timeout (seconds) for connecting and for each read.
TIMEOUT = 60.0
#: Slowest accepted transfer: bytes per second, averaged over each RATE_WINDOW seconds.
MIN_RATE = 10_000.0
RATE_WINDOW = 60.0
#: Longest a single download may take (seconds), however fast it trickles.
DEADLINE = 6 * 3600.0
#: Largest download of a checkpoint whose registry entry gives neither its size nor a maximum.
DEFAULT_MAX_BYTES = 2 << 30
_USER_AGENT = "i2s-weights/0.1 (python-urllib)"
_MAX_HTML = 256 * 1024

#: Accepted leading bytes per kind. A pickle starts with the PROTO opcode 0x80; a torch
#: state dict is a zip archive ("PK") or, for files saved before torch 1.6 such as
#: vgg16-397923af.pth, a legacy pickle stream.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "stylegan1-tf-pickle": (b"\x80",),
    "torchvision-state-dict": (b"PK", b"\x80"),
    "stylegan2-ada-pytorch-pickle": (b"\x80",),
    "stylegan2-tf-pickle": (b"\x80",),
}
#: The network-pickle kinds: module and function that load a file safely without building it, and
#: what the file is called in a refusal.
_VALIDATORS = {"stylegan1-tf-pickle": ("tf_pickle", "validate_pickle", "a StyleGAN v1 network pickle"),
               "stylegan2-ada-pytorch-pickle": ("ada_pickle", "validate_ada_pickle", "a StyleGAN2-ADA network pickle"),
               "stylegan2-tf-pickle": ("tf_stylegan2", "validate_tf_stylegan2", "a StyleGAN2 TensorFlow pickle")}


class _DownloadFailed(Exception):
    """One URL failed in transit; any partial file is kept for resuming."""


def is_offline() -> bool:
    """True if ``I2S_OFFLINE`` is set to 1/true/yes/on."""
    return os.environ.get("I2S_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def url_override(name: str) -> tuple[str, ...] | None:
    """The URLs of ``$I2S_WEIGHTS_URL_<NAME>`` for registry entry ``name`` (space-separated), or
    ``None`` when it is unset or empty. Raises :class:`WeightsError` for a URL that is not http(s)."""
    var = "I2S_WEIGHTS_URL_" + re.sub(r"[^0-9A-Za-z]", "_", name).upper()
    urls = tuple(os.environ.get(var, "").split())
    for u in urls:
        if urllib.parse.urlsplit(u).scheme not in ("http", "https"):
            raise WeightsError(f"${var} holds {u[:80]!r}, not an http(s) URL; set it to the mirror's URL(s) or unset it")
    return urls or None


# --------------------------------------------------------------------------- small helpers


def _drive_id(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url)
    if not parts.netloc.endswith("google.com"):
        return None
    ids = urllib.parse.parse_qs(parts.query).get("id")
    if ids:
        return ids[0]
    m = re.search(r"/file/d/([\w-]+)", parts.path)
    return m.group(1) if m else None


def _manual_instructions(ckpt: Checkpoint, urls: Sequence[str]) -> str:
    dest = weights_dir() / ckpt.filename
    lines = [f"Get {ckpt.filename} by hand from one of:"]
    lines += [f"  {u}" for u in urls]
    drive = [d for d in (_drive_id(u) for u in urls) if d]
    if drive:
        lines.append(
            "  (Google Drive: open the link in a browser, or `pip install gdown` and run "
            f"`gdown 'https://drive.google.com/uc?id={drive[0]}'`)"
        )
    lines += [
        "then either put it exactly at",
        f"  {dest}",
        "or run",
        f"  i2s weights import {ckpt.name} /path/to/{ckpt.filename}",
    ]
    return "\n".join(lines)


def _html_message(ckpt: Checkpoint, head: bytes, where: str) -> str:
    low = head.lower()
    if b"quota" in low or b"too many users" in low:
        what = "a Google Drive quota page ('too many users have viewed or downloaded this file')"
    elif b"virus" in low or b"confirm" in low or b"drive.google" in low or b"google" in low:
        what = "a Google Drive confirmation/warning page"
    else:
        what = "an HTML page"
    return (
        f"{where} is an HTML page, not {ckpt.filename} (looks like {what}). Google Drive answers "
        "large or busy files with HTML instead of the data; unpickling such a file fails with "
        "\"invalid load key '<'\". Download the file in a browser or with `gdown`, then run "
        f"`i2s weights import {ckpt.name} PATH`."
    )


class _DriveForm(html.parser.HTMLParser):
    """Reads Google Drive's virus-scan confirmation page: the ``download-form`` (its action and
    hidden inputs) or, on older pages, the ``uc-download-link`` anchor."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: dict[str, str] = {}
        self.link: str | None = None
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "download-form":
            self.action, self._in_form = a.get("action", ""), True
        elif tag == "input" and self._in_form and a.get("type") == "hidden" and a.get("name"):
            self.inputs[a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("id") == "uc-download-link" and "confirm=" in a.get("href", ""):
            self.link = a["href"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def _drive_confirmed_url(page: bytes, url: str) -> str | None:
    """The URL Google Drive's confirmation ``page`` (fetched from ``url``) offers for "download
    anyway", or ``None`` if it is no such page. Followed only to http(s) on the page's own host or
    a Google host, so a page cannot send the download elsewhere."""
    form = _DriveForm()
    try:
        form.feed(page.decode("utf-8", "replace"))
    except (AssertionError, ValueError):  # HTMLParser on malformed markup
        return None
    if form.action is not None and form.inputs.get("confirm"):
        target = urllib.parse.urljoin(url, form.action)
        target = target.split("?", 1)[0] + "?" + urllib.parse.urlencode(form.inputs)
    elif form.link is not None:
        target = urllib.parse.urljoin(url, form.link)
    else:
        return None
    host, origin = urllib.parse.urlsplit(target), urllib.parse.urlsplit(url)
    google = (host.hostname or "").endswith((".google.com", ".googleusercontent.com"))
    if host.scheme not in ("http", "https") or not (host.hostname == origin.hostname or google):
        return None
    return target


def _looks_like_html(head: bytes) -> bool:
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return stripped.startswith(b"<")


def _check_content(ckpt: Checkpoint, path: Path, where: str | None = None) -> None:
    """Cheap checks (size, leading bytes). Raises :class:`InvalidWeightsFile`."""
    where = where or str(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if size == 0:
        raise InvalidWeightsFile(f"{where} is empty")
    if _looks_like_html(head):
        raise InvalidWeightsFile(_html_message(ckpt, head, where))
    magic = _MAGIC[ckpt.kind]
    if not head.startswith(magic):
        raise InvalidWeightsFile(
            f"{where} does not look like a {ckpt.kind} file: it starts with {head[:8]!r}, "
            f"expected {' or '.join(repr(m) for m in magic)}"
        )
    if ckpt.size is not None and size != ckpt.size:
        raise InvalidWeightsFile(f"{where} has {_human(size)}; expected {_human(ckpt.size)}")
    if ckpt.max_size is not None and size > ckpt.max_size:
        raise InvalidWeightsFile(f"{where} has {_human(size)}; a genuine {ckpt.filename} has at most "
                                 f"{_human(ckpt.max_size)}")


def _check_loads(ckpt: Checkpoint, path: Path, where: str) -> None:
    """Load ``path`` safely as what ``ckpt`` is (no tensor is built); raise :class:`InvalidWeightsFile`.

    A StyleGAN v1 pickle goes through :func:`i2s.weights.tf_pickle.validate_pickle` (StyleGAN2 pickles
    through ``ada_pickle.validate_ada_pickle`` / ``tf_stylegan2.validate_tf_stylegan2``; the allow-list
    unpickler, the bounded architecture, every variable's shape), so a truncated, crafted or
    wrong file is never installed and its sha256 never recorded. torchvision state dicts are
    covered by their confirmed sha256 prefix.
    """
    if ckpt.kind not in _VALIDATORS:
        return
    import importlib  # noqa: PLC0415

    from .converted import WeightsFormatError  # noqa: PLC0415 - numpy/torch only when needed
    from .tf_pickle import UnsafePickleError

    module, func, what = _VALIDATORS[ckpt.kind]
    try:
        getattr(importlib.import_module(f".{module}", __package__), func)(path)
    except (WeightsFormatError, UnsafePickleError) as e:
        raise InvalidWeightsFile(f"{where} does not load as {what}, so it was not "
                                 f"installed and its sha256 not recorded: {e}") from None




def _log_md5(ckpt: Checkpoint, md5: str | None) -> None:
    if not ckpt.md5_seen or md5 is None:
        return
    if md5 in ckpt.md5_seen:
        log.info("%s: md5 %s matches a third-party value (unofficial)", ckpt.filename, md5)
    else:
        log.info(
            "%s: md5 %s matches none of the third-party values %s (they are unofficial and "
            "disagree with each other; not enforced)", ckpt.filename, md5, ", ".join(ckpt.md5_seen),
        )


def _accept(ckpt: Checkpoint, path: Path, *, where: str, replace_record: bool) -> tuple[str, str | None]:
    """Run content and hash checks on ``path``; return (sha256, md5).

    Raises :class:`InvalidWeightsFile`/:class:`HashMismatch`. A mismatch against a
    *recorded* (not confirmed) hash is accepted with a warning if ``replace_record``.
    """
    _check_content(ckpt, path, where)
    sha256, md5 = _digests(path, md5=bool(ckpt.md5_seen))
    _log_md5(ckpt, md5)
    verdict = _judge(ckpt, sha256, _recorded_for(ckpt))
    if verdict.status == "mismatch":
        if verdict.against == "recorded" and replace_record:
            warnings.warn(f"{ckpt.filename}: {verdict.detail}; recording the new value",
                          WeightsWarning, stacklevel=3)
        else:
            raise HashMismatch(f"{where}: {verdict.detail}")
    elif verdict.status == "warning":
        warnings.warn(f"{ckpt.filename}: {verdict.detail}", WeightsWarning, stacklevel=3)
    _check_loads(ckpt, path, where)
    return sha256, md5


# --------------------------------------------------------------------------- downloading


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``bytes START-END/TOTAL`` (or ``bytes */TOTAL``) into (START, TOTAL)."""
    if not value:
        return None, None
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value)
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


@dataclass(frozen=True)
class _Limits:
    """What one download may take: bytes in all, slowest rate (over a window), and a deadline."""

    max_bytes: int
    min_rate: float
    rate_window: float
    deadline_at: float | None  # time.monotonic() value


def _max_bytes(ckpt: Checkpoint, max_bytes: int | None) -> int:
    """The size cap: ``max_bytes`` if given, else the exact size, else the registry's maximum, else
    :data:`DEFAULT_MAX_BYTES`."""
    if max_bytes is not None:
        return max_bytes
    if ckpt.size is not None:
        return ckpt.size
    return ckpt.max_size if ckpt.max_size is not None else DEFAULT_MAX_BYTES


def _check_announced(ckpt: Checkpoint, url: str, total: int | None, limits: _Limits) -> None:
    """Refuse an answer whose announced size cannot be the file, before reading its body."""
    if total is None:
        return
    if ckpt.size is not None and total != ckpt.size:
        raise InvalidWeightsFile(f"the answer from {url} announces {_human(total)}; expected "
                                 f"{_human(ckpt.size)} for {ckpt.filename}")
    if total > limits.max_bytes:
        raise InvalidWeightsFile(f"the answer from {url} announces {_human(total)}, more than the "
                                 f"{_human(limits.max_bytes)} a genuine {ckpt.filename} can have")


def _download(url: str, part: Path, ckpt: Checkpoint, *, progress: bool, limits: _Limits) -> None:
    """Download ``url`` into ``part``, resuming an existing partial file, within ``limits``.

    Raises :class:`_DownloadFailed` for transport problems, a too slow transfer or a passed
    deadline (the partial file is kept) and :class:`InvalidWeightsFile` for an HTML answer or a
    size beyond the cap (announced, or reached while reading: the partial file is deleted).
    """
    page_url = url
    for _ in range(4):  # a restart from zero or Drive's confirmation page consumes one pass
        offset = part.stat().st_size if part.exists() else 0
        if ckpt.size is not None and offset > ckpt.size:
            part.unlink()
            offset = 0
        if ckpt.size is not None and offset == ckpt.size:
            return
        headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as e:
            with e:
                if e.code == 416 and offset:
                    _, total = _content_range(e.headers.get("Content-Range"))
                    if total == offset:
                        return  # the partial file is already complete
                    log.info("%s: server refused to resume; restarting from zero", url)
                    part.unlink()
                    continue
                raise _DownloadFailed(f"HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise _DownloadFailed(f"cannot connect: {reason}") from None

        with response:
            ctype = (response.headers.get("Content-Type") or "").lower()
            if ctype.startswith("text/html"):
                head = response.read(_MAX_HTML)
                confirmed = _drive_confirmed_url(head, url) if url == page_url else None
                if confirmed is None:
                    raise InvalidWeightsFile(_html_message(ckpt, head, f"the answer from {url}"))
                log.info("%s: Google Drive's confirmation page; following its download link", url)
                url = confirmed  # once: the confirmed URL answering HTML again is an error
                continue
            length = response.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if response.status == 206:
                start, total = _content_range(response.headers.get("Content-Range"))
                if start != offset:
                    log.info("%s: unexpected Content-Range; restarting from zero", url)
                    part.unlink()
                    continue
                mode = "ab"
                if total is None and length is not None:
                    total = offset + length
            else:
                if offset:
                    log.info("%s: server ignored the Range request; restarting from zero", url)
                offset, mode, total = 0, "wb", length
            _check_announced(ckpt, url, total, limits)
            _copy_stream(response, part, mode, offset, total, progress, ckpt.filename, limits)
            return
    raise _DownloadFailed("could not resume the partial download")


def _copy_stream(response, part: Path, mode: str, offset: int, total: int | None,
                 progress: bool, desc: str, limits: _Limits) -> None:
    """Append the body of ``response`` to ``part`` within ``limits``.

    Reads with ``read1`` (whatever one socket read returns), so a trickle is noticed: every
    ``limits.rate_window`` seconds the rate over that window must reach ``limits.min_rate``, and
    ``limits.deadline_at`` ends the transfer whatever its rate. Beyond ``limits.max_bytes`` the
    partial file is deleted and :class:`InvalidWeightsFile` raised (an endless stream).
    """
    from tqdm.auto import tqdm

    read = getattr(response, "read1", None) or response.read
    done = offset
    too_large = False
    window_start, window_bytes = time.monotonic(), 0
    try:
        with open(part, mode) as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=desc, disable=not progress, leave=False,
        ) as bar:
            while chunk := read(_CHUNK):
                if done + len(chunk) > limits.max_bytes:
                    too_large = True
                    break
                out.write(chunk)
                done += len(chunk)
                window_bytes += len(chunk)
                bar.update(len(chunk))
                now = time.monotonic()
                if limits.deadline_at is not None and now > limits.deadline_at:
                    raise _DownloadFailed(
                        f"the download did not finish within its deadline ({done:,} bytes so far); "
                        f"partial file kept at {part}, fetching again resumes it")
                if now - window_start >= limits.rate_window:
                    rate = window_bytes / (now - window_start)
                    if rate < limits.min_rate:
                        raise _DownloadFailed(
                            f"the server sends only {rate:,.0f} bytes/s (at least {limits.min_rate:,.0f} over "
                            f"{limits.rate_window:g} s are needed); gave up after {done:,} bytes, partial file "
                            f"kept at {part}")
                    window_start, window_bytes = now, 0
    except (OSError, http.client.HTTPException) as e:  # timeouts, resets, IncompleteRead
        raise _DownloadFailed(
            f"transfer interrupted after {done:,} bytes ({type(e).__name__}: {e}); partial file kept at {part}"
        ) from None
    if too_large:
        part.unlink(missing_ok=True)
        raise InvalidWeightsFile(
            f"the server sent more than {limits.max_bytes:,} bytes, more than a genuine {desc} can have; "
            "the download was cut off and deleted")
    if total is not None and done < total:
        raise _DownloadFailed(
            f"connection closed after {done:,} of {total:,} bytes; partial file kept at {part}"
        )


def fetch(name: str, *, urls: Sequence[str] | None = None, force: bool = False,
          progress: bool = True, max_bytes: int | None = None, min_rate: float | None = None,
          rate_window: float | None = None, deadline: float | None = None) -> Path:
    """Return a local path to checkpoint ``name``, downloading it if needed.

    Args:
        name: registry key (see :data:`i2s.weights.REGISTRY`).
        urls: try these URLs instead of the registry's (e.g. a mirror); default: those of
            ``$I2S_WEIGHTS_URL_<NAME>`` (:func:`url_override`) if set, else the registry's.
        force: download again even if a copy is cached (the old copy stays until the new
            one has passed all checks), and accept a sha256 that differs from the recorded one.
        progress: show a tqdm progress bar.
        max_bytes: cut a download off beyond this many bytes (default: the registry's exact size
            or maximum, else :data:`DEFAULT_MAX_BYTES`).
        min_rate, rate_window: give up on a URL that sends fewer than ``min_rate`` bytes/s over
            ``rate_window`` seconds (default :data:`MIN_RATE` over :data:`RATE_WINDOW`).
        deadline: give up on a URL after this many seconds (default :data:`DEADLINE`).

    The file is downloaded to ``<filename>.part`` (resumed if present), checked (size,
    leading bytes, HTML pages, hashes) and loaded safely (a StyleGAN pickle must convert), and
    only then moved into place with :func:`os.replace` and its sha256 recorded. Concurrent
    fetches of one file wait for each other (a lock file): the second finds the first's copy.

    Raises:
        WeightsUnavailable: offline (``I2S_OFFLINE=1``) or every URL failed; the message
            lists each failure and says where to put a hand-downloaded copy.
        InvalidWeightsFile: a cached copy fails the cheap checks (use ``force=True``).
    """
    ckpt = get(name)
    if not force:
        existing = cached_path(name)
        if existing is not None:
            try:
                _check_content(ckpt, existing)
            except InvalidWeightsFile as e:
                raise InvalidWeightsFile(
                    f"{e}\nDelete it, or run `i2s weights fetch {name} --force`."
                ) from None
            return existing

    urls = tuple(urls) if urls is not None else (url_override(name) or ckpt.urls)
    dest = weights_dir() / ckpt.filename
    part = dest.with_name(dest.name + ".part")
    if is_offline():
        raise WeightsUnavailable(
            f"I2S_OFFLINE is set, so {ckpt.filename} ({name}) was not downloaded.\n"
            + _manual_instructions(ckpt, urls)
        )

    dest.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    with _locked(dest.with_name(dest.name + ".lock")):
        if not force and dest.is_file():  # another process fetched it while we waited for the lock
            with contextlib.suppress(InvalidWeightsFile):
                _check_content(ckpt, dest)
                return dest
        if force and part.exists():
            part.unlink()
        for url in urls:
            limits = _Limits(
                max_bytes=_max_bytes(ckpt, max_bytes),
                min_rate=MIN_RATE if min_rate is None else min_rate,
                rate_window=RATE_WINDOW if rate_window is None else rate_window,
                deadline_at=time.monotonic() + (DEADLINE if deadline is None else deadline),
            )
            try:
                _download(url, part, ckpt, progress=progress, limits=limits)
            except _DownloadFailed as e:
                failures.append(f"{url}: {e}")
                continue
            except InvalidWeightsFile as e:
                failures.append(f"{url}: {e}")
                continue
            try:
                sha256, md5 = _accept(ckpt, part, where=f"the download from {url}",
                                      replace_record=force)
            except InvalidWeightsFile as e:
                part.unlink(missing_ok=True)  # never keep a bad file around
                failures.append(f"{url}: {e}")
                continue
            size = part.stat().st_size
            os.replace(part, dest)
            _record_if_unconfirmed(ckpt, sha256, md5, size, url)
            log.info("downloaded %s to %s", ckpt.filename, dest)
            return dest

    msg = [f"Could not download {ckpt.filename} ({name}). Tried:"]
    msg += [f"  - {f}" for f in failures]
    if part.exists():
        msg.append(f"A partial download ({part.stat().st_size:,} bytes) is kept at {part}; "
                   "fetching again resumes it.")
    msg.append(_manual_instructions(ckpt, urls))
    raise WeightsUnavailable("\n".join(msg))


def _record_if_unconfirmed(ckpt: Checkpoint, sha256: str, md5: str | None, size: int,
                           source: str) -> None:
    if not (ckpt.sha256 and ckpt.sha256_confirmed):
        _record(ckpt, sha256, md5, size, source)


def import_file(name: str, path: str | os.PathLike[str]) -> Path:
    """Copy a hand-downloaded file into the cache as checkpoint ``name``.

    The file gets the same checks as a download (size, leading bytes, HTML pages, confirmed
    hashes); its sha256 is recorded unless the registry holds a confirmed one. A sha256 that
    differs from an earlier recorded value is accepted with a warning (importing is an
    explicit choice). The copy lands atomically; importing the cache file itself only
    records its hash.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        InvalidWeightsFile: the file fails a check; nothing is copied.
    """
    ckpt = get(name)
    src = Path(path).expanduser()
    if not src.is_file():
        raise FileNotFoundError(f"no such file: {src}")
    dest = weights_dir() / ckpt.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest.with_name(dest.name + ".lock")):
        sha256, md5 = _accept(ckpt, src, where=str(src), replace_record=True)
        same = dest.exists() and os.path.samefile(src, dest)
        if not same:
            fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".import", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                    shutil.copyfileobj(inp, out, _CHUNK)
                if _digests(Path(tmp))[0] != sha256:
                    raise InvalidWeightsFile(f"{src} changed while it was being copied")
                os.replace(tmp, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        _record_if_unconfirmed(ckpt, sha256, md5, dest.stat().st_size, f"import:{src.resolve()}")
    log.info("imported %s as %s", src, dest)
    return dest


def verify(name: str | None = None) -> list[tuple[str, str, str]]:
    """Check local copies against the registry and ``hashes.json``.

    Args:
        name: one checkpoint, or ``None`` for every cached checkpoint.

    Returns:
        ``(name, status, detail)`` tuples. ``status`` is ``"ok"``; ``"warning"`` (differs only
        from an unconfirmed registry hash); ``"unrecorded"`` (nothing to compare with; import
        the file to record it); ``"mismatch"`` (differs from a confirmed/recorded hash or the
        confirmed prefix); ``"invalid"`` (HTML page, wrong size or leading bytes); or
        ``"missing"`` (only when ``name`` is given and nothing is cached).
    """
    names = [get(name).name] if name is not None else list(REGISTRY)
    results: list[tuple[str, str, str]] = []
    for n in names:
        ckpt = get(n)
        path = cached_path(n)
        if path is None:
            if name is not None:
                results.append((n, "missing", f"not cached; expected at {weights_dir() / ckpt.filename}"))
            continue
        try:
            _check_content(ckpt, path)
        except InvalidWeightsFile as e:
            results.append((n, "invalid", str(e)))
            continue
        sha256, md5 = _digests(path, md5=bool(ckpt.md5_seen))
        _log_md5(ckpt, md5)
        verdict = _judge(ckpt, sha256, _recorded_for(ckpt))
        if verdict.status != "mismatch":
            try:
                _check_loads(ckpt, path, "the cached copy")  # a file that does not load safely is never OK
            except InvalidWeightsFile as e:
                results.append((n, "invalid", str(e)))
                continue
        detail = f"{path}: {verdict.detail}"
        if verdict.status == "unrecorded":
            detail += f"; record it with `i2s weights import {n} {path}`"
        results.append((n, verdict.status, detail))
    return results
