"""What the ``i2s`` commands share (:mod:`i2s.cli`, :mod:`i2s.cli_edits`): exit codes, usage
errors, the device and generator every command loads, one-line reports. torch-free at import."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_NO_INPUT, EXIT_USAGE, EXIT_PARTIAL, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class UsageError(Exception):
    """A bad option value or input, reported as one line with exit code 2."""


def resolve_device(name: str) -> str:
    """``--device``: :func:`i2s.runtime.resolve_device` (``auto``: a GPU when there is one), with a
    device torch cannot use here as a usage error."""
    from .runtime import resolve_device as choose

    try:
        return str(choose(name))
    except ValueError as e:
        raise UsageError(f"--device {e}") from None


def check_writable(out: Path) -> None:
    """Create ``out`` and write a probe file in it, before any work: a read-only or full folder
    is found now, not after the last step."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".i2s-write-test-{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e}); choose another folder "
                         "or free some space") from None


def load_generator_or_report(model: str, device: str):
    """load_generator, with a one-line message instead of a traceback for a bad or missing file."""
    from .models import load_generator
    from .weights.converted import WeightsFormatError
    from .weights.fetch import WeightsError
    from .weights.tf_pickle import UnsafePickleError

    try:
        return load_generator(model, device=resolve_device(device))
    except (FileNotFoundError, WeightsFormatError, UnsafePickleError, WeightsError) as e:
        print(f"[i2s] cannot load the generator {model}: {plain_torch_text(str(e))}", file=sys.stderr)
        return None


def plain_torch_text(text: str) -> str:
    """torch's own advice to re-run ``torch.load`` with ``weights_only=False`` (which would run the
    file's code) is never relayed."""
    import re

    return re.sub(r"[^.;]*weights_only\s*=\s*False[^.;]*[.;]?", "", text).strip() or "refused by torch.load"


def at_least(lowest: int):
    """An argparse type: a whole number >= ``lowest``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"want a whole number >= {lowest}; got {text!r}") from None
        if v < lowest:
            raise argparse.ArgumentTypeError(f"want a whole number >= {lowest}; got {v}")
        return v

    return parse
