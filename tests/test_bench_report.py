"""tools/bench_report.py on synthetic histories; the benchmark suites are collected.

The report's promises: a table of ratios per commit; the noise of a ratio
measured between repeated runs of one commit; a ratio that fell from one
commit to the next by more than that noise is flagged (and fails --check);
the headline table goes between the markers of the docs file and nowhere
else; the plot is a PNG.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import bench_report  # noqa: E402

BENCH = "benchmarks/bench_mel.py::test_mel_vs_librosa[core-1-thread]"


def write_run(folder: Path, commit: str, date: str, ratio: float, name: str = "vs_librosa") -> None:
    """One pytest-benchmark JSON file as benchmarks/conftest.py --history writes it."""
    data = {
        "machine_info": {
            "machine_name": "x86_64-Test-CPU-2c",
            "cpu_model": "Test CPU",
            "cpu_count": 2,
            "cpu_flags": ["sse2", "avx2"],
        },
        "commit_info": {"id": commit * 5, "dirty": False},
        "datetime": date,
        "command": "python -m pytest benchmarks --benchmark-enable --history",
        "heavy": False,
        "benchmarks": [
            {
                "name": "test_mel_vs_librosa[core-1-thread]",
                "fullname": BENCH,
                "stats": {"median": 0.0067},
                "extra_info": {
                    "headline": "mel, core, 1 thread (60 s) vs SyncTalk_2D's librosa function",
                    "ratios": {name: ratio},
                    "reference_median_s": 0.0067 * ratio,
                    "heavy": False,
                },
            }
        ],
    }
    path = folder / f"{date}_{commit}.json"
    path.write_text(json.dumps(data), encoding="utf-8")


def history(tmp_path: Path, later: float) -> Path:
    """Commit aaa run twice (3.0 and 3.3: noise 0.3 / 3.15 = 9.5 %), then bbb once at ``later``."""
    folder = tmp_path / "history"
    folder.mkdir()
    write_run(folder, "aaa", "2026-12-01T10:00:00", 3.0)
    write_run(folder, "aaa", "2026-12-01T10:05:00", 3.3)
    write_run(folder, "bbb", "2026-12-02T10:00:00", later)
    return folder


def report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_report.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_table_has_a_column_per_commit_and_the_measured_noise(tmp_path: Path):
    done = report("--history", str(history(tmp_path, 3.1)))
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if BENCH in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    # ratio, aaa (median of 2 runs), bbb, noise, fell
    assert cells[1] == "3.150 (2)"
    assert cells[2] == "3.100"
    assert cells[3] == "9.5 %"
    assert cells[4] == "-"
    header = next(line for line in done.stdout.splitlines() if line.startswith("| ratio"))
    assert "aaaaaaaaaaaa" in header and "bbbbbbbbbbbb" in header


def test_a_fall_beyond_the_noise_is_flagged_and_fails_check(tmp_path: Path):
    folder = history(tmp_path, 2.7)  # -14.3 % from 3.15, noise 9.5 %
    done = report("--history", str(folder), "--check")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "**FELL**" in done.stdout
    assert "fell by 14.3 % at bbbbbbbbbbbb (noise 9.5 %) [latest]" in done.stdout


def test_a_fall_within_the_noise_passes_check(tmp_path: Path):
    done = report("--history", str(history(tmp_path, 2.9)), "--check")  # -7.9 %
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FELL" not in done.stdout


def test_without_a_repeat_the_noise_is_the_stated_assumption(tmp_path: Path):
    folder = tmp_path / "history"
    folder.mkdir()
    write_run(folder, "aaa", "2026-12-01T10:00:00", 3.0)
    write_run(folder, "bbb", "2026-12-02T10:00:00", 2.8)  # -6.7 %
    done = report("--history", str(folder), "--check", "--default-noise", "0.05")
    assert done.returncode == 1
    assert "5 % (assumed)" in done.stdout


def test_docs_table_goes_between_the_markers_only(tmp_path: Path):
    folder = history(tmp_path, 3.1)
    docs = tmp_path / "BENCHMARKS.md"
    docs.write_text(
        f"# Benchmarks\n\nprose before\n\n{bench_report.BEGIN}\nold table\n{bench_report.END}\n"
        "\nprose after\n",
        encoding="utf-8",
    )
    plot = tmp_path / "plot" / "ratios.png"
    done = report("--history", str(folder), "--docs", str(docs), "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    text = docs.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nprose before\n\n" + bench_report.BEGIN)
    assert text.endswith(bench_report.END + "\n\nprose after\n")
    assert "old table" not in text
    row = next(line for line in text.splitlines() if line.startswith("| mel, core, 1 thread"))
    assert "vs_librosa **3.10** (±9.5 %)" in row
    assert f"`python -m pytest '{BENCH}' --benchmark-enable`" in row
    assert "2026-12-02 10:00 UTC, bbbbbbbbbbbb" in row
    assert "Test CPU, 2 cores (sse2, avx2)" in row
    assert "ratios.png" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_docs_without_markers_is_refused_and_left_alone(tmp_path: Path):
    docs = tmp_path / "BENCHMARKS.md"
    docs.write_text("# Benchmarks\n", encoding="utf-8")
    done = report("--history", str(history(tmp_path, 3.1)), "--docs", str(docs))
    assert done.returncode == 2
    assert "no '<!-- bench-report:begin -->'" in done.stderr
    assert docs.read_text(encoding="utf-8") == "# Benchmarks\n"


def test_a_file_that_is_not_a_benchmark_run_is_named(tmp_path: Path):
    folder = tmp_path / "history"
    folder.mkdir()
    (folder / "broken.json").write_text("{}", encoding="utf-8")
    done = report("--history", str(folder))
    assert done.returncode == 2
    assert "broken.json: not a pytest-benchmark JSON file" in done.stderr


def test_the_repository_docs_have_the_markers():
    text = (ROOT / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert text.count(bench_report.BEGIN) == 1 and text.count(bench_report.END) == 1
    assert text.index(bench_report.BEGIN) < text.index(bench_report.END)


@pytest.mark.slow
def test_every_benchmark_suite_is_collected_and_the_test_command_runs_none():
    suites = sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "--collect-only", "-q", "-p", "no:randomly"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    collected = {line.split("::")[0] for line in done.stdout.splitlines() if "::" in line}
    assert collected == {f"benchmarks/{s}" for s in suites}
    default = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert "benchmarks/" not in default.stdout
    assert "tests/test_bench_report.py" in default.stdout


def test_a_fall_under_the_floor_is_not_flagged_unless_the_floor_is_lowered(tmp_path: Path):
    folder = tmp_path / "history"
    folder.mkdir()
    write_run(folder, "aaa", "2026-12-01T10:00:00", 3.0)
    write_run(folder, "aaa", "2026-12-01T10:05:00", 3.03)  # noise 1.0 %
    write_run(folder, "bbb", "2026-12-02T10:00:00", 2.9)  # -3.8 %
    done = report("--history", str(folder), "--check")
    assert done.returncode == 0, done.stdout
    assert "1.0 % (floor 5 %)" in done.stdout
    lowered = report("--history", str(folder), "--check", "--min-noise", "0.01")
    assert lowered.returncode == 1, lowered.stdout
    assert "fell by 3.8 % at bbbbbbbbbbbb (noise 1.0 %) [latest]" in lowered.stdout
