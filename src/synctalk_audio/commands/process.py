"""``synctalk-audio process``: one audio file to an output directory, or a job of many.

One ``--audio`` file writes its output directory exactly as the original tool
did. Several ``--audio`` paths, a directory or ``--manifest`` make a job
(`synctalk_audio.jobs.run_job`): one output directory per input under
``--output``, a job record there, and a summary at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

from ..errors import ParameterError
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    Progress,
    add_encoder_options,
    add_output_format,
    add_overwrite,
    spec_of,
)

if TYPE_CHECKING:
    from ..jobs import JobProgress


def add_parser(sub: Any) -> None:
    from ..modes import feature_files

    p = sub.add_parser(
        "process",
        help="audio file(s) -> the mode's feature file, frames/frame_%%05d.bin, metadata.json",
        description="Compute SyncTalk_2D audio features of one audio file and write them to"
        f" an output directory, atomically: the mode's feature file ({feature_files()}),"
        " frames/frame_%05d.bin and metadata.json. An existing directory is replaced only if it is"
        " empty or holds a previous output of this tool, unless --overwrite is given."
        " Several --audio paths, a directory or --manifest make a resumable job: one output"
        " directory per input under --output, mirroring the input tree, and a job record"
        " (synctalk-job.jsonl) there; a rerun skips the finished items.",
    )
    p.add_argument(
        "--audio",
        action="append",
        default=[],
        metavar="PATH",
        help="input audio: WAV/FLAC/OGG/MP3, any rate and channel count"
        " (loaded exactly as librosa.load(path, sr=16000)); repeat it for a job, or give a"
        " directory (searched recursively)",
    )
    p.add_argument(
        "--manifest",
        default=None,
        metavar="FILE",
        help="a job's inputs: one path per line, or .csv/.jsonl with an 'input' and an"
        " optional 'output' column (relative to --output)",
    )
    add_encoder_options(p)
    p.add_argument(
        "--output",
        default="output",
        metavar="DIR",
        help="output directory; an existing one is replaced only if it is empty or holds a"
        " previous synctalk-audio output (default: %(default)s)",
    )
    add_overwrite(p)
    add_output_format(p)
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="windows per encoder call (default: 32)",
    )
    p.add_argument(
        "--no-frames",
        action="store_true",
        help=f"write only the mode's feature file ({feature_files()}) and metadata.json, not"
        " the per-frame files",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    add_job_options(p)


def add_job_options(p: argparse.ArgumentParser) -> None:
    """--engine, each engine's own options, --workers, --force: how a job of many inputs runs."""
    from ..jobs.engine import ENGINES, engine_class

    p.add_argument(
        "--engine",
        default="local",
        choices=list(ENGINES),
        help="where a job's items run: local = worker processes on this machine, ray = a Ray"
        " cluster's actors (pip install 'synctalk-audio[ray]'; docs/SCALING.md)"
        " (default: %(default)s)",
    )
    offered: set[str] = set()
    for name in ENGINES:
        for option in engine_class(name).command_options:
            if option.name not in offered:
                offered.add(option.name)
                p.add_argument(
                    "--" + option.name.replace("_", "-"),
                    dest=option.name,
                    default=None,
                    metavar=option.metavar,
                    help=f"with --engine {name}: {option.help}",
                )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="a job's workers, each holding the model once (default: one per CPU, at most one"
        " per item; --threads is then shared out among them; with --engine ray, one actor per"
        " cluster CPU, each with --threads CPUs, default 1)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="redo every item of a job, even those a previous run finished",
    )


def is_job(args: argparse.Namespace) -> bool:
    """Anything but one --audio path that is not a directory is a job."""
    return args.manifest is not None or len(args.audio) != 1 or os.path.isdir(args.audio[0])


def run(args: argparse.Namespace) -> int:
    engine_options_of(args)  # an option of another engine: say so before anything else
    if not args.audio and args.manifest is None:
        raise ParameterError(
            "no input: give --audio FILE (repeat it, or give a directory, for a job) or"
            " --manifest FILE"
        )
    if is_job(args):
        return run_many(args)
    job_only = [
        flag
        for flag, given in (
            ("--engine", args.engine != "local"),
            ("--workers", args.workers is not None),
            ("--force", args.force),
        )
        if given
    ]
    if job_only:
        one = len(job_only) == 1
        raise ParameterError(
            f"{' and '.join(job_only)} only appl{'ies' if one else 'y'} to jobs (several --audio,"
            f" a directory or --manifest); one file is processed here: leave"
            f" {'it' if one else 'them'} out"
        )
    return run_one(args, args.audio[0])


def run_one(args: argparse.Namespace, audio: str) -> int:
    """One file to ``--output``: the original tool's behaviour and layout."""
    from ..engines.pipeline import Pipeline
    from ..outputs.directory import atomic_output_dir, check_output_dir

    spec = spec_of(args)
    check_output_dir(args.output, overwrite=args.overwrite, inputs=[audio])
    if not os.path.exists(audio):
        raise FileNotFoundError(f"audio file not found: {audio}")
    started = time.perf_counter()
    with Pipeline.from_spec(spec) as pipe:
        show = not args.quiet and sys.stderr.isatty()
        with atomic_output_dir(args.output, overwrite=args.overwrite, inputs=[audio]) as staging:
            # Block by block, in flat memory whatever the duration.
            metadata = pipe.process_into(
                audio,
                staging,
                frames=spec.frames,
                progress=Progress("processing") if show else None,
                started=started,
            )
    if not args.quiet:
        counts = metadata["counts"]
        # The mode's own counts: "mel frames, windows" (ave), "fbank frames, chunks" (wenet).
        steps = ", ".join(
            f"{value} {name.replace('_', ' ').removesuffix('s' if value == 1 else '')}"
            for name, value in counts.items()
            if name not in ("samples_16k", "frames")
        )
        print(
            f"{audio}: {metadata['input']['duration_s']:.2f} s -> {counts['frames']} frames"
            f" ({steps}) in"
            f" {metadata['timings']['wall_s']:.2f} s -> {os.path.abspath(args.output)}"
        )
    return EXIT_OK


#: Failures listed one per line at the end of a job; the rest are in the record.
MAX_FAILURES_SHOWN = 20


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    if hours:
        return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s"
    return f"{rest // 60}m{rest % 60:02d}s"


class JobBar:
    """The job's one-line progress bar on stderr: items, hours of audio, real-time factor, ETA."""

    def __call__(self, p: JobProgress) -> None:
        width = 24
        filled = int(width * p.done / max(p.total, 1))
        rtf = p.real_time_factor
        eta = p.eta_s
        failed = f", {p.failed} failed" if p.failed else ""
        sys.stderr.write(
            f"\rjob [{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total} items,"
            f" {p.audio_done_s / 3600:.2f}/{p.audio_total_s / 3600:.2f} h audio,"
            f" RTF {'-' if rtf is None else f'{rtf:.3f}'},"
            f" ETA {'-' if eta is None else _clock(eta)}{failed} "
        )
        if p.done >= p.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _print_notice(line: str) -> None:
    """A job's notice (what a directory search skipped) as one line on stderr."""
    print(f"synctalk-audio process: note: {line}", file=sys.stderr)


def _no_notice(line: str) -> None:
    """--quiet: notices are not shown."""


def run_many(args: argparse.Namespace) -> int:
    """A job: every input to its own directory under ``--output``; a summary at the end."""
    from ..jobs import run_job
    from ..signals import STOP_SIGNALS, exit_status

    spec = spec_of(args)
    show = not args.quiet and sys.stderr.isatty()
    try:
        summary = run_job(
            args.output,
            args.audio,
            manifest=args.manifest,
            spec=spec,
            overwrite=args.overwrite,
            force=args.force,
            engine=args.engine,
            workers=args.workers,
            engine_options=engine_options_of(args),
            progress=JobBar() if show else None,
            notice=_no_notice if args.quiet else _print_notice,
        )
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", STOP_SIGNALS[0])
        by = "" if signum == STOP_SIGNALS[0] else f" by {signal.Signals(signum).name}"
        print(
            f"synctalk-audio: interrupted{by}; every finished item is complete and recorded,"
            " the ones in progress were not written; run the same command again to finish"
            " the job",
            file=sys.stderr,
        )
        return exit_status(signum)
    if not args.quiet:
        print(
            f"job: {summary.total} items -> {summary.output}: {len(summary.done)} written,"
            f" {summary.skipped} unchanged (skipped), {len(summary.failed)} failed;"
            f" {summary.audio_s / 3600:.3f} h of audio in {_clock(summary.wall_s)}"
            f" = {summary.audio_hours_per_minute:.3f} h of audio per minute"
            f" ({summary.workers} worker(s) x {summary.threads} encoder thread(s),"
            f" engine {summary.engine})"
        )
    for item, error in summary.failed[:MAX_FAILURES_SHOWN]:
        print(f"synctalk-audio process: failed: {item.input}: {error}", file=sys.stderr)
    if summary.failed:
        more = len(summary.failed) - MAX_FAILURES_SHOWN
        print(
            f"synctalk-audio process: {len(summary.failed)} of {summary.total} items failed"
            + (f" ({more} more not shown)" if more > 0 else "")
            + f"; their errors are in {summary.record}; fix them and run the same command"
            " again (finished items are skipped)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def engine_options_of(args: argparse.Namespace) -> dict[str, Any]:
    """The chosen engine's own options given on the command line.

    An engine class names, in its ``command_options`` attribute, the
    constructor keywords the command offers as options of the same name
    (e.g. ``address`` for ``--address``); those given are passed on.

    Raises
    ------
    ParameterError
        If an option of another engine is given (``--address`` with the
        local engine).
    """
    from ..jobs.engine import ENGINES, engine_class

    names = [option.name for option in engine_class(args.engine).command_options]
    for other in ENGINES:
        for name in (option.name for option in engine_class(other).command_options):
            if name not in names and getattr(args, name, None) is not None:
                flag = "--" + name.replace("_", "-")
                raise ParameterError(
                    f"{flag} is an option of --engine {other}, not of --engine {args.engine}:"
                    f" add --engine {other} or leave out {flag}"
                )
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
