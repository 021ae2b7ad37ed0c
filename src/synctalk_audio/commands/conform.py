"""``synctalk-audio conform``: a port's stage dumps against reference vectors."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "conform",
        help="check a port's stage dumps against `vectors` output (exit 1 at the first departure)",
        description="Compare a port's dumps (.npy files named as the reference's, or"
        " <stage>.npy; any subset of the stages) stage by stage with a directory written by"
        " `synctalk-audio vectors`, each stage held to the tolerance its index.json gives."
        " Prints a table (stage, shape, max abs error, tolerance, verdict) and names the first"
        " stage that departs. Exit 0: every dumped stage passes; 1: one fails; 2: the"
        " directories cannot be compared.",
    )
    p.add_argument("reference", help="the reference vectors directory (synctalk-audio vectors)")
    p.add_argument("candidate", help="the directory of the port's .npy dumps")
    p.add_argument(
        "--tier",
        choices=("parity", "float32"),
        default="parity",
        help="parity: the float64 reference's tolerances (default); float32: the budget of a"
        " float32 (vDSP-style) front end where the index gives one (docs/PORTING.md)",
    )
    p.add_argument(
        "--stage",
        action="append",
        default=None,
        metavar="NAME",
        help="compare only this stage (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")


def run(args: argparse.Namespace) -> int:
    from ..porting.conform import ConformError, conform

    try:
        result = conform(args.reference, args.candidate, tier=args.tier, stages=args.stage)
    except ConformError as exc:
        print(f"synctalk-audio conform: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(f"mode {result.mode}: {args.candidate} against {args.reference}")
        print(result.table())
    return EXIT_OK if result.passed else EXIT_FAILED
