"""A dataset job on two cores (``--heavy``): the default local engine against its alternatives.

benchmarks/jobs.py's seeded clips (2-10 s of speech each, in speaker
directories), each run a fresh ``synctalk-audio process --audio clips/``
command, alternating round by round with its reference:

- ``vs_shell_loop``: the single-file command once per clip in a shell loop,
  on the first LOOP_CLIPS clips (compared by throughput: audio per wall time);
- ``vs_one_worker_one_thread``: ``--workers 1 --threads 1`` (one core);
- ``vs_ray`` (needs Ray): ``--engine ray`` on a Ray started for each run; the
  ratio is Ray's throughput over the local engine's (goal >= 0.75).

Every ratio is a throughput over a throughput, the medians of the rounds.

    python -m pytest benchmarks/bench_jobs.py --benchmark-enable --heavy
"""

from __future__ import annotations

import os

import pytest
import soundfile as sf
from jobs import job, make_clips, shell_loop
from ratio import interleaved, record

CLIPS = 60
LOOP_CLIPS = 10
ROUNDS = 2


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, float, list[str], float]:
    """(folder, its seconds, the loop's files, their seconds)."""
    folder = str(tmp_path_factory.mktemp("jobs") / "clips")
    seconds = make_clips(folder, CLIPS)
    files = sorted(os.path.join(top, n) for top, _, names in os.walk(folder) for n in names)
    files = files[:LOOP_CLIPS]
    return folder, seconds, files, sum(sf.info(f).duration for f in files)


@pytest.mark.heavy
@pytest.mark.benchmark(group="jobs")
@pytest.mark.parametrize("reference", ["shell-loop", "one-worker-one-thread", "ray"])
def test_job_throughput(benchmark, encoder_path, clips, tmp_path, reference):
    folder, seconds, files, loop_seconds = clips
    model = os.path.abspath(encoder_path)
    ours_out, ref_out = str(tmp_path / "ours"), str(tmp_path / "ref")
    ref_seconds = seconds
    if reference == "shell-loop":

        def other() -> float:
            return shell_loop(files, ref_out, model)

        ref_seconds = loop_seconds
        name, label = (
            "vs_shell_loop",
            f"a shell loop of the single-file command ({LOOP_CLIPS} clips)",
        )
    elif reference == "one-worker-one-thread":

        def other() -> float:
            return job(folder, ref_out, model, "--workers", "1", "--threads", "1")

        name, label = (
            "vs_one_worker_one_thread",
            "one worker on one thread (--workers 1 --threads 1)",
        )
    else:
        pytest.importorskip("ray", reason="the Ray engine needs pip install '.[ray]'")

        def other() -> float:
            return job(folder, ref_out, model, "--engine", "ray")

        name, label = "vs_ray", "the Ray engine on a local Ray (--engine ray)"
    interleaved(
        benchmark,
        lambda: job(folder, ours_out, model),
        other,
        rounds=ROUNDS,
        headline=f"job of {CLIPS} clips ({seconds / 60:.1f} min of audio), local engine,"
        f" 2 workers: throughput vs {label}",
        reference_name=label,
        ratio_name=name,
        warmup=False,
    )
    ratios = benchmark.extra_info.get("ratios", {})
    if name in ratios:
        # A wall ratio -> a throughput ratio (the loop's clips are fewer).
        speedup = ratios[name] * seconds / ref_seconds
        if reference == "ray":
            speedup = 1 / speedup  # Ray's throughput over ours: higher is better for Ray
        record(benchmark, benchmark.extra_info["headline"], {name: speedup}, audio_s=seconds)
