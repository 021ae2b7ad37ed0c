#!/usr/bin/env python3
"""Instruction counts of the C++ core's stages, checked against a stored baseline.

Seconds on a shared machine move by 2-3x within minutes; the number of
instructions a deterministic program executes does not. This tool builds
tools/count_stages.cpp against cpp/ (CMake, Release), runs each stage on its
fixed 10 s input under ``valgrind --tool=callgrind --instr-atstart=no`` (only
the stage itself is counted, between the program's CALLGRIND_START and
CALLGRIND_STOP requests) at the scalar level and at the best SIMD level
valgrind runs (x86-64: avx2; valgrind does not run AVX-512; aarch64: neon),
(for ``mel`` and ``fbank``, the stages with SIMD lanes; the others have one
code path, counted once), and compares each count with the baseline of this
machine kind.

Stages: ``mel`` and ``fbank`` (the whole computation, one thread),
``mel_framing`` (pre-emphasis, centring and padding into 800-sample frames),
``mel_window`` (the Hann window on those frames), ``fbank_framing`` (frame
copy, DC removal, pre-emphasis) and ``fbank_window`` (the povey window).

A machine kind is what changes the counts of the same source: the
architecture, the SIMD level counted, the compiler and its version, and the C
library (libm's log and log10 are counted too). Counts are per machine kind:
on another kind there is no baseline, which the check says and treats as a
failure (exit 3) until one is recorded with ``--record-baseline``.

    tools/count_instructions.py                      # check (exit 1: regression)
    tools/count_instructions.py --repeat 2           # also require equal counts twice
    tools/count_instructions.py --history            # also save the counts in benchmarks/history/
    tools/count_instructions.py --record-baseline    # write this kind's baseline

Exit status: 0 all within the tolerance (``--tolerance``, 2 %), 1 a stage
executes more instructions than that over its baseline (or repeated counts
differ), 2 usage or build error, 3 no baseline for this machine kind.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "tools", "count_stages.cpp")
BASELINES = os.path.join(ROOT, "benchmarks", "baselines")
HISTORY = os.path.join(ROOT, "benchmarks", "history", "instructions")
STAGES = ["mel", "mel_framing", "mel_window", "fbank", "fbank_framing", "fbank_window"]
# Stages with SIMD lanes, counted at each level; framing and windowing have
# one (scalar) code path, counted once.
LANE_STAGES = {"mel", "fbank"}
TOLERANCE = 2.0  # percent


class Failure(Exception):
    """A build or run error, reported in one line (exit 2)."""


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise Failure(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def build(build_dir: str) -> str:
    """Configure and build count_stages with the core (Release); return the binary."""
    project = os.path.join(build_dir, "project")
    os.makedirs(project, exist_ok=True)
    with open(os.path.join(project, "CMakeLists.txt"), "w", encoding="utf-8") as f:
        f.write(
            "cmake_minimum_required(VERSION 3.18)\n"
            "project(count_stages LANGUAGES CXX)\n"
            f'add_subdirectory("{os.path.join(ROOT, "cpp")}" core)\n'
            f'add_executable(count_stages "{DRIVER}")\n'
            "target_link_libraries(count_stages PRIVATE synctalk_core)\n"
        )
    out = os.path.join(build_dir, "out")
    run(["cmake", "-S", project, "-B", out, "-DCMAKE_BUILD_TYPE=Release"])
    run(["cmake", "--build", out, "-j", os.environ.get("JOBS", "2")])
    return os.path.join(out, "count_stages")


def compiler(build_dir: str) -> str:
    """The C++ compiler's id and version, as CMake found them (e.g. GNU-12.2.0)."""
    cache = os.path.join(build_dir, "out", "CMakeFiles")
    for top, _, names in os.walk(cache):
        if "CMakeCXXCompiler.cmake" in names:
            with open(os.path.join(top, "CMakeCXXCompiler.cmake"), encoding="utf-8") as f:
                text = f.read()
            ident = re.search(r'set\(CMAKE_CXX_COMPILER_ID "([^"]*)"\)', text)
            version = re.search(r'set\(CMAKE_CXX_COMPILER_VERSION "([^"]*)"\)', text)
            if ident and version:
                return f"{ident.group(1)}-{version.group(1)}"
    return "unknown-compiler"


def best_level() -> str:
    """The SIMD level counted beside scalar: the best one valgrind executes here."""
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return "neon"
    if machine in ("x86_64", "amd64"):
        return "avx2"  # valgrind 3.x does not execute AVX-512
    return "scalar"


def machine_kind(level: str, compiler_id: str) -> str:
    libc, version = platform.libc_ver()
    return f"{platform.machine()}-{level}-{compiler_id}-{libc or 'libc'}{version}"


def count(binary: str, stage: str, level: str, work: str) -> tuple[int, str]:
    """Instructions of one stage at one level, and the driver's line (stage, level, checksum)."""
    out = os.path.join(work, f"callgrind.{stage}.{level}")
    done = run(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            binary,
            stage,
            level,
        ]
    )
    line = done.stdout.strip()
    used = re.search(r"simd=(\S+)", line)
    if not used or used.group(1) != level:
        raise Failure(f"{stage}: asked for SIMD level {level}, the driver ran {line!r}")
    with open(out, encoding="utf-8") as f:
        # "totals:" is the instrumented part ("summary:" stays 0 with --instr-atstart=no).
        totals = re.search(r"^totals:\s*(\d+)", f.read(), re.MULTILINE)
    if not totals or int(totals.group(1)) == 0:
        raise Failure(f"{stage} {level}: no instruction count in {out}")
    return int(totals.group(1)), line


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def write_json(path: str, data: dict[str, object]) -> None:
    """Write through a temporary file and rename, so no half-written file is left."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def compare(
    counts: dict[str, int], baseline: dict[str, int], tolerance: float
) -> tuple[list[str], bool]:
    """Lines of the comparison and whether any count rose by more than ``tolerance`` %."""
    lines, failed = [], False
    for key in sorted(set(counts) | set(baseline)):
        if key not in baseline:
            lines.append(f"  {key:28s} {counts[key]:>14,d}   (not in the baseline)")
            continue
        if key not in counts:
            lines.append(f"  {key:28s} {'-':>14s}   baseline {baseline[key]:,d}: NOT COUNTED")
            failed = True
            continue
        change = (counts[key] - baseline[key]) / baseline[key] * 100
        verdict = "ok"
        if change > tolerance:
            verdict, failed = f"REGRESSION (> +{tolerance:g} %)", True
        elif change < -tolerance:
            verdict = f"fewer (< -{tolerance:g} %): record a new baseline to keep the gain"
        lines.append(
            f"  {key:28s} {counts[key]:>14,d}   baseline {baseline[key]:>14,d}"
            f"   {change:+7.3f} %  {verdict}"
        )
    return lines, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Exit: 0 ok, 1 regression, 2 error, 3 no baseline for this machine kind.",
    )
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="percent (2)")
    parser.add_argument("--stages", nargs="+", default=STAGES, choices=STAGES)
    parser.add_argument("--repeat", type=int, default=1, help="count N times; all must agree")
    parser.add_argument("--history", action="store_true", help="save the counts in the history")
    parser.add_argument(
        "--record-baseline", action="store_true", help="write this machine kind's baseline"
    )
    parser.add_argument("--baselines", default=BASELINES, help="baseline folder")
    parser.add_argument("--build-dir", default=None, help="keep the build here")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    for tool in ("valgrind", "cmake"):
        if shutil.which(tool) is None:
            print(f"count_instructions: {tool} not found; install it (Debian: apt-get install"
                  f" {tool})", file=sys.stderr)  # fmt: skip
            return 2
    build_dir = args.build_dir or tempfile.mkdtemp(prefix="synctalk-count-")
    try:
        binary = build(build_dir)
        level = best_level()
        levels = ["scalar"] if level == "scalar" else ["scalar", level]
        kind = machine_kind(level, compiler(build_dir))
        rounds: list[dict[str, int]] = []
        checksums: dict[str, str] = {}
        with tempfile.TemporaryDirectory() as work:
            for _ in range(args.repeat):
                counts: dict[str, int] = {}
                for stage in args.stages:
                    for lvl in levels if stage in LANE_STAGES else ["scalar"]:
                        counts[f"{stage}/{lvl}"], checksums[f"{stage}/{lvl}"] = count(
                            binary, stage, lvl, work
                        )
                rounds.append(counts)
    except Failure as error:
        print(f"count_instructions: {error}", file=sys.stderr)
        return 2
    finally:
        if args.build_dir is None:
            shutil.rmtree(build_dir, ignore_errors=True)
    counts = rounds[0]
    valgrind = run(["valgrind", "--version"]).stdout.strip()
    print(f"machine kind: {kind} ({valgrind}; SIMD levels counted: {', '.join(levels)})")
    status = 0
    if any(r != counts for r in rounds[1:]):
        print(f"COUNTS DIFFER between {args.repeat} runs of the same binary:")
        for key in counts:
            print(f"  {key:28s} " + "  ".join(f"{r[key]:,d}" for r in rounds))
        status = 1
    elif args.repeat > 1:
        print(f"{args.repeat} runs: every count equal")
    record = {
        "kind": kind,
        "levels": levels,
        "valgrind": valgrind,
        "counts": counts,
        "checksums": checksums,
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "input": "tools/count_stages.cpp FixedInput(): 10 s at 16 kHz",
        "tolerance_percent": args.tolerance,
        "repeats": [r for r in rounds] if args.repeat > 1 else None,
    }
    if args.history:
        stamp = record["date"].replace("-", "").replace(":", "").replace("+0000", "Z")  # type: ignore[union-attr]
        commit = str(record["commit"])[:12] + ("-dirty" if record["dirty"] else "")
        path = os.path.join(HISTORY, f"{stamp}_{commit}_{kind}.json")
        write_json(path, record)
        print(f"history: {os.path.relpath(path, ROOT)}")
    baseline_path = os.path.join(args.baselines, f"instructions_{kind}.json")
    if args.record_baseline:
        write_json(baseline_path, record)
        print(f"baseline recorded: {os.path.relpath(baseline_path, ROOT)}")
        for key, value in counts.items():
            print(f"  {key:28s} {value:>14,d}")
        return status
    if not os.path.exists(baseline_path):
        print(f"NO BASELINE for machine kind {kind}: nothing to compare with (looked for"
              f" {os.path.relpath(baseline_path, ROOT)}). Counts:")  # fmt: skip
        for key, value in counts.items():
            print(f"  {key:28s} {value:>14,d}")
        print("Record one with: tools/count_instructions.py --record-baseline")
        return 3
    with open(baseline_path, encoding="utf-8") as f:
        baseline = json.load(f)
    asked = {k: v for k, v in baseline["counts"].items() if k.split("/")[0] in args.stages}
    lines, failed = compare(counts, asked, args.tolerance)
    print(f"against {os.path.relpath(baseline_path, ROOT)} (commit {baseline['commit'][:12]},"
          f" {baseline['date']}), tolerance +{args.tolerance:g} %:")  # fmt: skip
    print("\n".join(lines))
    if failed:
        print("instruction counts: REGRESSION")
        return 1
    print("instruction counts: ok")
    return status


if __name__ == "__main__":
    sys.exit(main())
