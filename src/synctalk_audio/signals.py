"""Stop signals, handled in one place.

SIGINT (Ctrl-C), SIGTERM and SIGHUP all stop a run the same way
(`STOP_SIGNALS`). A command process has one `InterruptGuard`, installed by
``synctalk-audio``'s `main`: it turns each of them into `Stopped` (a
`KeyboardInterrupt` carrying the signal's number), except inside a
`InterruptGuard.deferred` block (a record being written) or once the run has
`InterruptGuard.settle`-d. The output writers hold the signals back around
the steps no signal may cut in half (`signals_held`, `unstoppable`):
making a staging path or lock file, renaming an output into place,
cleaning up after a stop.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = [
    "STOP_SIGNALS",
    "InterruptGuard",
    "Stopped",
    "deliver",
    "exit_status",
    "signals_held",
    "unstoppable",
]

#: Signals that stop a run the way Ctrl-C does. They are held back while a
#: staging path or lock file is made, while an output is renamed into place and
#: while a stopped run cleans up, so none can leave a half-done step behind (a
#: job's worker can get several: one per thread of its driver, when that dies).
STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def signals_held() -> Iterator[list[int]]:
    """Hold back `STOP_SIGNALS` during the block.

    Yields the list of signals received meanwhile: if the block raises they
    are delivered at once, else the caller delivers them with `deliver`.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, lambda s, _f: received.append(s))
        yield received
    except BaseException:
        restore_handlers(previous)
        deliver(received)
        raise
    restore_handlers(previous)


def restore_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def deliver(received: list[int]) -> None:
    """Raise the held signals again, in order, now that their handlers are back.

    Each distinct signal once; the first whose handler raises ends it. All of
    them, not only the first: a process that ignores SIGINT must still stop
    on a SIGTERM that came after it.
    """
    for signum in dict.fromkeys(received):
        signal.raise_signal(signum)


@contextlib.contextmanager
def unstoppable() -> Iterator[None]:
    """Run the block with `STOP_SIGNALS` held back, then deliver those received."""
    with signals_held() as held:
        yield
    deliver(held)


class Stopped(KeyboardInterrupt):
    """Raised by `InterruptGuard` for SIGINT, SIGTERM and SIGHUP alike."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(signum: int) -> int:
    """The shell's convention: 128 + the signal's number (130 for Ctrl-C)."""
    return 128 + signum


class InterruptGuard:
    """Turns Ctrl-C, SIGTERM and SIGHUP into `Stopped`, but never inside a `deferred` block.

    All three stop a run the same way, so the output directory is cleaned up
    or completed (see `atomic_output_dir`) whichever arrives. The stream
    command writes each record whole: a signal that arrives while a record is
    being written takes effect right after it. ``signum`` is the first signal
    received.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._pending: int | None = None
        self._previous: dict[int, Any] = {}
        self._settled = False
        self.signum: int | None = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.signal(signum, self._on_signal)
                self._previous.setdefault(signum, previous)

    def restore(self) -> None:
        """Put back the handlers `install` replaced."""
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def settle(self) -> None:
        """From now on only record a signal (``signum``), never raise.

        For the end of a run that must finish what it started: the stream
        command, once its input has ended or it was stopped, puts its output
        in place whatever arrives meanwhile.
        """
        self._settled = True

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        if self._settled:
            return
        if self._depth:
            self._pending = signum
        else:
            raise Stopped(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._pending is not None:
                signum, self._pending = self._pending, None
                raise Stopped(signum)
