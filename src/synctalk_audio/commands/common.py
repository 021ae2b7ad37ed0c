"""What the commands share: exit codes, common options, progress, signal handling."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..limits import (
    DEFAULT_MAX_DURATION,
    check_max_duration,
)

if TYPE_CHECKING:
    from ..spec import RunSpec

EXIT_OK = 0
EXIT_FAILED = 1  # validation over tolerance, processing failure
EXIT_USAGE = 2  # bad arguments or bad input
EXIT_INTERRUPTED = 130
#: A filter whose reader went away (`| head`): 128 + SIGPIPE (13), what a shell
#: reports for a process SIGPIPE ended.
EXIT_BROKEN_PIPE = 141


class Parser(argparse.ArgumentParser):
    """The commands' argument parser: every ``--long`` option also answers to ``-long``.

    The original tool (Go's ``flag`` package) spelled its options with one
    dash (``-audio``, ``-output``); each option added here gets that spelling
    too, so no option has to list it and none can miss it. The parser also
    records which option sets which keyword (`option_of`), so that errors
    about a keyword argument name the option instead.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Destination (keyword argument) -> the option's ``--long`` spelling.
        self.option_of: dict[str, str] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *name_or_flags: str, **kwargs: Any) -> argparse.Action:
        """`argparse.ArgumentParser.add_argument`, with ``-long`` added for each ``--long``."""
        names = list(name_or_flags)
        for name in name_or_flags:
            single = name[1:]
            if name.startswith("--") and len(name) > 2 and single not in names:
                names.append(single)
        action = super().add_argument(*names, **kwargs)
        flag = next((name for name in name_or_flags if name.startswith("--")), None)
        if flag is not None:
            self.option_of.setdefault(action.dest, flag)
        return action


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        elapsed = time.perf_counter() - self.started
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:.1f}s"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def add_encoder_options(p: argparse.ArgumentParser) -> None:
    """--mode, --model, --fps, --half-window, --pad-mode, --threads: process and stream."""
    from ..modes import DEFAULT_HALF_WINDOW, REGISTRY

    defaults = "; ".join(f"{m.name}: {m.default_model}" for m in REGISTRY.values())
    rates = ", ".join(f"{m.name} {m.native_fps:g}" for m in REGISTRY.values())
    p.add_argument(
        "--mode",
        default="ave",
        help=f"feature mode, one of: {', '.join(REGISTRY)} (default: %(default)s)",
    )
    p.add_argument(
        "--model",
        default=None,
        metavar="PATH",
        help=f"the mode's ONNX model (default: {defaults})",
    )
    p.add_argument(
        "--fps",
        type=float,
        default=None,
        help="video frame rate of the avatar; ave accepts 1 to below 80, other modes only their"
        f" own rate (default: the mode's own rate: {rates})",
    )
    p.add_argument(
        "--half-window",
        type=int,
        default=DEFAULT_HALF_WINDOW,
        metavar="H",
        help="frame i gets feature rows i-H .. i+H-1: 8 = SyncTalk_2D, 4 ="
        " Ultralight-Digital-Human, as the mode allows (default: %(default)s)",
    )
    p.add_argument(
        "--pad-mode",
        default="constant",
        help="STFT padding: constant = librosa >= 0.10, reflect = librosa < 0.10;"
        " use what your avatar was trained with (default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads of the encoder (wenet: chunks encoded at once) and of the mel/fbank within"
        " one input; the output does not depend on it (default: ONNX Runtime's own for the"
        " ave and hubert encoders, every CPU otherwise)",
    )
    # Each mode's own options (FeatureMode.options), offered once each; the
    # mode rejects those that are not its own.
    offered: set[str] = set()
    for mode in REGISTRY.values():
        for option in mode.options:
            if option.name not in offered:
                offered.add(option.name)
                p.add_argument(
                    option.flag,
                    dest=option.name,
                    default=None,
                    metavar="|".join(option.choices),
                    help=f"{option.help} (default: {option.default})",
                )
    p.add_argument(
        "--max-duration",
        type=float,
        default=DEFAULT_MAX_DURATION,
        metavar="SECONDS",
        help="refuse more audio than this; 0 for no limit (default: %(default)g = 24 h)",
    )


def add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --output even if it holds files synctalk-audio did not write (never the"
        " working directory, the home directory or a directory containing the input)",
    )


def max_duration_of(args: argparse.Namespace) -> float | None:
    """--max-duration as a limit in seconds; 0 means none."""
    if args.max_duration == 0:
        return None
    return check_max_duration(args.max_duration)


def spec_of(args: argparse.Namespace, *, stream: bool = False) -> RunSpec:
    """The run's `RunSpec` from the encoder options (`add_encoder_options`), built once.

    A bad value raises `ParameterError` naming its keyword, which `main`
    turns into the option's name (``--fps``).
    """
    from ..spec import RunSpec

    return RunSpec.create(
        args.mode,
        args.model,
        fps=args.fps,
        half_window=args.half_window,
        pad_mode=args.pad_mode,
        options=mode_options_of(args),
        batch_size=getattr(args, "batch_size", None),
        threads=args.threads,
        max_duration=max_duration_of(args),
        frames=not getattr(args, "no_frames", False),
        stream=stream,
    )


def mode_options_of(args: argparse.Namespace) -> dict[str, object]:
    """The mode options given on the command line (`add_encoder_options`), by name."""
    from ..modes import REGISTRY

    names = {option.name for mode in REGISTRY.values() for option in mode.options}
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


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
        from ..outputs.directory import STOP_SIGNALS

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
