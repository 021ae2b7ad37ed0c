"""``synctalk-audio export``: a checkpoint to ONNX, checked against PyTorch."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from typing import Any

from ..errors import ParameterError
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
        metavar="PATH",
        help="where to write the model (default: the mode's default model path, with .ort or"
        " .mlpackage for those formats)",
    )
    p.add_argument(
        "--format",
        choices=("onnx", "ort", "coreml"),
        default="onnx",
        help="onnx (default); ort: ONNX Runtime's ORT format for ONNX Runtime Mobile, with its"
        " NAME.required_operators.config for a minimal build, checked against the ONNX model;"
        " coreml: a Core ML ML Program NAME.mlpackage (float32, flexible batch; ave and hubert;"
        " needs coremltools: pip install 'synctalk-audio[coreml]'), whose predictions are"
        " checked on a Mac (docs/PORTING.md)",
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
    if args.format != "onnx" and args.output is None:
        output = os.path.splitext(output)[0] + (".ort" if args.format == "ort" else ".mlpackage")
    if args.format == "coreml":
        from ..export.coreml import export_coreml

        print_report(args, export_coreml(args.mode, args.checkpoint, output))
        return EXIT_OK
    options: dict[str, Any] = {"opset": args.opset}
    if args.tolerance is not None:
        options["tolerance"] = args.tolerance
    if args.format == "ort":
        from ..export.ort import convert_to_ort, ort_check_feeds

        final = os.path.abspath(output)
        if os.path.isdir(final):
            raise ParameterError(
                f"--output {final} is a directory; give a file name like model.ort"
            )
        if not os.path.isdir(os.path.dirname(final)):
            raise ParameterError(
                f"cannot write {final}: directory {os.path.dirname(final)} does not exist"
            )
        staging = tempfile.mkdtemp(prefix=".export-", dir=os.path.dirname(final))
        try:
            onnx_path = os.path.join(staging, "model.onnx")
            report = exporter(args.checkpoint, onnx_path, **options)
            converted = convert_to_ort(onnx_path, final, check_feeds=ort_check_feeds(args.mode))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        print_report(args, f"{report}\n{converted}".replace(onnx_path, "(ONNX, not kept)"))
        return EXIT_OK
    print_report(args, exporter(args.checkpoint, output, **options))
    return EXIT_OK


def print_report(args: argparse.Namespace, report: object) -> None:
    """The report on stdout unless --quiet."""
    if not args.quiet:
        print(report)
