"""What the commands share: exit codes, common options, progress, signal handling."""

from __future__ import annotations

import argparse
import sys
import time
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
    """--mode, --model, --backend, --fps, --half-window, --pad-mode, --threads (process, stream)."""
    from ..encoders import BACKENDS, DEFAULT_BACKEND
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
        "--backend",
        default=DEFAULT_BACKEND,
        choices=list(BACKENDS),
        help="the runtime that runs the model; their features agree within 1e-5"
        " (openvino needs `pip install 'synctalk-audio[openvino]'`; default: %(default)s)",
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


def add_output_format(p: argparse.ArgumentParser) -> None:
    """--output-format: the registered output formats (`outputs.sink.OUTPUT_FORMATS`)."""
    from ..outputs.sink import DEFAULT_OUTPUT_FORMAT, OUTPUT_FORMATS

    p.add_argument(
        "--output-format",
        default=DEFAULT_OUTPUT_FORMAT,
        choices=list(OUTPUT_FORMATS),
        help="what --output holds: npy = the mode's feature file, frames/frame_%%05d.bin and"
        " metadata.json (default: %(default)s)",
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
    from ..outputs.sink import DEFAULT_OUTPUT_FORMAT
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
        backend=getattr(args, "backend", None),
        max_duration=max_duration_of(args),
        frames=not getattr(args, "no_frames", False),
        output_format=getattr(args, "output_format", DEFAULT_OUTPUT_FORMAT),
        stream=stream,
    )


def mode_options_of(args: argparse.Namespace) -> dict[str, object]:
    """The mode options given on the command line (`add_encoder_options`), by name."""
    from ..modes import REGISTRY

    names = {option.name for mode in REGISTRY.values() for option in mode.options}
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
