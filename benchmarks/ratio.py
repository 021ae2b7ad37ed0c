"""Interleaved timing of the project's code and its reference, recorded as in-run ratios.

`interleaved` hands the project's function to pytest-benchmark and times the
reference in the benchmark's per-round ``setup`` (which pytest-benchmark does
not time), so the two alternate round by round and see the same machine.
The medians of both sides and their ratio go to ``extra_info``, which
``--benchmark-json`` and ``--history`` save and tools/bench_report.py reads:

- ``extra_info["ratios"]``: {name: value}; every ratio is "higher is better"
  for the project (a reference time over ours, or a share that should grow);
- ``extra_info["headline"]``: the figure's label in docs/BENCHMARKS.md;
- ``extra_info["reference"]``, ``extra_info["reference_median_s"]``,
  ``extra_info["reference_times_s"]``: the reference side.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def record(benchmark: Any, headline: str, ratios: dict[str, float], **info: object) -> None:
    """Store the figure's label, its ratios and any further facts in ``extra_info``."""
    benchmark.extra_info["headline"] = headline
    benchmark.extra_info.setdefault("ratios", {}).update(
        {name: float(value) for name, value in ratios.items()}
    )
    benchmark.extra_info.update(info)


def median_of(benchmark: Any) -> float | None:
    """The median seconds pytest-benchmark measured (None when benchmarks are disabled)."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    return float(stats.stats.median)


def interleaved(
    benchmark: Any,
    ours: Callable[[], Any],
    reference: Callable[[], Any],
    *,
    rounds: int,
    headline: str,
    reference_name: str,
    ratio_name: str = "speedup",
    warmup: bool = True,
) -> Any:
    """Time ``ours`` with pytest-benchmark and ``reference`` before each of its rounds.

    Parameters
    ----------
    benchmark : pytest_benchmark.fixture.BenchmarkFixture
        The test's ``benchmark`` fixture.
    ours, reference : callable
        The two sides, called without arguments.
    rounds : int
        Rounds of each side (``ours`` and ``reference`` alternate).
    headline : str
        The figure's label (docs/BENCHMARKS.md's headline table).
    reference_name : str
        What the reference is.
    ratio_name : str
        The key of ``reference median / ours median`` in ``extra_info["ratios"]``.
    warmup : bool
        Call each side once, untimed, first (first-call costs: imports, caches).

    Returns
    -------
    object
        What ``ours`` returned in its last round.
    """
    if warmup:
        reference()
        ours()
    times: list[float] = []

    def setup() -> None:
        start = time.perf_counter()
        reference()
        times.append(time.perf_counter() - start)

    result = benchmark.pedantic(ours, setup=setup, rounds=rounds, iterations=1)
    mine = median_of(benchmark)
    if mine is not None and times:
        ref = statistics.median(times)
        record(
            benchmark,
            headline,
            {ratio_name: ref / mine},
            reference=reference_name,
            reference_median_s=ref,
            reference_times_s=times,
        )
    return result


# Starts the command from a small process: Linux keeps in a child's ru_maxrss
# the resident size of the process it was forked from, before its exec, so a
# command forked straight from a large pytest process (PyTorch, models
# loaded) would report that process's size as its own peak.
_TRAMPOLINE = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump([os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime,
               usage.ru_maxrss], f)
"""


def run_child(argv: list[str], cwd: str | None = None) -> tuple[float, float, float]:
    """Run a command to its end: wall seconds, CPU seconds (user + system), peak RSS in MiB.

    The CPU time and peak RSS are the command's own (``os.wait4`` in a small
    Python process that forks it, see ``_TRAMPOLINE``). Raises RuntimeError
    with the command's stderr if it fails.
    """
    import json
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        facts = os.path.join(work, "usage.json")
        with open(os.path.join(work, "stderr"), "w+b") as err:
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-S", "-c", _TRAMPOLINE, facts, *argv],
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=cwd,
            )
            wall = time.perf_counter() - start
            err.seek(0)
            message = err.read().decode(errors="replace")
        if done.returncode != 0 or not os.path.exists(facts):
            raise RuntimeError(
                f"{' '.join(argv)}: no usage recorded ({done.returncode}):\n{message}"
            )
        with open(facts, encoding="utf-8") as f:
            status, cpu, maxrss = json.load(f)
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({status}):\n{message}")
    return wall, cpu, maxrss / 1024  # Linux: KiB
