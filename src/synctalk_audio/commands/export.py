"""``synctalk-audio export``: a checkpoint to ONNX, checked against PyTorch."""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    EXIT_OK,
)


def add_parser(sub: Any) -> None:
    from ..export import exportable_modes
    from ..modes import get_mode

    names = exportable_modes()
    checkpoints = "; ".join(f"{name}: {get_mode(name).checkpoint_help}" for name in names)
    p = sub.add_parser(
        "export",
        help="a mode's checkpoint (SyncTalk_2D audio_visual_encoder.pth, HuBERT directory)"
        " -> ONNX (needs PyTorch)",
        description="Export a mode's checkpoint to ONNX (dynamic batch axis for ave, dynamic"
        " length for hubert), and check it against PyTorch before reporting success."
        " Needs PyTorch (and transformers for hubert): pip install 'synctalk-audio[export]'.",
    )
    p.add_argument(
        "--mode",
        default="ave",
        choices=names,
        help="the feature mode whose model to export (default: %(default)s)",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="PATH",
        help=checkpoints,
    )
    p.add_argument(
        "--output",
        default=None,
        metavar="ONNX",
        help="where to write the model (default: the mode's default model path)",
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="max abs difference to PyTorch allowed (default: the exporter's, 1e-5 for ave,"
        " 1e-4 for hubert)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")


def run(args: argparse.Namespace) -> int:
    from ..export import exporter_of
    from ..modes import get_mode

    exporter = exporter_of(args.mode)
    output = get_mode(args.mode).default_model if args.output is None else args.output
    options: dict[str, Any] = {"opset": args.opset}
    if args.tolerance is not None:
        options["tolerance"] = args.tolerance
    report = exporter(args.checkpoint, output, **options)
    if not args.quiet:
        print(report)
    return EXIT_OK
