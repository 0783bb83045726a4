"""SIGTERM and SIGINT as an exception raised at a safe point.

The CLI installs the handlers (a library should not take a process's signals). A signal raises
`Interrupted` in the main thread, except while a `deferred()` block runs — a checkpoint write —
where it is held and raised when the block ends, so the checkpoint on disk is always whole.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):  # noqa: N818  (not an error: like KeyboardInterrupt)
    """The process got SIGTERM or SIGINT. Not an `Exception`, so generic handlers let it pass."""

    def __init__(self, signum: int, message: str = "interrupted; nothing was left half-written"):
        super().__init__(message)
        self.signum = signum
        self.message = message

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process the signal killed


_held: list[int] = []
_raised: list[int] = []  # signals whose Interrupted was raised, until one reaches a checkpoint
_depth = 0


def _handle(signum, frame) -> None:
    if _depth:
        _held.append(signum)
        return
    _raised.append(signum)
    raise Interrupted(signum)


def raise_if_swallowed() -> None:
    """Raise again a signal whose `Interrupted` went nowhere.

    A handler runs between any two bytecodes, also inside a `__del__` that the garbage collector
    calls or a weakref callback, where Python prints "Exception ignored" and carries on; training
    calls this once per batch so such a signal still stops it.
    """
    if _raised and not _depth:
        signum = _raised[0]
        _raised.clear()
        raise Interrupted(signum)


def install() -> None:
    """Raise `Interrupted` on SIGTERM/SIGINT from now on (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _handle)
        sys.unraisablehook = _quiet_about_interrupts(sys.unraisablehook)


def _quiet_about_interrupts(hook):
    """An `Interrupted` that Python could not raise is re-raised by `raise_if_swallowed`; its
    "Exception ignored" report would only be noise on stderr."""

    def unraisable(report):
        if not isinstance(report.exc_value, Interrupted):
            hook(report)

    return unraisable


@contextlib.contextmanager
def deferred():
    """Hold a signal that arrives inside the block; raise it when the block is done."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
    if not _depth and _held:
        signum = _held[0]
        _held.clear()
        raise Interrupted(signum)


def hold() -> None:
    """Start holding signals, as `deferred` does, across calls: a training step begins in one
    callback and ends in another. `release` ends it."""
    global _depth
    _depth += 1


def release() -> None:
    """End a `hold`; raise a signal that arrived meanwhile."""
    global _depth
    _depth = max(0, _depth - 1)
    if not _depth and _held:
        signum = _held[0]
        _held.clear()
        raise Interrupted(signum)


def release_quietly() -> None:
    """End a `hold` without raising: training failed, the error propagates instead; a held
    signal is raised at the next safe point."""
    global _depth
    _depth = max(0, _depth - 1)
