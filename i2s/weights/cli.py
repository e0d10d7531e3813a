"""``i2s weights`` subcommand: list, fetch, import and verify pretrained files."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from .fetch import (
    WeightsError,
    cached_path,
    fetch,
    import_file,
    recorded_hashes,
    verify,
    weights_dir,
)
from .registry import REGISTRY, Checkpoint, UnknownCheckpoint

__all__ = ["add_weights_parser", "run_weights"]


def add_weights_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``weights {list,fetch,import,verify}`` on a top-level ``subparsers`` object.

    Sets ``func=run_weights``, so the caller can dispatch with ``args.func(args)``.
    """
    known = ", ".join(sorted(REGISTRY))
    p = subparsers.add_parser(
        "weights",
        help="list, download, import or verify pretrained weights",
        description=f"Manage pretrained weights (known: {known}).",
    )
    sub = p.add_subparsers(dest="weights_command", metavar="{list,fetch,import,verify}")
    sub.required = True

    sub.add_parser("list", help="show known weights, hash status and cache location")

    f = sub.add_parser("fetch", help="download weights into the cache")
    f.add_argument("name", metavar="NAME", help=f"one of: {known}")
    f.add_argument("--force", action="store_true",
                   help="download again even if cached; accept a new sha256")
    f.add_argument("--quiet", action="store_true", help="no progress bar")

    i = sub.add_parser("import", help="copy a hand-downloaded file into the cache")
    i.add_argument("name", metavar="NAME", help=f"one of: {known}")
    i.add_argument("path", metavar="PATH", help="the downloaded file")

    v = sub.add_parser("verify", help="check cached files against known/recorded hashes")
    v.add_argument("name", metavar="NAME", nargs="?", default=None,
                   help="only this one (default: every cached file)")

    p.set_defaults(func=run_weights)
    return p


def _hash_status(ckpt: Checkpoint, records: dict) -> str:
    if ckpt.sha256 and ckpt.sha256_confirmed:
        return "confirmed"
    rec = records.get(ckpt.name)
    if isinstance(rec, dict) and rec.get("filename") == ckpt.filename and rec.get("sha256"):
        return "recorded"
    if ckpt.sha256_prefix:
        return f"unknown (prefix {ckpt.sha256_prefix} confirmed)"
    return "unknown"


def _size(ckpt: Checkpoint, path) -> str:
    if ckpt.size is not None:
        return f"{ckpt.size:,}"
    if path is not None:
        return f"{path.stat().st_size:,} (local)"
    return "unknown"


def _list(out: TextIO) -> int:
    rows = [("NAME", "FILENAME", "SIZE", "HASH", "CACHED")]
    records = recorded_hashes()
    for name in sorted(REGISTRY):
        ckpt = REGISTRY[name]
        path = cached_path(name)
        cached = f"yes {path}" if path is not None else f"no (-> {weights_dir() / ckpt.filename})"
        rows.append((name, ckpt.filename, _size(ckpt, path), _hash_status(ckpt, records), cached))
    widths = [max(len(r[k]) for r in rows) for k in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4], file=out)
    return 0


def run_weights(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the ``i2s weights`` subcommand described by ``args``; return an exit code.

    0 on success, 1 when a file is unavailable or fails a check, 2 for an unknown name.
    """
    out = out if out is not None else sys.stdout
    cmd = getattr(args, "weights_command", None) or "list"
    try:
        if cmd == "list":
            return _list(out)
        if cmd == "fetch":
            path = fetch(args.name, force=args.force, progress=not args.quiet)
            print(path, file=out)
            return 0
        if cmd == "import":
            path = import_file(args.name, args.path)
            print(f"imported {args.path} -> {path}", file=out)
            return 0
        if cmd == "verify":
            results = verify(args.name)
            if not results:
                print(f"no cached weights under {weights_dir()}", file=out)
                return 0
            for name, status, detail in results:
                print(f"{name}: {status.upper()}  {detail}", file=out)
            bad = {"mismatch", "invalid", "missing"}
            return 1 if any(status in bad for _, status, _ in results) else 0
    except UnknownCheckpoint as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (WeightsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    raise ValueError(f"unknown weights command {cmd!r}")
