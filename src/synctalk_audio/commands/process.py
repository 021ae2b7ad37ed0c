"""``synctalk-audio process``: one audio file to an output directory."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from .common import (
    EXIT_OK,
    Progress,
    add_encoder_options,
    add_overwrite,
    max_duration_of,
    settings_of,
)


def add_parser(sub: Any) -> None:
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
    add_encoder_options(p)
    p.add_argument(
        "--output",
        "-output",
        default="output",
        metavar="DIR",
        help="output directory; an existing one is replaced only if it is empty or holds a"
        " previous synctalk-audio output (default: %(default)s)",
    )
    add_overwrite(p)
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


def run(args: argparse.Namespace) -> int:
    from ..engines.pipeline import Pipeline
    from ..outputs.directory import atomic_output_dir, check_output_dir

    mode, settings = settings_of(args)
    max_duration = max_duration_of(args)
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
        options=dict(settings.options),
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
            f"{args.audio}: {metadata['input']['duration_s']:.2f} s -> {counts['frames']} frames"
            f" ({steps}) in"
            f" {metadata['timings']['wall_s']:.2f} s -> {os.path.abspath(args.output)}"
        )
    return EXIT_OK
