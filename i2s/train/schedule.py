"""The progressive-growing schedule: which resolution and fade-in alpha a given number of
images shown falls in (``--schedule``), and the batch size per resolution (``--batch``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["Phase", "Schedule", "parse_batch", "parse_schedule"]


def _parse_count(s: str) -> int:
    """'40k' -> 40000, '1.5M' -> 1500000, '300' -> 300 (images)."""
    s = s.strip().lower()
    mult = 1
    if s.endswith("k"):
        mult, s = 1000, s[:-1]
    elif s.endswith("m"):
        mult, s = 1_000_000, s[:-1]
    return int(round(float(s) * mult))


@dataclass(frozen=True)
class Phase:
    """One resolution of the progressive schedule: images ``[start, end)``, the first
    ``fade`` of them fading the new resolution in (alpha 0 -> 1)."""

    res: int
    start: int
    fade: int
    end: float  # math.inf for the open-ended last phase

    @property
    def block(self) -> int:
        return int(math.log2(self.res)) - 2


def parse_schedule(spec: str, fade_frac: float = 0.5) -> list[Phase]:
    """``"8:40k,16:60k,32:80k,64:rest"`` -> phases by images shown.

    Each entry is ``RES:LEN`` or ``RES:LEN/FADE``; every phase after the first starts with a
    fade-in of ``FADE`` images (default ``fade_frac * LEN``). ``rest`` (last entry only)
    lasts until the end of training; its fade-in defaults to ``fade_frac`` times the previous
    phase's length.
    """
    phases: list[Phase] = []
    start = 0
    entries = [e for e in spec.split(",") if e.strip()]
    if not entries:
        raise ValueError("empty schedule")
    prev_len = 0
    for i, entry in enumerate(entries):
        try:
            res_s, rest = entry.split(":")
            res = int(res_s)
        except ValueError:
            raise ValueError(f"bad schedule entry {entry!r} (want RES:LEN[/FADE])") from None
        if res < 4 or 2 ** int(math.log2(res)) != res:
            raise ValueError(f"schedule resolution must be a power of two >= 4, got {res}")
        if phases and res != 2 * phases[-1].res:
            raise ValueError(f"schedule resolutions must double each phase: {phases[-1].res} -> {res}")
        len_s, _, fade_s = rest.partition("/")
        if len_s.strip().lower() == "rest":
            if i != len(entries) - 1:
                raise ValueError("'rest' is only allowed for the last schedule entry")
            length: float = math.inf
            fade = _parse_count(fade_s) if fade_s else int(round(fade_frac * prev_len))
        else:
            length = _parse_count(len_s)
            fade = _parse_count(fade_s) if fade_s else int(round(fade_frac * length))
        if i == 0:
            fade = 0
        if fade > length:
            raise ValueError(f"fade-in longer than its phase in {entry!r}")
        phases.append(Phase(res, start, fade, start + length))
        start = start + length  # type: ignore[assignment]
        prev_len = int(length) if length != math.inf else prev_len
    return phases


class Schedule:
    """Where in progressive growing a given number of images shown falls."""

    def __init__(self, phases: Sequence[Phase]) -> None:
        self.phases = list(phases)

    def at(self, images: int) -> tuple[int, float, tuple[int, int]]:
        """-> (block, alpha, key); ``key = (phase index, 0 fade-in | 1 stable)``."""
        for i, p in enumerate(self.phases):
            if images < p.end or i == len(self.phases) - 1:
                t = images - p.start
                if t < p.fade:
                    return p.block, t / p.fade, (i, 0)
                return p.block, 1.0, (i, 1)
        raise AssertionError("unreachable")


def parse_batch(spec: str) -> dict[int, int]:
    """``"8:64,16:64,32:32,64:32"`` (or one number for all) -> {res: batch}."""
    spec = spec.strip()
    if ":" not in spec:
        b = int(spec)
        return {4 * 2**k: b for k in range(0, 12)}
    out: dict[int, int] = {}
    for entry in spec.split(","):
        res, b = entry.split(":")
        out[int(res)] = int(b)
    return out
