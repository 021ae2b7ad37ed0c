"""``synctalk-audio validate``: compare two output directories."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from ..outputs.validate import compare_outputs
from .common import (
    EXIT_FAILED,
    EXIT_OK,
)


def add_parser(sub: Any) -> None:
    from ..modes import feature_files

    p = sub.add_parser(
        "validate",
        help="compare two output directories (exit 1 over tolerance)",
        description="Compare the mode's feature file ("
        + feature_files()
        + ") and every frame file of two output directories: counts, max/mean abs error,"
        " cosine similarity.",
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


def run(args: argparse.Namespace) -> int:
    report = compare_outputs(args.reference, args.candidate)
    worst = max(report.get("features_max_abs", np.inf), report.get("frames_max_abs", 0.0))
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
            row = report["features_worst_row"]
            at_row = "" if row is None else f" (row {row})"
            where = report["frames_worst_file"]
            at_file = "" if where is None else f" ({where})"
            print(
                f"{report['feature_files'][0]} {tuple(report['features_shape'][0])}:"
                f" max abs {report['features_max_abs']:.3g}{at_row},"
                f" mean abs {report['features_mean_abs']:.3g}, min cosine"
                f" {report['features_min_cosine']:.9f}\nframes {report['frame_counts'][0]} vs"
                f" {report['frame_counts'][1]}: max abs {report['frames_max_abs']:.3g}{at_file},"
                f" mean abs {report['frames_mean_abs']:.3g}, min cosine"
                f" {report['frames_min_cosine']:.9f}"
            )
        if invalid:
            more = f" (and {len(invalid) - 1} more files)" if len(invalid) > 1 else ""
            print(f"FAIL: {invalid[0]}{more}: NaN or inf is never valid output")
        elif "problem" not in report:
            kind = "relative to max |reference| " if args.relative else ""
            print(("OK" if ok else "FAIL") + f": tolerance {kind}{args.tolerance:g}")
    return EXIT_OK if ok else EXIT_FAILED
