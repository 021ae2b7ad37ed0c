#!/usr/bin/env python3
"""The benchmark history as a table of ratios per commit, a plot, and the headline table.

Reads the runs saved by ``python -m pytest benchmarks --benchmark-enable
--history`` (pytest-benchmark JSON, one file per run in benchmarks/history/)
and the instruction counts saved by ``tools/count_instructions.py --history``
(benchmarks/history/instructions/). Every suite records in ``extra_info``
the ratios of its side to the reference measured in the same run, each
"higher is better" (benchmarks/ratio.py); those ratios are what is tracked.

- The table (printed): one row per ratio, one column per commit (runs in
  order of their date; a commit's value is the median of its runs), the
  noise, and a flag.
- The noise of a ratio: the largest relative spread, (max - min) / median,
  between repeated runs of one commit on one machine, over every commit
  with at least two runs. Where the history has no repeated run of a ratio,
  ``--default-noise`` (10 %) stands in, marked as assumed. Two or three runs
  see only part of a shared machine's swings, so a fall is flagged only if
  it is also larger than ``--min-noise`` (5 %).
- A flag: the ratio of a commit fell from the previous commit's (same
  machine) by more than its noise. ``--check`` exits 1 when the latest
  commit has one.
- ``--plot PNG``: every ratio against the commits (matplotlib: the ``bench``
  extra), one panel per suite, each run a point, the commit medians joined.
- ``--docs docs/BENCHMARKS.md``: rewrites the text between the markers
  ``<!-- bench-report:begin -->`` and ``<!-- bench-report:end -->`` with the
  headline table: each figure from the latest run that has it, with its
  ratios, the command that measures it, the date and the machine; then the
  measured noise and the latest instruction counts. Nothing outside the
  markers changes; the file is written through a temporary file.

    python tools/bench_report.py                                    # the table
    python tools/bench_report.py --plot benchmarks/history/ratios.png --docs docs/BENCHMARKS.md
    python tools/bench_report.py --check                            # exit 1 on a fall
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HISTORY = os.path.join(ROOT, "benchmarks", "history")
BEGIN = "<!-- bench-report:begin -->"
END = "<!-- bench-report:end -->"
DEFAULT_NOISE = 0.10
MIN_NOISE = 0.05


class ReportError(Exception):
    """A history file or the docs file cannot be used; the message says which and why."""


@dataclass
class Run:
    """One saved benchmark run."""

    path: str
    date: str
    commit: str  # 12 hex digits, "-dirty" when the tree had uncommitted changes
    machine: str
    machine_text: str
    command: str
    heavy: bool
    benchmarks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Series:
    """One ratio of one benchmark across the history."""

    key: str  # "<benchmark fullname> <ratio name>"
    suite: str
    values: dict[str, list[float]] = field(default_factory=dict)  # commit -> one per run
    noise: float | None = None


def load_run(path: str) -> Run:
    """Read one pytest-benchmark JSON file of the history."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise ReportError(f"{path}: not a readable JSON file ({error})") from error
    if not isinstance(data, dict) or "benchmarks" not in data or "machine_info" not in data:
        raise ReportError(f"{path}: not a pytest-benchmark JSON file (no benchmarks, machine_info)")
    machine = data["machine_info"]
    commit_info = data.get("commit_info") or {}
    commit = str(commit_info.get("id") or "unknown")[:12]
    if commit_info.get("dirty"):
        commit += "-dirty"
    name = machine.get("machine_name") or machine.get("node", "unknown")
    flags = ", ".join(machine.get("cpu_flags") or [])
    text = f"{machine.get('cpu_model', 'unknown CPU')}, {machine.get('cpu_count', '?')} cores" + (
        f" ({flags})" if flags else ""
    )
    return Run(
        path=path,
        date=str(data.get("datetime", "")),
        commit=commit,
        machine=str(name),
        machine_text=text,
        command=str(data.get("command", "python -m pytest benchmarks --benchmark-enable")),
        heavy=bool(data.get("heavy", False)),
        benchmarks=list(data["benchmarks"]),
    )


def load_history(folder: str) -> list[Run]:
    """Every run in ``folder`` (its *.json files), oldest first."""
    paths = sorted(glob.glob(os.path.join(folder, "*.json")))
    for path in [p for p in paths if os.path.getsize(p) == 0]:
        # pytest-benchmark writes the file at the end of a run.
        print(f"bench_report: {path} is empty (a run still going?): left out", file=sys.stderr)
    runs = [load_run(p) for p in paths if os.path.getsize(p) > 0]
    return sorted(runs, key=lambda r: r.date)


def load_counts(folder: str) -> list[dict[str, Any]]:
    """The instruction-count records in ``folder``/instructions, oldest first."""
    records = []
    for path in sorted(glob.glob(os.path.join(folder, "instructions", "*.json"))):
        with open(path, encoding="utf-8") as f:
            records.append(json.load(f))
    return sorted(records, key=lambda r: str(r.get("date", "")))


def series_of(runs: list[Run]) -> dict[tuple[str, str], Series]:
    """{(machine, key): Series} of every ratio in the runs."""
    found: dict[tuple[str, str], Series] = {}
    for run in runs:
        for bench in run.benchmarks:
            ratios = (bench.get("extra_info") or {}).get("ratios") or {}
            suite = bench.get("fullname", bench["name"]).split("::")[0]
            for ratio, value in ratios.items():
                key = f"{bench.get('fullname', bench['name'])} {ratio}"
                one = found.setdefault((run.machine, key), Series(key, os.path.basename(suite)))
                one.values.setdefault(run.commit, []).append(float(value))
    return found


def measure_noise(series: Series) -> float | None:
    """Largest (max - min) / median between runs of one commit; None without a repeat."""
    spreads = [
        (max(v) - min(v)) / statistics.median(v)
        for v in series.values.values()
        if len(v) >= 2 and statistics.median(v) > 0
    ]
    return max(spreads) if spreads else None


def commit_order(runs: list[Run], machine: str) -> list[str]:
    """The commits of one machine's runs, in order of their first run."""
    order: list[str] = []
    for run in runs:
        if run.machine == machine and run.commit not in order:
            order.append(run.commit)
    return order


def allowed(series: Series, default_noise: float, min_noise: float) -> float:
    """The fall a ratio may show without a flag: its noise (or the default), at least the floor."""
    return max(series.noise if series.noise is not None else default_noise, min_noise)


def flags(
    series: Series, order: list[str], default_noise: float, min_noise: float = 0.0
) -> dict[str, tuple[float, float]]:
    """{commit: (fall, allowed)} where the commit's median fell from the previous commit's
    median (of those with this ratio) by more than the noise."""
    noise = allowed(series, default_noise, min_noise)
    fallen: dict[str, tuple[float, float]] = {}
    previous: float | None = None
    for commit in order:
        if commit not in series.values:
            continue
        now = statistics.median(series.values[commit])
        if previous is not None and previous > 0:
            fall = (previous - now) / previous
            if fall > noise:
                fallen[commit] = (fall, noise)
        previous = now
    return fallen


def table(runs: list[Run], default_noise: float, min_noise: float = 0.0) -> tuple[str, list[str]]:
    """The markdown table of ratios per commit, and the lines naming every fall."""
    lines: list[str] = []
    falls: list[str] = []
    found = series_of(runs)
    for machine in sorted({m for m, _ in found}):
        order = commit_order(runs, machine)
        lines.append(f"\nmachine: {machine}\n")
        lines.append("| ratio | " + " | ".join(order) + " | noise | fell |")
        lines.append("| --- | " + " | ".join("---" for _ in order) + " | --- | --- |")
        for (m, key), series in sorted(found.items()):
            if m != machine:
                continue
            series.noise = measure_noise(series)
            fallen = flags(series, order, default_noise, min_noise)
            cells = []
            for commit in order:
                values = series.values.get(commit)
                if not values:
                    cells.append("")
                    continue
                mark = " **FELL**" if commit in fallen else ""
                runs_note = f" ({len(values)})" if len(values) > 1 else ""
                cells.append(f"{statistics.median(values):.3f}{runs_note}{mark}")
            noise = (
                f"{series.noise * 100:.1f} %"
                if series.noise is not None
                else f"{default_noise * 100:.0f} % (assumed)"
            )
            if (
                allowed(series, default_noise, min_noise)
                == min_noise
                > (series.noise if series.noise is not None else default_noise)
            ):
                noise += f" (floor {min_noise * 100:g} %)"
            fell = ", ".join(f"{c} (-{f * 100:.1f} %)" for c, (f, _) in fallen.items()) or "-"
            lines.append(f"| {key} | " + " | ".join(cells) + f" | {noise} | {fell} |")
            for commit, (fall, limit) in fallen.items():
                falls.append(
                    f"{machine}: {key} fell by {fall * 100:.1f} % at {commit}"
                    f" (noise {limit * 100:.1f} %)" + (" [latest]" if commit == order[-1] else "")
                )
    return "\n".join(lines), falls


def plot(runs: list[Run], path: str) -> None:
    """Every ratio against the commits, one panel per suite; a PNG at ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ReportError("--plot needs matplotlib: pip install '.[bench]'") from error
    found = series_of(runs)
    suites = sorted({s.suite for s in found.values()})
    if not suites:
        raise ReportError("no ratios in the history to plot")
    fig, axes = plt.subplots(len(suites), 1, figsize=(11, 3.2 * len(suites)), squeeze=False)
    for ax, suite in zip(axes[:, 0], suites, strict=True):
        for (machine, key), series in sorted(found.items()):
            if series.suite != suite:
                continue
            order = commit_order(runs, machine)
            xs = [i for i, c in enumerate(order) if c in series.values]
            medians = [statistics.median(series.values[order[i]]) for i in xs]
            label = key.split("::", 1)[-1]
            (line,) = ax.plot(xs, medians, marker="o", label=label)
            for i in xs:
                points = series.values[order[i]]
                ax.scatter([i] * len(points), points, s=12, color=line.get_color(), alpha=0.5)
            ax.set_xticks(range(len(order)))
            ax.set_xticklabels(order, rotation=20, fontsize=7)
        ax.set_title(suite, fontsize=10)
        ax.set_ylabel("ratio (higher: better)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=90, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.2f} s"


def headline(runs: list[Run], default_noise: float, plot_path: str | None) -> str:
    """The generated part of docs/BENCHMARKS.md."""
    latest: dict[str, tuple[Run, dict[str, Any]]] = {}
    for run in runs:
        for bench in run.benchmarks:
            if (bench.get("extra_info") or {}).get("ratios"):
                latest[bench.get("fullname", bench["name"])] = (run, bench)
    found = series_of(runs)
    lines = [
        BEGIN,
        "",
        "Generated by `python tools/bench_report.py --docs docs/BENCHMARKS.md` from"
        " benchmarks/history/ (do not edit between the markers). Each figure is the"
        " latest run that measured it; *ours* and *reference* are medians of the"
        " same run, alternating round by round; every ratio is higher-is-better"
        " (reference / ours for times). Noise: the largest spread of the ratio between"
        " repeated runs of one commit on one machine.",
        "",
        "| figure | ours | reference | ratios (noise) | command | date | machine |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for fullname, (run, bench) in sorted(latest.items()):
        info = bench["extra_info"]
        ratios = []
        for name, value in info["ratios"].items():
            series = found.get((run.machine, f"{fullname} {name}"))
            noise = measure_noise(series) if series else None
            note = f"±{noise * 100:.1f} %" if noise is not None else "one run"
            ratios.append(f"{name} **{value:.2f}** ({note})")
        test = fullname.split("::", 1)[1] if "::" in fullname else fullname
        suite = fullname.split("::", 1)[0]
        heavy = " --heavy" if info.get("heavy") else ""
        command = f"`python -m pytest '{suite}::{test}' --benchmark-enable{heavy}`"
        ours = fmt_seconds((bench.get("stats") or {}).get("median"))
        reference = fmt_seconds(info.get("reference_median_s"))
        lines.append(
            f"| {info.get('headline', fullname)} | {ours} | {reference} | {'; '.join(ratios)}"
            f" | {command} | {run.date[:16].replace('T', ' ')} UTC, {run.commit}"
            f" | {run.machine_text} |"
        )
    lines.append("")
    if plot_path:
        rel = os.path.relpath(os.path.abspath(plot_path), os.path.join(ROOT, "docs"))
        lines.append(f"The ratios of every run, per commit: [{rel}]({rel}).")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def counts_section(records: list[dict[str, Any]]) -> str:
    """The latest instruction counts per machine kind, as markdown."""
    if not records:
        return ""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest[record["kind"]] = record
    out = []
    for kind, record in sorted(latest.items()):
        out.append(
            f"\nInstruction counts (`python tools/count_instructions.py --history`),"
            f" {kind}, commit {str(record['commit'])[:12]}, {record['date']}:\n"
        )
        out.append("| stage / SIMD level | instructions |")
        out.append("| --- | --- |")
        for key, value in record["counts"].items():
            out.append(f"| {key} | {value:,d} |")
    return "\n".join(out) + "\n"


def update_docs(path: str, generated: str) -> None:
    """Replace the text between the markers in ``path`` (temp file, then rename)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ReportError(
            f"{path}: no '{BEGIN}' ... '{END}' markers; add them where the table goes"
        )
    new = text[:start] + generated + text[end + len(END) :]
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".md")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", default=HISTORY, help="folder of saved runs")
    parser.add_argument("--plot", default=None, help="write the plot here (PNG)")
    parser.add_argument("--docs", default=None, help="rewrite the headline table in this file")
    parser.add_argument(
        "--default-noise",
        type=float,
        default=DEFAULT_NOISE,
        help="noise assumed for a ratio never run twice on one commit (0.10)",
    )
    parser.add_argument(
        "--min-noise",
        type=float,
        default=MIN_NOISE,
        help="a fall smaller than this is never flagged, whatever the measured noise (0.05)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the latest commit fell")
    args = parser.parse_args(argv)
    try:
        runs = load_history(args.history)
        if not runs:
            raise ReportError(
                f"{args.history}: no saved runs; make one with"
                " python -m pytest benchmarks --benchmark-enable --history"
            )
        text, falls = table(runs, args.default_noise, args.min_noise)
        print(text)
        if args.plot:
            plot(runs, args.plot)
            print(f"\nplot: {args.plot}")
        if args.docs:
            generated = headline(runs, args.default_noise, args.plot)
            counts = counts_section(load_counts(args.history))
            if counts:
                generated = generated.replace(END, counts + "\n" + END)
            update_docs(args.docs, generated)
            print(f"headline table: {args.docs}")
    except ReportError as error:
        print(f"bench_report: {error}", file=sys.stderr)
        return 2
    if falls:
        print("\nratios that fell by more than their noise:")
        print("\n".join(f"  {f}" for f in falls))
    latest = [f for f in falls if f.endswith("[latest]")]
    if args.check and latest:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
