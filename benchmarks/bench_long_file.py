"""Long files (``--heavy``): the command's memory stays flat; the whole file in memory grows.

benchmarks/long_file.py's `write_speech` writes HOURS of varied speech as a
16 kHz WAV; each round runs, in fresh processes, alternating:

- ours: ``python -m synctalk_audio process --no-frames`` (block by block),
  timed by pytest-benchmark;
- the reference: the whole file in memory through the public API,
  ``Pipeline(model).process(path)`` and ``numpy.save`` of its aud_ave.

``ratios``: ``memory_vs_whole_file`` (the reference's peak RSS over ours,
``os.wait4``), ``cpu_vs_whole_file`` (CPU seconds, the steadier time on a
shared machine) and ``vs_whole_file`` (wall). Both write the same aud_ave.

    python -m pytest benchmarks/bench_long_file.py --benchmark-enable --heavy
"""

from __future__ import annotations

import statistics
import sys

import numpy as np
import pytest
from bench_command import Side
from long_file import write_speech
from ratio import interleaved, record

HOURS = 0.15
ROUNDS = 2

WHOLE_FILE = """
import sys
import numpy as np
from synctalk_audio.pipeline import Pipeline
audio, model, out = sys.argv[1:4]
with Pipeline(model) as pipe:
    np.save(out, pipe.process(audio).aud_ave)
"""


@pytest.mark.heavy
@pytest.mark.benchmark(group="long-file")
def test_long_file_vs_whole_file(benchmark, encoder_path, tmp_path):
    audio = str(tmp_path / "long.wav")
    write_speech(audio, HOURS)
    out, whole = tmp_path / "ours", str(tmp_path / "whole.npy")
    ours = Side(
        [sys.executable, "-m", "synctalk_audio", "process", "--audio", audio, "--model"]
        + [encoder_path, "--output", str(out), "--overwrite", "--no-frames", "-q"]
    )
    reference = Side([sys.executable, "-c", WHOLE_FILE, audio, encoder_path, whole])
    interleaved(
        benchmark,
        ours,
        reference,
        rounds=ROUNDS,
        headline=f"long file, {HOURS:g} h without frame files: the command (block by block)"
        " vs the whole file in memory (Pipeline.process)",
        reference_name="Pipeline(model).process(path) in a fresh process",
        ratio_name="vs_whole_file",
        warmup=False,
    )
    if ours.runs and reference.runs:
        record(
            benchmark,
            benchmark.extra_info["headline"],
            {
                "memory_vs_whole_file": reference.peak_mib / ours.peak_mib,
                "cpu_vs_whole_file": statistics.median(r[1] for r in reference.runs)
                / statistics.median(r[1] for r in ours.runs),
            },
            peak_mib=ours.peak_mib,
            reference_peak_mib=reference.peak_mib,
        )
    assert np.array_equal(np.load(out / "aud_ave.npy"), np.load(whole))
