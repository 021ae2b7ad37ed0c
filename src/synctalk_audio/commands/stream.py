"""``synctalk-audio stream``: audio on stdin, each frame out the moment it is final."""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ParameterError
from ..limits import (
    check_channels,
    check_duration,
    check_sample_rate,
)
from .common import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    InterruptGuard,
    add_encoder_options,
    add_overwrite,
    exit_status,
    max_duration_of,
    settings_of,
)

if TYPE_CHECKING:
    from ..outputs.directory import StreamOutput


def add_parser(sub: Any) -> None:
    from ..modes import feature_files

    p = sub.add_parser(
        "stream",
        help="live: audio on stdin -> each frame on stdout the moment it is final",
        description="Read audio from standard input (a WAV stream, whose header may give an"
        " unknown size, or raw PCM with --raw) and write each video frame's U-Net input to"
        " standard output as [uint32 LE count][count float32 LE] as soon as no future audio"
        " can change it, flushing after each record. The frames equal `process` on the whole"
        " input, byte for byte. End of input ends it; Ctrl-C, SIGTERM or SIGHUP flushes what is"
        " final and exits with status 128 + the signal's number; a closed standard output"
        " (`| head`) ends it with status 141. With --output, a stream that ends early keeps"
        " its frames so far, marked incomplete, but never in place of a complete output:"
        " that is left as it was and they go to OUT.partial beside it.",
    )
    add_encoder_options(p)
    p.add_argument(
        "--raw",
        choices=("s16le", "f32le"),
        default=None,
        help="headerless PCM on stdin in this encoding (default: expect a WAV header)",
    )
    p.add_argument(
        "--rate",
        type=int,
        default=16000,
        help="sample rate of --raw input, 1000 to 768000 Hz (default: %(default)s)",
    )
    p.add_argument(
        "--channels",
        type=int,
        default=1,
        help="interleaved channels of --raw input, 1 to 1024 (default: %(default)s)",
    )
    p.add_argument(
        "--output",
        default=None,
        metavar="DIR",
        help="also write frames/frame_%%05d.bin as they become final, and the mode's feature"
        f" file ({feature_files()}) and metadata.json at the end (the directory is replaced"
        " atomically, under the same rules as in process; a stream that ends early never"
        " replaces a complete output)",
    )
    add_overwrite(p)
    p.add_argument(
        "--no-stdout",
        action="store_true",
        help="do not write frame records to stdout (with --output)",
    )
    p.add_argument(
        "--read-size",
        type=int,
        default=4096,
        help="bytes per read from stdin (default: %(default)s)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr at the end")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _stdin_file() -> list[str]:
    """The path of the regular file on stdin, if the system tells (Linux /proc)."""
    try:
        if not stat.S_ISREG(os.fstat(0).st_mode):
            return []
        path = os.readlink("/proc/self/fd/0")
    except OSError:
        return []
    return [path] if os.path.isabs(path) and os.path.isfile(path) else []


def _check_stdio(args: argparse.Namespace) -> None:
    """The stream command's standard input and output are open; --read-size is sane."""
    if args.read_size < 1:
        raise ParameterError(f"--read-size must be at least 1 byte, got {args.read_size}")
    if sys.stdin is None:
        raise ParameterError(
            "standard input is closed: pipe the audio into it, e.g."
            " `synctalk-audio stream < speech.wav > frames.bin`"
        )
    if sys.stdout is None and not args.no_stdout:
        raise ParameterError(
            "standard output is closed: redirect it to a file or pipe (`> frames.bin`),"
            " or pass --no-stdout with --output"
        )


def _stdio_error(action: str, exc: OSError) -> OSError:
    """An OSError on stdin/stdout as one that says which and what failed."""
    if isinstance(exc, BrokenPipeError):
        return exc  # the reader went away: the stream command stops quietly
    return OSError(f"cannot {action}: {exc.strerror or exc}")


def _read_stdin(source: Any, size: int) -> bytes:
    try:
        block: bytes = source.read(size)
    except OSError as exc:
        raise _stdio_error("read standard input", exc) from exc
    return block


def _write_stdout(fd: int, data: bytes) -> None:
    try:
        _write_all(fd, data)
    except OSError as exc:
        raise _stdio_error("write to standard output", exc) from exc


#: How a stream ended: its input ran out, a stop signal, or its reader went away.
_END_OF_INPUT, _STOPPED, _READER_GONE = "end of input", "stopped", "reader gone"


def _silence_stdout() -> None:
    """Point the closed standard output at the null device, so nothing at exit writes to it."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def _where(out: StreamOutput | None) -> str:
    """What the summary says about --output after the run, or ""."""
    if out is None:
        return ""
    if out.written is None:
        if out.note:
            return f"; {out.note}"
        left = f", {out.final} was left as it was" if os.path.isdir(out.final) else ""
        return f"; no frame was final: nothing was written{left}"
    if out.complete:
        return f" -> {out.written}"
    said = f'the partial output (metadata.json "complete": false) is in {out.written}'
    return f"; {out.note}; {said}" if out.note else f"; {said}"


def run(args: argparse.Namespace) -> int:
    """Run ``synctalk-audio stream``; the exit status.

    How the stream ends decides what ``--output`` becomes (`stream_output_dir`):
    at the end of its input the output replaces ``--output``; stopped by
    SIGINT, SIGTERM or SIGHUP (status 128 + the signal's number) or by its
    reader going away (status 141, as SIGPIPE would end it; quietly without
    ``--output``), the frames final so far are kept, marked incomplete,
    without ever replacing a complete output, and the summary says where.
    """
    from ..engines.streaming import FeatureStreamer, feed_pcm
    from ..frontends.wavstream import PcmDecoder, PcmFormat, read_wav_header
    from ..outputs.directory import check_output_dir, stream_output_dir
    from ..outputs.files import FRAME_HEADER, write_frame_file, write_metadata
    from ..outputs.metadata import run_metadata

    mode, settings = settings_of(args)
    mode.check_streamable()
    max_duration = max_duration_of(args)
    if args.raw is not None:
        check_sample_rate(args.rate, name="--rate")
        check_channels(args.channels, name="--channels")
    if args.output is not None:
        check_output_dir(args.output, overwrite=args.overwrite, inputs=_stdin_file())
    if args.no_stdout and args.output is None:
        raise ParameterError("--no-stdout needs --output, or nothing would be written")
    _check_stdio(args)
    streamer = FeatureStreamer(
        args.model,
        mode=mode,
        fps=settings.fps,
        half_window=settings.half_window,
        pad_mode=settings.pad_mode,
        options=dict(settings.options),
        threads=args.threads,
        backend=args.backend,
        max_duration=max_duration,
    )
    stdin = sys.stdin.buffer
    source = getattr(stdin, "raw", stdin)
    if args.raw is not None:
        fmt, remaining = PcmFormat(args.rate, args.channels, args.raw), None
    else:
        try:
            fmt, remaining = read_wav_header(stdin)
        except OSError as exc:
            raise _stdio_error("read standard input", exc) from exc
        if remaining is not None:
            frames = remaining // fmt.frame_bytes
            check_duration(frames, fmt.sample_rate, max_duration, source="the WAV header")
        # The header was read through the buffered reader: keep reading from it
        # so no buffered bytes are lost.
        source = stdin
    decoder = PcmDecoder(fmt)
    stream = streamer.open(sample_rate=fmt.sample_rate, channels=fmt.channels)
    # Records go straight to the descriptor, one whole record per loop of
    # os.write: no buffer can hold back part of a record at exit.
    if sys.stdout is not None:
        sys.stdout.flush()
    out_fd = None if args.no_stdout else sys.stdout.fileno()
    rows: list[np.ndarray] = []
    started = time.perf_counter()
    ended = _END_OF_INPUT

    guard = InterruptGuard()

    def emit(frame: Any, frame_dir: str | None) -> None:
        data = np.ascontiguousarray(frame.features, dtype="<f4")
        with guard.deferred():  # Ctrl-C never cuts a record in half
            if out_fd is not None:
                _write_stdout(out_fd, FRAME_HEADER.pack(data.size) + data.tobytes())
            if frame_dir is not None:
                path = os.path.join(frame_dir, f"frame_{frame.index:05d}.bin")
                write_frame_file(path, data)
            rows.append(frame.row)

    def run(frame_dir: str | None) -> None:
        nonlocal ended
        # Once the stream has ended, whatever arrives is recorded, not raised:
        # what was written is finished and put in place. Settled inside the
        # ``try``, so a signal just before is caught as a stop.
        try:
            for frame in feed_pcm(
                stream,
                lambda size: _read_stdin(source, size),
                decoder,
                read_size=args.read_size,
                remaining=remaining,
            ):
                emit(frame, frame_dir)
            guard.settle()
        except KeyboardInterrupt:
            guard.settle()
            ended = _STOPPED
        except BrokenPipeError:
            guard.settle()
            ended = _READER_GONE
            _silence_stdout()

    guard.install()
    out: StreamOutput | None = None
    if args.output is None:
        run(None)
    else:
        with stream_output_dir(args.output, overwrite=args.overwrite, inputs=_stdin_file()) as out:
            frame_dir = os.path.join(out.staging, "frames")
            os.mkdir(frame_dir)
            run(frame_dir)
            out.complete = ended == _END_OF_INPUT
            out.keep = out.complete or bool(rows)  # a stop before any frame keeps nothing
            if out.keep:
                if rows:
                    path = os.path.join(out.staging, mode.feature_file)
                    np.save(path, np.stack(rows).astype("<f4"))
                write_metadata(
                    out.staging,
                    run_metadata(
                        mode,
                        settings,
                        input={
                            "source": "stdin",
                            "sample_rate": fmt.sample_rate,
                            "channels": fmt.channels,
                            "encoding": fmt.encoding,
                            "samples": stream.samples_received,
                            "duration_s": stream.samples_received / fmt.sample_rate,
                        },
                        counts={**stream.counts, "frames": len(rows)},
                        timings={"wall_s": time.perf_counter() - started},
                        complete=out.complete,
                        model=streamer.encoder.describe(),
                    ),
                )
    quiet = args.quiet or (ended == _READER_GONE and out is None)
    if not quiet:
        state = {
            _END_OF_INPUT: "done",
            _STOPPED: "interrupted",
            _READER_GONE: "standard output was closed",
        }[ended]
        print(
            f"synctalk-audio stream: {state}: {len(rows)} frame{'' if len(rows) == 1 else 's'} from"
            f" {stream.samples_received / fmt.sample_rate:.2f} s of audio{_where(out)}",
            file=sys.stderr,
        )
    if guard.signum is not None:
        return exit_status(guard.signum)
    if ended == _READER_GONE:
        return EXIT_BROKEN_PIPE
    return EXIT_INTERRUPTED if ended == _STOPPED else EXIT_OK
