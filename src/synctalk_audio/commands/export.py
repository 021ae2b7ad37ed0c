"""``synctalk-audio export``: a checkpoint to ONNX, checked against PyTorch."""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    EXIT_OK,
)


def add_parser(sub: Any) -> None:
    from ..modes.ave import DEFAULT_MODEL as AVE_DEFAULT_MODEL

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


def run(args: argparse.Namespace) -> int:
    from ..export.ave import export_onnx

    report = export_onnx(args.checkpoint, args.output, opset=args.opset, tolerance=args.tolerance)
    if not args.quiet:
        print(report)
    return EXIT_OK
