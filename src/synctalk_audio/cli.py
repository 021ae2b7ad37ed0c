"""The ``synctalk-audio`` command.

``synctalk-audio process`` keeps the options and output files of the original
tool (``-audio``, ``-model``, ``-output``, ``-fps``, ``-mode``, with one dash
or two); ``export`` turns a SyncTalk_2D checkpoint into ONNX; ``validate``
compares two output directories. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import stat
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._version import __version__
from .errors import AudioLoadError, ModelError, ParameterError
from .limits import (
    DEFAULT_MAX_DURATION,
    check_channels,
    check_duration,
    check_max_duration,
    check_sample_rate,
)

if TYPE_CHECKING:
    from .modes import FeatureMode, ModeSettings

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1  # validation over tolerance, processing failure
EXIT_USAGE = 2  # bad arguments or bad input
EXIT_INTERRUPTED = 130

#: Set this environment variable to 1 to see the traceback of an unexpected error.
DEBUG_ENV = "SYNCTALK_AUDIO_DEBUG"


class _Progress:
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


def _add_encoder_options(p: argparse.ArgumentParser) -> None:
    """--mode, --model, --fps, --half-window, --pad-mode, --threads: process and stream."""
    from .modes import DEFAULT_HALF_WINDOW, REGISTRY

    defaults = "; ".join(f"{m.name}: {m.default_model}" for m in REGISTRY.values())
    rates = ", ".join(f"{m.name} {m.native_fps:g}" for m in REGISTRY.values())
    p.add_argument(
        "--mode",
        "-mode",
        default="ave",
        help=f"feature mode, one of: {', '.join(REGISTRY)} (default: %(default)s)",
    )
    p.add_argument(
        "--model",
        "-model",
        default=None,
        metavar="PATH",
        help=f"the mode's ONNX model (default: {defaults})",
    )
    p.add_argument(
        "--fps",
        "-fps",
        type=float,
        default=None,
        help="video frame rate of the avatar; ave accepts 1 to below 80, other modes only their"
        f" own rate (default: the mode's own rate: {rates})",
    )
    p.add_argument(
        "--half-window",
        "-half-window",
        type=int,
        default=DEFAULT_HALF_WINDOW,
        metavar="H",
        help="frame i gets feature rows i-H .. i+H-1: 8 = SyncTalk_2D, 4 ="
        " Ultralight-Digital-Human, as the mode allows (default: %(default)s)",
    )
    p.add_argument(
        "--pad-mode",
        "-pad-mode",
        default="constant",
        help="STFT padding: constant = librosa >= 0.10, reflect = librosa < 0.10;"
        " use what your avatar was trained with (default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        "-threads",
        type=int,
        default=None,
        help="encoder threads (default: one per physical core)",
    )
    p.add_argument(
        "--max-duration",
        "-max-duration",
        type=float,
        default=DEFAULT_MAX_DURATION,
        metavar="SECONDS",
        help="refuse more audio than this; 0 for no limit (default: %(default)g = 24 h)",
    )


def _add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overwrite",
        "-overwrite",
        action="store_true",
        help="replace --output even if it holds files synctalk-audio did not write (never the"
        " working directory, the home directory or a directory containing the input)",
    )


def _add_process(sub: Any) -> None:
    p = sub.add_parser(
        "process",
        help="audio file -> aud_ave.npy, frames/frame_%%05d.bin, metadata.json",
        description="Compute SyncTalk_2D audio features of one audio file and write them to"
        " an output directory, atomically. An existing directory is replaced only if it is"
        " empty or holds a previous output of this tool, unless --overwrite is given.",
    )
    p.add_argument(
        "--audio",
        "-audio",
        required=True,
        metavar="PATH",
        help="input audio: WAV/FLAC/OGG/MP3, any rate and channel count"
        " (loaded exactly as librosa.load(path, sr=16000))",
    )
    _add_encoder_options(p)
    p.add_argument(
        "--output",
        "-output",
        default="output",
        metavar="DIR",
        help="output directory; an existing one is replaced only if it is empty or holds a"
        " previous synctalk-audio output (default: %(default)s)",
    )
    _add_overwrite(p)
    p.add_argument(
        "--batch-size",
        "-batch-size",
        type=int,
        default=None,
        help="windows per encoder call (default: 32)",
    )
    p.add_argument(
        "--no-frames",
        "-no-frames",
        action="store_true",
        help="write only the feature file (aud_ave.npy) and metadata.json, not the per-frame files",
    )
    p.add_argument("--quiet", "-quiet", "-q", action="store_true", help="print nothing on success")


def _add_export(sub: Any) -> None:
    from .modes.ave import DEFAULT_MODEL as AVE_DEFAULT_MODEL

    p = sub.add_parser(
        "export",
        help="SyncTalk_2D audio_visual_encoder.pth -> ONNX (needs PyTorch)",
        description="Export a SyncTalk_2D AudioEncoder checkpoint to ONNX with a dynamic batch"
        " axis, and check it against PyTorch before reporting success."
        " Needs PyTorch: pip install 'synctalk-audio[export]'.",
    )
    p.add_argument(
        "--checkpoint",
        "-checkpoint",
        required=True,
        metavar="PTH",
        help="audio_visual_encoder.pth (keys with or without 'audio_encoder.')",
    )
    p.add_argument(
        "--output",
        "-output",
        default=AVE_DEFAULT_MODEL,
        metavar="ONNX",
        help="where to write the model (default: %(default)s)",
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-5,
        help="max abs difference to PyTorch allowed (default: %(default)g)",
    )
    p.add_argument("--quiet", "-quiet", "-q", action="store_true", help="print nothing on success")


def _add_validate(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="compare two output directories (exit 1 over tolerance)",
        description="Compare aud_ave.npy and every frame file of two output directories:"
        " counts, max/mean abs error, cosine similarity.",
    )
    p.add_argument("reference", help="reference output directory (e.g. from the Python path)")
    p.add_argument("candidate", help="output directory to check")
    p.add_argument(
        "--tolerance", type=float, default=1e-5, help="max abs error allowed (default: %(default)g)"
    )
    p.add_argument(
        "--relative",
        action="store_true",
        help="apply --tolerance to the error divided by the reference's max |value|",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_stream(sub: Any) -> None:
    p = sub.add_parser(
        "stream",
        help="live: audio on stdin -> each frame on stdout the moment it is final",
        description="Read audio from standard input (a WAV stream, whose header may give an"
        " unknown size, or raw PCM with --raw) and write each video frame's U-Net input to"
        " standard output as [uint32 LE count][count float32 LE] as soon as no future audio"
        " can change it, flushing after each record. The frames equal `process` on the whole"
        " input, byte for byte. End of input ends it; Ctrl-C, SIGTERM or SIGHUP flushes what is"
        " final and exits with status 128 + the signal's number.",
    )
    _add_encoder_options(p)
    p.add_argument(
        "--raw",
        "-raw",
        choices=("s16le", "f32le"),
        default=None,
        help="headerless PCM on stdin in this encoding (default: expect a WAV header)",
    )
    p.add_argument(
        "--rate",
        "-rate",
        type=int,
        default=16000,
        help="sample rate of --raw input, 1000 to 768000 Hz (default: %(default)s)",
    )
    p.add_argument(
        "--channels",
        "-channels",
        type=int,
        default=1,
        help="interleaved channels of --raw input, 1 to 1024 (default: %(default)s)",
    )
    p.add_argument(
        "--output",
        "-output",
        default=None,
        metavar="DIR",
        help="also write frames/frame_%%05d.bin as they become final, and"
        " aud_ave.npy and metadata.json at the end (the directory is replaced atomically,"
        " under the same rules as in process)",
    )
    _add_overwrite(p)
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
    p.add_argument(
        "--quiet", "-quiet", "-q", action="store_true", help="no summary on stderr at the end"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synctalk-audio",
        description="SyncTalk_2D audio features, equal to the Python reference, fast.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_process(sub)
    _add_export(sub)
    _add_validate(sub)
    _add_stream(sub)
    return parser


def _max_duration(args: argparse.Namespace) -> float | None:
    """--max-duration as a limit in seconds; 0 means none."""
    if args.max_duration == 0:
        return None
    return check_max_duration(args.max_duration, name="--max-duration")


def _settings(args: argparse.Namespace) -> tuple[FeatureMode, ModeSettings]:
    """--mode and the settings it validates: --fps, --half-window, --pad-mode."""
    from .modes import get_mode

    mode = get_mode(args.mode)
    settings = mode.settings(
        fps=args.fps,
        half_window=args.half_window,
        pad_mode=args.pad_mode,
        names=("--fps", "--half-window"),
    )
    return mode, settings


def _run_process(args: argparse.Namespace) -> int:
    from .output import atomic_output_dir, check_output_dir
    from .pipeline import Pipeline

    mode, settings = _settings(args)
    max_duration = _max_duration(args)
    check_output_dir(args.output, overwrite=args.overwrite, inputs=[args.audio])
    if not os.path.exists(args.audio):
        raise FileNotFoundError(f"audio file not found: {args.audio}")
    started = time.perf_counter()
    with Pipeline(
        args.model,
        fps=settings.fps,
        mode=mode,
        half_window=settings.half_window,
        pad_mode=settings.pad_mode,
        batch_size=args.batch_size,
        threads=args.threads,
        max_duration=max_duration,
    ) as pipe:
        show = not args.quiet and sys.stderr.isatty()
        with atomic_output_dir(
            args.output, overwrite=args.overwrite, inputs=[args.audio]
        ) as staging:
            # Block by block, in flat memory whatever the duration.
            metadata = pipe.process_into(
                args.audio,
                staging,
                frames=not args.no_frames,
                progress=_Progress("processing") if show else None,
                started=started,
            )
    if not args.quiet:
        counts = metadata["counts"]
        print(
            f"{args.audio}: {metadata['input']['duration_s']:.2f} s -> {counts['frames']} frames"
            f" ({counts['mel_frames']} mel frames, {counts['windows']} windows) in"
            f" {metadata['timings']['wall_s']:.2f} s -> {os.path.abspath(args.output)}"
        )
    return EXIT_OK


def _run_export(args: argparse.Namespace) -> int:
    from .export import export_onnx

    report = export_onnx(args.checkpoint, args.output, opset=args.opset, tolerance=args.tolerance)
    if not args.quiet:
        print(report)
    return EXIT_OK


def _note_nonfinite(invalid: list[str], path: str, values: np.ndarray) -> None:
    """Add a line to ``invalid`` if ``values`` hold NaN or infinity."""
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        invalid.append(f"{path} holds {bad} NaN/inf values of {values.size}")


def _feature_file(directory: str) -> str:
    """The feature array of an output directory: its one ``aud_*.npy`` (a mode's feature file)."""
    from .modes import REGISTRY

    names = sorted({m.feature_file for m in REGISTRY.values()})
    found = [n for n in names if os.path.isfile(os.path.join(directory, n))]
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise ParameterError(
            f"{directory} is not an output directory: {what} feature file ({', '.join(names)})"
        )
    return os.path.join(directory, found[0])


def compare_outputs(reference: str, candidate: str) -> dict[str, Any]:
    """Compare two output directories; see ``synctalk-audio validate``.

    ``report["invalid"]`` lists every file of either directory that holds NaN
    or infinity: such output is never valid, whatever the other side holds.
    """
    from .output import read_frame_file

    report: dict[str, Any] = {"reference": reference, "candidate": candidate}
    invalid: list[str] = []
    report["invalid"] = invalid
    ref_path, cand_path = _feature_file(reference), _feature_file(candidate)
    ref = np.load(ref_path)
    cand = np.load(cand_path)
    _note_nonfinite(invalid, ref_path, ref)
    _note_nonfinite(invalid, cand_path, cand)
    report["aud_ave_shape"] = [list(ref.shape), list(cand.shape)]
    if ref.shape != cand.shape:
        report["match"] = False
        report["problem"] = f"aud_ave shapes differ: {ref.shape} vs {cand.shape}"
        return report
    diff = np.abs(ref.astype(np.float64) - cand.astype(np.float64))
    report["aud_ave_max_abs"] = float(diff.max())
    # Relative to the reference's largest value: the fair yardstick for a real
    # encoder whose features are much larger than the test encoder's.
    report["reference_max_abs_value"] = float(np.abs(ref).max())
    report["aud_ave_mean_abs"] = float(diff.mean())
    ref_frames = (
        sorted(os.listdir(os.path.join(reference, "frames")))
        if os.path.isdir(os.path.join(reference, "frames"))
        else []
    )
    cand_frames = (
        sorted(os.listdir(os.path.join(candidate, "frames")))
        if os.path.isdir(os.path.join(candidate, "frames"))
        else []
    )
    report["frame_counts"] = [len(ref_frames), len(cand_frames)]
    worst, total, count, cos_min = 0.0, 0.0, 0, 1.0
    if ref_frames != cand_frames:
        report["problem"] = "frame file lists differ"
    else:
        for name in ref_frames:
            a = read_frame_file(os.path.join(reference, "frames", name)).astype(np.float64)
            b = read_frame_file(os.path.join(candidate, "frames", name)).astype(np.float64)
            _note_nonfinite(invalid, os.path.join(reference, "frames", name), a)
            _note_nonfinite(invalid, os.path.join(candidate, "frames", name), b)
            if a.shape != b.shape:
                report["problem"] = f"{name}: {a.size} vs {b.size} values"
                break
            d = np.abs(a - b)
            worst = max(worst, float(d.max()))
            total += float(d.sum())
            count += d.size
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            if na > 0 and nb > 0:
                cos_min = min(cos_min, float(a @ b / (na * nb)))
    report["frames_max_abs"] = worst
    report["frames_mean_abs"] = total / count if count else 0.0
    ref64, cand64 = ref.astype(np.float64), cand.astype(np.float64)
    row_cos = np.sum(ref64 * cand64, axis=1) / np.maximum(
        np.linalg.norm(ref64, axis=1) * np.linalg.norm(cand64, axis=1), 1e-300
    )
    report["aud_ave_min_cosine"] = float(row_cos.min())
    report["frames_min_cosine"] = cos_min
    return report


def _run_validate(args: argparse.Namespace) -> int:
    report = compare_outputs(args.reference, args.candidate)
    worst = max(report.get("aud_ave_max_abs", np.inf), report.get("frames_max_abs", 0.0))
    if args.relative:
        worst /= max(report.get("reference_max_abs_value", 1.0), 1e-30)
    invalid = report.get("invalid", [])
    ok = not invalid and "problem" not in report and worst <= args.tolerance
    report["tolerance"] = args.tolerance
    report["match"] = ok
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        if "problem" in report:
            print(f"MISMATCH: {report['problem']}")
        else:
            print(
                f"aud_ave {tuple(report['aud_ave_shape'][0])}:"
                f" max abs {report['aud_ave_max_abs']:.3g},"
                f" mean abs {report['aud_ave_mean_abs']:.3g}, min cosine"
                f" {report['aud_ave_min_cosine']:.9f}\nframes {report['frame_counts'][0]} vs"
                f" {report['frame_counts'][1]}: max abs {report['frames_max_abs']:.3g}, mean abs"
                f" {report['frames_mean_abs']:.3g}, min cosine {report['frames_min_cosine']:.9f}"
            )
        if invalid:
            more = f" (and {len(invalid) - 1} more files)" if len(invalid) > 1 else ""
            print(f"FAIL: {invalid[0]}{more}: NaN or inf is never valid output")
        elif "problem" not in report:
            kind = "relative to max |reference| " if args.relative else ""
            print(("OK" if ok else "FAIL") + f": tolerance {kind}{args.tolerance:g}")
    return EXIT_OK if ok else EXIT_FAILED


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Stopped(KeyboardInterrupt):
    """Raised by `_InterruptGuard` for SIGINT, SIGTERM and SIGHUP alike."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _exit_status(signum: int) -> int:
    """The shell's convention: 128 + the signal's number (130 for Ctrl-C)."""
    return 128 + signum


class _InterruptGuard:
    """Turns Ctrl-C, SIGTERM and SIGHUP into `_Stopped`, but never inside a `deferred` block.

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
        self.signum: int | None = None

    def install(self) -> None:
        from .output import STOP_SIGNALS

        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.signal(signum, self._on_signal)
                self._previous.setdefault(signum, previous)

    def restore(self) -> None:
        """Put back the handlers `install` replaced."""
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        if self._depth:
            self._pending = signum
        else:
            raise _Stopped(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._pending is not None:
                signum, self._pending = self._pending, None
                raise _Stopped(signum)


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


def _run_stream(args: argparse.Namespace) -> int:
    from .metadata import run_metadata
    from .output import (
        FRAME_HEADER,
        atomic_output_dir,
        check_output_dir,
        write_frame_file,
        write_metadata,
    )
    from .streaming import FeatureStreamer
    from .wavstream import PcmDecoder, PcmFormat, read_wav_header

    mode, settings = _settings(args)
    mode.check_streamable()
    max_duration = _max_duration(args)
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
        threads=args.threads,
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
        check_sample_rate(fmt.sample_rate, name="the sample rate in the WAV header")
        check_channels(fmt.channels, name="the channel count in the WAV header")
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
    interrupted = False

    guard = _InterruptGuard()

    def emit(frames: list[Any], frame_dir: str | None) -> None:
        for frame in frames:
            data = np.ascontiguousarray(frame.features, dtype="<f4")
            with guard.deferred():  # Ctrl-C never cuts a record in half
                if out_fd is not None:
                    _write_stdout(out_fd, FRAME_HEADER.pack(data.size) + data.tobytes())
                if frame_dir is not None:
                    path = os.path.join(frame_dir, f"frame_{frame.index:05d}.bin")
                    write_frame_file(path, data)
                rows.append(frame.row)

    def run(frame_dir: str | None) -> None:
        nonlocal interrupted, remaining
        try:
            while remaining is None or remaining > 0:
                size = args.read_size if remaining is None else min(args.read_size, remaining)
                block = _read_stdin(source, size)
                if not block:
                    break
                if remaining is not None:
                    remaining -= len(block)
                emit(stream.feed(decoder.decode(block)), frame_dir)
            emit(stream.close(), frame_dir)
        except KeyboardInterrupt:
            interrupted = True
        except BrokenPipeError:
            interrupted = True

    guard.install()
    if args.output is None:
        run(None)
    else:
        with atomic_output_dir(
            args.output, overwrite=args.overwrite, inputs=_stdin_file()
        ) as staging:
            frame_dir = os.path.join(staging, "frames")
            os.mkdir(frame_dir)
            run(frame_dir)
            if rows:
                path = os.path.join(staging, mode.feature_file)
                np.save(path, np.stack(rows).astype("<f4"))
            write_metadata(
                staging,
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
                    complete=not interrupted,
                    model=streamer.encoder.describe(),
                ),
            )
    if not args.quiet:
        state = "interrupted" if interrupted else "done"
        print(
            f"synctalk-audio stream: {state}: {len(rows)} frames from"
            f" {stream.samples_received / fmt.sample_rate:.2f} s of audio",
            file=sys.stderr,
        )
    if guard.signum is not None:
        return _exit_status(guard.signum)
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


def _normalise_argv(argv: list[str]) -> list[str]:
    # The original tool had no sub-command: `process -audio x.wav`. Treat a
    # command line that starts with an option other than help/version as `process`.
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        return ["process", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``synctalk-audio``; returns the exit status."""
    args_list = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(args_list)
    runners = {
        "process": _run_process,
        "export": _run_export,
        "validate": _run_validate,
        "stream": _run_stream,
    }
    guard = _InterruptGuard()  # SIGTERM and SIGHUP stop a run the way Ctrl-C does
    guard.install()
    try:
        return runners[args.command](args)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
        print(f"synctalk-audio: interrupted{by}; nothing was written", file=sys.stderr)
        return _exit_status(signum)
    except MemoryError as exc:
        _print_error(args.command, _out_of_memory(args.command, exc))
        return EXIT_FAILED
    except (
        ParameterError,
        AudioLoadError,
        ModelError,
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
    "audio.py": "decoding the audio",
    "wavstream.py": "reading standard input",
    "mel.py": "computing the mel spectrogram",
    "windows.py": "cutting encoder windows",
    "encoder.py": "running the encoder",
    "pipeline.py": "processing the audio",
    "streaming.py": "streaming",
    "output.py": "writing the output",
    "export.py": "exporting the model",
}


def _out_of_memory(command: str, exc: MemoryError) -> str:
    """The one-line message for a MemoryError: during what, and what to try."""
    package = os.path.dirname(os.path.abspath(__file__))
    phase = f"running {command}"
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        filename = os.path.abspath(frame.f_code.co_filename)
        if os.path.dirname(filename) == package:
            phase = _MEMORY_PHASES.get(os.path.basename(filename), phase)
    hint = "free memory (close other programs) and try again"
    if command == "process":
        hint = (
            "try a shorter input (split it first, e.g. `ffmpeg -i in.wav -f segment"
            " -segment_time 600 part%03d.wav`) or " + hint
        )
    return f"out of memory while {phase}; {hint}"


if __name__ == "__main__":
    sys.exit(main())
