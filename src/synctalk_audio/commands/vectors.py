"""``synctalk-audio vectors``: every stage of a mode's reference path, for a port."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import EXIT_OK, EXIT_USAGE


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "vectors",
        help="write every stage of a mode's reference path as .npy + index.json (for ports)",
        description="Run a mode's path as upstream computes it (librosa, NumPy float64, ONNX"
        " Runtime; not this package's C++ core) on one audio file and write each stage as"
        " NN_stage.npy, with index.json naming the stages in order, their shapes, dtypes, the"
        " formula or upstream line each implements and the tolerance a port must meet there."
        " Check a port's dumps against it with `synctalk-audio conform`. Needs librosa and"
        " scipy: pip install 'synctalk-audio[port]'.",
    )
    p.add_argument("--mode", default="ave", choices=("ave", "hubert", "wenet"))
    p.add_argument(
        "--model",
        required=True,
        metavar="MODEL",
        help="the mode's encoder as ONNX Runtime loads it (.onnx or .ort)",
    )
    p.add_argument("--audio", required=True, metavar="FILE", help="the audio file")
    p.add_argument("--output", required=True, metavar="DIR", help="the directory to write")
    p.add_argument(
        "--fps", type=float, default=25.0, help="ave: video frame rate (default: %(default)g)"
    )
    p.add_argument(
        "--half-window",
        type=int,
        default=8,
        help="rows each side of a video frame's U-Net input (default: %(default)s)",
    )
    p.add_argument(
        "--pad-mode",
        choices=("constant", "reflect"),
        default="constant",
        help="ave: the STFT's centring pad (default: %(default)s, librosa >= 0.10)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")


def run(args: argparse.Namespace) -> int:
    from ..porting.reference import MissingDependencyError, write_vectors

    settings: dict[str, Any] = {"half_window": args.half_window}
    if args.mode == "ave":
        settings.update(fps=args.fps, pad_mode=args.pad_mode)
    try:
        index = write_vectors(args.output, args.mode, args.audio, args.model, settings=settings)
    except MissingDependencyError as exc:
        print(f"synctalk-audio vectors: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.quiet:
        print(f"wrote {len(index['stages'])} stages of mode {args.mode} to {args.output}:")
        for entry in index["stages"]:
            shape = "x".join(str(n) for n in entry["shape"]) or "scalar"
            tol = entry["tolerance"]
            f32 = f", float32 {tol['float32']:.3g}" if "float32" in tol else ""
            print(
                f"  {entry['file']:<28} {shape:<16} {entry['dtype']:<8} tol {tol['abs']:.3g}{f32}"
            )
    return EXIT_OK
