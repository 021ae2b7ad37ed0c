"""Throughput of the Ray engine on this machine, against one worker in one process.

Makes ``--clips`` speech clips of 2-10 s itself (the test speech tiled, with
a seeded length and gain per clip, 16 kHz WAV), then processes all of them,
alternating, ``--repeats`` times each:

- one worker:  one `ClipWorker` (one encoder session on one thread) called
  in this process for every clip, one after another: the throughput of one
  core;
- ray:         `RayEngine` (a local Ray started for the run, ``--workers``
  actors of one CPU, one `ClipWorker` on one thread each).

`ClipWorker` is a stand-in for the job layer's per-item worker: the
single-file run's work (``Pipeline.process``, then aud_ave.npy, the frame
files and metadata.json written into an atomic output directory). The table
gives wall time (for ray including starting and stopping Ray and its
actors), the rate in hours of audio per minute of wall time, and that rate
per CPU used. The "steady" column is the ray rate from its first result to
its last, without the start-up. Every output directory of the ray runs is
compared byte for byte with the one-worker run's (metadata.json: all but
its timings).

    python models/make_test_encoder.py
    python benchmarks/ray_engine.py --model models/audio_encoder.onnx [--clips 100] \
        [--workers 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(ROOT, "tests", "data", "speech_16k_s16_mono.wav")
RATE = 16000


def make_clips(folder: str, count: int, seed: int = 0) -> list[tuple[str, float]]:
    """``count`` WAV clips of 2-10 s in ``folder``: (path, seconds) each."""
    speech, rate = sf.read(SPEECH, dtype="float32")
    assert rate == RATE
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(count):
        seconds = float(rng.uniform(2.0, 10.0))
        n = int(seconds * RATE)
        start = int(rng.integers(0, len(speech)))
        tiled = np.resize(np.roll(speech, -start), n) * float(rng.uniform(0.3, 1.0))
        path = os.path.join(folder, f"clip{i:05d}.wav")
        sf.write(path, tiled, RATE, subtype="PCM_16")
        clips.append((path, n / RATE))
    return clips


@dataclass(frozen=True)
class ClipWorker:
    """Builds the per-item work: one pipeline (encoder session) per process."""

    model: str
    out_dir: str
    threads: int = 1

    def __call__(self) -> Any:
        from synctalk_audio.engines.pipeline import Pipeline
        from synctalk_audio.outputs.directory import atomic_output_dir
        from synctalk_audio.outputs.files import write_features, write_metadata

        pipeline = Pipeline(self.model, threads=self.threads)

        def work(item: tuple[str, float]) -> tuple[str, float]:
            path, seconds = item
            features = pipeline.process(path)
            name = os.path.splitext(os.path.basename(path))[0]
            with atomic_output_dir(os.path.join(self.out_dir, name)) as staging:
                write_features(staging, features)
                write_metadata(staging, features.metadata)
            return name, seconds

        return work


def one_worker(items: list[tuple[str, float]], model: str, out: str) -> tuple[float, float]:
    """Wall seconds of one worker over every item in this process (and the same as steady)."""
    start = time.perf_counter()
    work = ClipWorker(model, out)()
    for item in items:
        work(item)
    wall = time.perf_counter() - start
    return wall, wall


def ray_engine(
    items: list[tuple[str, float]], model: str, out: str, workers: int
) -> tuple[float, float]:
    """Wall seconds of the Ray engine (Ray start included) and first-to-last-result seconds."""
    from synctalk_audio.jobs.ray_engine import RayEngine

    times: list[float] = []
    start = time.perf_counter()
    RayEngine(workers=workers).run(
        items, ClipWorker(model, out), lambda i, r: times.append(time.perf_counter())
    )
    wall = time.perf_counter() - start
    # Steady rate: the items after the first, over the time since the first.
    steady = (times[-1] - times[0]) * len(times) / max(1, len(times) - 1)
    return wall, steady


def same_outputs(a: str, b: str) -> bool:
    """Whether two trees hold the same files with the same bytes (metadata.json: but timings)."""
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    files = [f for f in cmp.common_files if f != "metadata.json"]
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    if mismatch or errors:
        return False
    if "metadata.json" in cmp.common_files:
        meta = []
        for folder in (a, b):
            with open(os.path.join(folder, "metadata.json"), encoding="utf-8") as f:
                meta.append({k: v for k, v in json.load(f).items() if k != "timings"})
        if meta[0] != meta[1]:
            return False
    return all(same_outputs(os.path.join(a, d), os.path.join(b, d)) for d in cmp.common_dirs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the AVE encoder (.onnx)")
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="Ray actors")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="ray-bench-")
    try:
        os.mkdir(os.path.join(root, "in"))
        clips = make_clips(os.path.join(root, "in"), args.clips)
        hours = sum(s for _, s in clips) / 3600
        print(f"{len(clips)} clips, {hours * 60:.1f} min of audio, {os.cpu_count()} CPUs")
        runs: dict[str, list[tuple[float, float]]] = {"one worker": [], "ray": []}
        reference = os.path.join(root, "ref")
        for r in range(args.repeats):
            for name in runs:
                out = os.path.join(root, f"{name.replace(' ', '-')}-{r}")
                os.mkdir(out)
                if name == "one worker":
                    runs[name].append(one_worker(clips, args.model, out))
                else:
                    runs[name].append(ray_engine(clips, args.model, out, args.workers))
                if not os.path.isdir(reference):
                    os.rename(out, reference)
                else:
                    if not same_outputs(reference, out):
                        print(f"{name}: outputs differ from the first run's", file=sys.stderr)
                        return 1
                    shutil.rmtree(out)
        cpus = {"one worker": 1, "ray": args.workers}
        print()
        print("| engine | CPUs | wall (median) | audio h / min | per CPU | steady, per CPU |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, results in runs.items():
            wall = statistics.median(w for w, _ in results)
            steady = statistics.median(s for _, s in results)
            rate, steady_rate = hours / (wall / 60), hours / (steady / 60)
            print(
                f"| {name} | {cpus[name]} | {wall:.1f} s | {rate:.3f} | {rate / cpus[name]:.3f}"
                f" | {steady_rate / cpus[name]:.3f} |"
            )
        print("\nall outputs byte-identical to the first run's (metadata.json: but timings)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
