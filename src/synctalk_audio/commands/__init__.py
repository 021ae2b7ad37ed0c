"""The ``synctalk-audio`` command.

``synctalk-audio process`` keeps the options and output files of the original
tool (``-audio``, ``-model``, ``-output``, ``-fps``, ``-mode``); every option
of every command is spelled with one dash or two (`common.Parser`). ``export``
turns a SyncTalk_2D checkpoint into ONNX; ``validate`` compares two output
directories. Errors print one line and exit non-zero; one about a value names
the option that gave it (``--batch-size``, not the keyword ``batch_size``).
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from .._version import __version__
from ..errors import DEBUG_ENV, AudioLoadError, ModelError, ParameterError, WorkerStartError
from ..signals import InterruptGuard, exit_status
from . import conform, export, process, stream, validate, vectors
from .common import EXIT_FAILED, EXIT_USAGE, Parser

__all__ = ["build_parser", "main"]

#: The sub-commands, each a module with ``add_parser(sub)`` and ``run(args)``.
COMMANDS = {
    "process": process,
    "export": export,
    "validate": validate,
    "stream": stream,
    "vectors": vectors,
    "conform": conform,
}


#: The command's own options, which a command line may start with.
TOP_LEVEL_OPTIONS = ("-h", "--help", "-help", "--version", "-version")


def build_parser() -> argparse.ArgumentParser:
    """The ``synctalk-audio`` parser, with a sub-parser per command (`COMMANDS`)."""
    return _build_parsers()[0]


def _build_parsers() -> tuple[Parser, dict[str, Parser]]:
    """The parser and each command's sub-parser, by command name."""
    parser = Parser(
        prog="synctalk-audio",
        description="SyncTalk_2D audio features, equal to the Python reference, fast."
        " Every option is spelled with one dash or two (-audio = --audio).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser, {name: sub.choices[name] for name in COMMANDS}


def _normalise_argv(argv: list[str]) -> list[str]:
    # The original tool had no sub-command: `process -audio x.wav`. Treat a
    # command line that starts with an option other than help/version as `process`.
    if argv and argv[0].startswith("-") and argv[0] not in TOP_LEVEL_OPTIONS:
        return ["process", *argv]
    return argv


def _print_names_as_given() -> None:
    """Print file names as the OS gave them, even those that are not valid UTF-8.

    Python holds a name's undecodable bytes (``\\xff``) as surrogates and, in
    most UTF-8 locales, refuses to print them on stdout; ``surrogateescape``
    writes the original bytes back, as ``ls`` does. stderr already escapes them.
    """
    if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.errors == "strict":
        sys.stdout.reconfigure(errors="surrogateescape")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``synctalk-audio``; returns the exit status."""
    _print_names_as_given()
    args_list = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    parser, commands = _build_parsers()
    args = parser.parse_args(args_list)
    # The process's one guard: SIGTERM and SIGHUP stop a run the way Ctrl-C
    # does; a command that must finish what it started (stream) uses it too.
    guard = InterruptGuard()
    guard.install()
    args.stop_guard = guard
    try:
        status: int = COMMANDS[args.command].run(args)
        return status
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
        print(f"synctalk-audio: interrupted{by}; nothing was written", file=sys.stderr)
        return exit_status(signum)
    except MemoryError as exc:
        _print_error(args.command, _out_of_memory(args.command, exc))
        return EXIT_FAILED
    except ParameterError as exc:
        # A check names the keyword argument (batch_size); say the option (--batch-size).
        _print_error(args.command, exc.named(commands[args.command].option_of) or "ParameterError")
        return EXIT_USAGE
    except (
        AudioLoadError,
        ModelError,
        WorkerStartError,
        FileNotFoundError,
        PermissionError,
        IsADirectoryError,
        NotADirectoryError,
    ) as exc:
        _print_error(args.command, str(exc) or type(exc).__name__)
        return EXIT_USAGE
    except Exception as exc:
        # OS errors (disk full, a closed pipe, ...) and the package's own errors
        # (export failures) are anticipated; anything else may be a bug: one
        # line by default, the traceback on request.
        if not _anticipated(exc) and os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        _print_error(args.command, _unexpected(exc))
        return EXIT_FAILED
    finally:
        guard.restore()


def _anticipated(exc: Exception) -> bool:
    """An OSError, or an exception class of this package (ExportError, ...)."""
    return isinstance(exc, OSError) or type(exc).__module__.startswith(__package__ or "-")


def _print_error(command: str, message: str) -> None:
    """The command's one line on stderr for an error."""
    text = " ".join(message.split())
    if sys.stderr is not None:
        print(f"synctalk-audio {command}: error: {text}", file=sys.stderr)


def _unexpected(exc: Exception) -> str:
    """One line for an exception no check anticipated: type, message, how to see more."""
    message = str(exc) or "(no message)"
    if _anticipated(exc) or isinstance(exc, (RuntimeError, ValueError)):
        return message
    return (
        f"internal error: {type(exc).__name__}: {message}. This is a bug; run again with"
        f" {DEBUG_ENV}=1 for the traceback and please report it"
    )


#: Where an out-of-memory error happened: the deepest module of the package on
#: the traceback, named as a step of the work.
_MEMORY_PHASES = {
    "frontends/audio.py": "decoding the audio",
    "frontends/wavstream.py": "reading standard input",
    "frontends/mel.py": "computing the mel spectrogram",
    "frontends/windows.py": "cutting encoder windows",
    "encoders/": "running the encoder",
    "modes/ave.py": "computing the features",
    "engines/pipeline.py": "processing the audio",
    "engines/streaming.py": "streaming",
    "outputs/directory.py": "writing the output",
    "outputs/files.py": "writing the output",
    "export/ave.py": "exporting the model",
}


def _out_of_memory(command: str, exc: MemoryError) -> str:
    """The one-line message for a MemoryError: during what, and what to try."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    phase = f"running {command}"
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        filename = os.path.relpath(os.path.abspath(frame.f_code.co_filename), package)
        filename = filename.replace(os.sep, "/")
        folder = filename.rpartition("/")[0] + "/"
        phase = _MEMORY_PHASES.get(filename, _MEMORY_PHASES.get(folder, phase))
    hint = "free memory (close other programs) and try again"
    if command == "process":
        hint = (
            "try a shorter input (split it first, e.g. `ffmpeg -i in.wav -f segment"
            " -segment_time 600 part%03d.wav`) or " + hint
        )
    return f"out of memory while {phase}; {hint}"


if __name__ == "__main__":
    sys.exit(main())
