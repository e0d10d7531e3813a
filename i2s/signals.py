"""Deferring Ctrl-C and SIGTERM to a safe point.

A long embedding or a checkpoint write must never be cut in the middle of a step or a file:
:class:`DeferredSignals` holds SIGINT/SIGTERM while a block runs, and the code delivers them at
the end of a step (``raise_pending``), after the state has been saved.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["DeferredSignals", "in_main_thread"]


class DeferredSignals:
    """Hold SIGINT and SIGTERM while a block runs; :meth:`raise_pending` delivers them.

    Installed only in the main thread and only over Python's default handlers (a handler someone
    else installed, or ``SIG_IGN``, is left alone). A deferred SIGINT is raised as
    ``KeyboardInterrupt``, a SIGTERM as ``SystemExit(143)``. With ``interrupt_twice`` a second
    SIGINT raises at once (the user insists). On exit the previous handlers come back; a signal
    still pending is then re-delivered to them.
    """

    _SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self, interrupt_twice: bool = True) -> None:
        self.interrupt_twice = interrupt_twice
        self.pending: int | None = None
        self._old: dict[int, object] = {}

    def _handler(self, signum: int, frame: object) -> None:
        if self.pending == signal.SIGINT and signum == signal.SIGINT and self.interrupt_twice:
            raise KeyboardInterrupt
        self.pending = signum

    def __enter__(self) -> "DeferredSignals":
        if not in_main_thread():
            return self
        for name in self._SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            current = signal.getsignal(signum)
            if current in (signal.default_int_handler, signal.SIG_DFL) or isinstance(current, _BoundDeferral):
                self._old[signum] = current
                signal.signal(signum, _BoundDeferral(self))
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, old)  # type: ignore[arg-type]
        self._old.clear()
        if self.pending is not None and exc[0] is None:
            self.raise_pending()

    def raise_pending(self) -> None:
        """Deliver a deferred signal now (as the default handlers would, but from a safe point)."""
        signum, self.pending = self.pending, None
        if signum is None:
            return
        if self._old:  # still inside the block: raise the Python equivalent
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        signal.raise_signal(signum)  # outside: let whatever handler is now installed decide


class _BoundDeferral:
    """The installed handler (a class, so nested deferrals can recognise each other)."""

    def __init__(self, owner: DeferredSignals) -> None:
        self.owner = owner

    def __call__(self, signum: int, frame: object) -> None:
        self.owner._handler(signum, frame)


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
