"""A dataset job: the local engine on two cores vs one worker vs a shell loop; kill and resume.

The script makes its own dataset: ``--clips`` clips (1,000 by default) of 2 to
10 s of speech, cut at random offsets from the bundled test speech (every
speech file of tests/data at 16 kHz, concatenated and tiled), each with a
random gain, written as 16-bit WAV in a tree of 10 speaker directories
(seeded: the same clips every time, about 1.7 hours for 1,000).

Then, each a fresh ``synctalk-audio process`` command (imports included) on
the whole tree, alternating, ``--repeats`` times:

- ``local 2w``: the local engine's default on this machine (a worker per CPU,
  one encoder thread each);
- ``local 1w``: one worker (in the command's process) with the default
  threads (one per CPU);
- ``local 1w 1t``: one worker, one encoder thread (one core);
- ``loop``: a shell loop running the single-file command once per clip, on
  the first ``--loop-clips`` clips (compared by throughput: audio hours per
  minute);
- ``ray`` (with ``--engine ray``, needs ``pip install '.[ray]'``): the same
  job on the Ray engine, a Ray started on this machine for each run (its
  start and stop included in the wall time), one one-CPU actor per CPU. Its
  outputs are checked byte for byte against the local engine's
  (metadata.json: all but its timings), and its throughput is compared with
  the local engine's (goal: within 25%).

For each job the table also gives the "steady" rate: from the job record's
per-item times, the audio of the items after the first over the time from
the first item's end to the last's, i.e. without starting the workers (or
Ray and its actors) and the model loads. Each run also prints the mean time a
worker spent on one item (the record's per-item wall time): the machine's
speed drifts by tens of percent within minutes, and this shows whether a slow
run was slow in its workers (the machine) or between items (the engine).

Last, kill and resume: the job is started, killed with SIGKILL once the
record shows half the clips finished, and run again; the script checks that
every output finished before the kill is left untouched (no item redone) and
that the rerun writes exactly the rest.

    python models/make_test_encoder.py
    python benchmarks/jobs.py --model models/audio_encoder.onnx --clips 1000 --loop-clips 50 \
        [--engine ray]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

from synctalk_audio import load_audio
from synctalk_audio.jobs.plan import RECORD_NAME

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SPEECH = [
    "speech_16k_s16_mono.wav",
    "speech_16k.flac",
    "speech_44k1_stereo_s24.wav",
    "speech_48k_float32.wav",
    "speech_22k05_stereo_extensible_chunks.wav",
    "speech_24k.mp3",
    "speech_16k_s16_loud_edges.wav",
]


def make_clips(folder: str, count: int, seed: int = 0) -> float:
    """Write ``count`` clips of 2-10 s under ``folder``; return their total seconds."""
    source = np.concatenate([load_audio(os.path.join(ROOT, "tests", "data", n)) for n in SPEECH])
    source = np.tile(source, 8)  # ~90 s: a 10 s cut starts anywhere
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(count):
        length = int(rng.uniform(2.0, 10.0) * 16000)
        start = int(rng.integers(0, source.size - length))
        clip = source[start : start + length] * rng.uniform(0.3, 1.0)
        speaker = os.path.join(folder, f"spk{i % 10:02d}")
        os.makedirs(speaker, exist_ok=True)
        sf.write(os.path.join(speaker, f"clip{i:04d}.wav"), clip, 16000, subtype="PCM_16")
        total += length
    return total / 16000


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "synctalk_audio", "process", *args]


def timed(argv: list[str], **kwargs: object) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {shlex.join(argv)}\n{done.stderr}")
    return wall


def job(clips: str, out: str, model: str, *extra: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    os.sync()  # the previous run's files written back before this one is timed
    return timed(command("--audio", clips, "--model", model, "--output", out, "-q", *extra))


def steady_rate(out: str) -> float:
    """Hours of audio per minute from the first item's end to the last's (job record times)."""
    with open(os.path.join(out, RECORD_NAME), encoding="utf-8") as f:
        entries = [json.loads(line) for line in f]
    done = sorted(
        (e["timings"]["finished"], e["duration_s"]) for e in entries if e["status"] == "done"
    )
    span = done[-1][0] - done[0][0]
    audio = sum(seconds for _, seconds in done[1:])
    return (audio / 3600) / (span / 60) if span > 0 else float("nan")


def work_per_item(out: str) -> float:
    """Mean seconds a worker spent on one item (job record), start-up and dispatch left out."""
    with open(os.path.join(out, RECORD_NAME), encoding="utf-8") as f:
        entries = [json.loads(line) for line in f]
    return float(np.mean([e["timings"]["wall_s"] for e in entries if e["status"] == "done"]))


def same_outputs(a: str, b: str) -> bool:
    """Whether two job outputs hold the same files, byte for byte (metadata.json: but timings)."""
    cmp = filecmp.dircmp(a, b, ignore=[RECORD_NAME])
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


def shell_loop(files: list[str], out: str, model: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    script = "\n".join(
        shlex.join(
            command(
                "--audio", f, "--model", model, "--output", os.path.join(out, f"c{i:04d}"), "-q"
            )
        )  # fmt: skip
        for i, f in enumerate(files)
    )
    return timed(["bash", "-e", "-c", script])


def done_count(record: str) -> int:
    try:
        with open(record, encoding="utf-8") as f:
            return sum('"status": "done"' in line for line in f)
    except FileNotFoundError:
        return 0


def kill_and_resume(clips: str, out: str, model: str, count: int) -> dict[str, object]:
    shutil.rmtree(out, ignore_errors=True)
    argv = command("--audio", clips, "--model", model, "--output", out, "-q")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while done_count(os.path.join(out, RECORD_NAME)) < count // 2:
        if proc.poll() is not None:
            raise SystemExit(
                f"the job ended before half: {proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)  # the workers follow their driver (SIGTERM on its death) and clean up
    before = {}
    for top, _, names in os.walk(out):
        if "metadata.json" in names:
            before[top] = os.stat(os.path.join(top, "metadata.json")).st_mtime_ns
    leftovers = [n for top, dirs, _ in os.walk(out) for n in dirs if ".tmp-" in n]
    wall = timed(argv)
    after = {}
    for top, _, names in os.walk(out):
        if "metadata.json" in names:
            after[top] = os.stat(os.path.join(top, "metadata.json")).st_mtime_ns
    redone = sum(after.get(k) != v for k, v in before.items())
    with open(os.path.join(out, RECORD_NAME), encoding="utf-8") as f:
        statuses = [json.loads(line)["status"] for line in f]
    return {
        "finished_before_kill": len(before),
        "staging_left_after_kill": len(leftovers),
        "redone_by_rerun": redone,
        "written_by_rerun": len(after) - len(before),
        "complete_after_rerun": len(after),
        "record_done": statuses.count("done"),
        "rerun_wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "audio_encoder.onnx"))
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--loop-clips", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--engine", action="append", default=[], choices=["ray"],
                        help="also run this engine (ray: needs pip install '.[ray]')")  # fmt: skip
    parser.add_argument("--runs", default="2w,1w,1w1t,loop",
                        help="local runs, of 2w,1w,1w1t,loop (2w is always made)")  # fmt: skip
    parser.add_argument("--work", default=None, help="working directory (a temporary one)")
    parser.add_argument("--no-kill", action="store_true", help="skip kill and resume")
    args = parser.parse_args()
    model = os.path.abspath(args.model)
    work = args.work or tempfile.mkdtemp(prefix="jobs-bench-")
    clips = os.path.join(work, "clips")
    shutil.rmtree(clips, ignore_errors=True)
    seconds = make_clips(clips, args.clips)
    files = sorted(os.path.join(top, n) for top, _, names in os.walk(clips) for n in names)[
        : args.loop_clips
    ]
    loop_seconds = sum(sf.info(f).duration for f in files)
    print(f"{args.clips} clips, {seconds / 3600:.3f} h of audio ({seconds / args.clips:.1f} s"
          f" average) in {clips}; {os.cpu_count()} CPUs")  # fmt: skip

    chosen = set(args.runs.split(","))
    runs: dict[str, tuple[list[str], float]] = {"local 2w (default)": ([], seconds)}
    if "1w" in chosen:
        runs["local 1w"] = (["--workers", "1"], seconds)
    if "1w1t" in chosen:
        runs["local 1w 1t"] = (["--workers", "1", "--threads", "1"], seconds)
    for engine in args.engine:
        runs[f"{engine} (default)"] = (["--engine", engine], seconds)
    loop = "loop" in chosen
    walls: dict[str, list[float]] = {name: [] for name in [*runs, *(["shell loop"] * loop)]}
    steady: dict[str, list[float]] = {name: [] for name in runs}
    out = os.path.join(work, "out")
    reference = os.path.join(work, "reference")
    shutil.rmtree(reference, ignore_errors=True)
    for _ in range(args.repeats):
        for name, (extra, _s) in runs.items():
            walls[name].append(job(clips, out, model, *extra))
            steady[name].append(steady_rate(out))
            per_item = work_per_item(out)
            print(f"  {name}: {walls[name][-1]:.1f} s ({per_item * 1000:.0f} ms per item in a"
                  " worker)", flush=True)  # fmt: skip
            if not os.path.isdir(reference):
                shutil.copytree(out, reference)
            elif name.startswith(tuple(args.engine)) and not same_outputs(reference, out):
                raise SystemExit(f"{name}: the outputs differ from the local engine's")
        if loop:
            walls["shell loop"].append(shell_loop(files, out, model))
            print(f"  shell loop ({len(files)} clips): {walls['shell loop'][-1]:.1f} s", flush=True)

    def rate(name: str) -> float:  # hours of audio per minute, at the median wall
        audio = loop_seconds if name == "shell loop" else runs[name][1]
        return (audio / 3600) / (float(np.median(walls[name])) / 60)

    print()
    print("| run | clips | wall (median) | h of audio per min | steady | local 2w is |")
    print("| --- | --- | --- | --- | --- | --- |")
    best = rate("local 2w (default)")
    for name in walls:
        count = len(files) if name == "shell loop" else args.clips
        calm = f"{np.median(steady[name]):.3f}" if name in steady else "-"
        print(f"| {name} | {count} | {np.median(walls[name]):.1f} s | {rate(name):.3f} |"
              f" {calm} | {best / rate(name):.2f}x |")  # fmt: skip
    print()
    for name, goal in [
        ("local 1w 1t", " (goal >= 1.8x)"),
        ("local 1w", ""),
        ("shell loop", " (goal >= 3x)"),
    ]:
        if name in walls:
            print(f"local 2w vs {name}: {best / rate(name):.2f}x{goal}")
    for engine in args.engine:
        name = f"{engine} (default)"
        pairs = [a / b for a, b in zip(walls["local 2w (default)"], walls[name], strict=True)]
        print(f"{name} vs local 2w: {rate(name) / best:.2f}x of its throughput (goal >= 0.75x);"
              f" run by run {', '.join(f'{p:.2f}x' for p in pairs)};"
              f" steady {np.median(steady[name]) / np.median(steady['local 2w (default)']):.2f}x;"
              " outputs byte-identical to the local engine's")  # fmt: skip
    if not args.no_kill:
        facts = kill_and_resume(clips, out, model, args.clips)
        print("\nkill at 50% (SIGKILL) and resume:", json.dumps(facts))
        ok = facts["redone_by_rerun"] == 0 and facts["complete_after_rerun"] == args.clips
        print("no item redone, every item complete:", "yes" if ok else "NO")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
