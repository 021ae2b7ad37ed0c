"""The whole command against the upstream-style Python path, side by side.

Runs, on the same machine and the same input, alternating and repeated:

- ours:  ``python -m synctalk_audio process`` (C++ mel, ONNX Runtime encoder,
  frame files written);
- peer:  ``tests/reference/upstream.py --engine onnx`` (librosa + ONNX Runtime,
  batch 64, PyTorch not imported), writing the same files;
- peer with PyTorch (``--engine torch``), unless ``--no-torch``.

Each run is a fresh process; wall time is measured around it and peak memory
is the child's maximum resident set size (``os.wait4``). The input is speech
from tests/data tiled to ``--seconds`` (60 by default) at 16 kHz.

    python benchmarks/compare_pipeline.py --model M.onnx --checkpoint M.pth [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(ROOT, "tests", "data", "speech_16k_s16_mono.wav")


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed: {child.stderr.read().decode() if child.stderr else ''}"
        )
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="ONNX encoder")
    parser.add_argument("--checkpoint", required=True, help="the same weights as .pth")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="synctalk-bench-")
    speech, rate = sf.read(SPEECH, dtype="int16")
    total = int(args.seconds * rate)
    audio = np.tile(speech, total // speech.shape[0] + 1)[:total]
    wav = os.path.join(work, "speech.wav")
    sf.write(wav, audio, rate, subtype="PCM_16")

    py = sys.executable
    upstream = [
        py,
        os.path.join(ROOT, "tests", "reference", "upstream.py"),
        "--audio",
        wav,
        "--checkpoint",
        args.checkpoint,
    ]
    commands = {
        "ours (synctalk-audio process)": [
            py,
            "-m",
            "synctalk_audio",
            "process",
            "--audio",
            wav,
            "--model",
            args.model,
            "--output",
            os.path.join(work, "ours"),
            "-q",
        ],
        "peer: librosa + ONNX Runtime (batch 64)": [
            *upstream,
            "--engine",
            "onnx",
            "--model",
            args.model,
            "--output",
            os.path.join(work, "peer_onnx"),
        ],
    }
    if not args.no_torch:
        commands["peer: librosa + PyTorch (upstream)"] = [
            *upstream,
            "--engine",
            "torch",
            "--output",
            os.path.join(work, "peer_torch"),
        ]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, cmd in commands.items():
            results[name].append(measure(cmd))
    ours = statistics.median(w for w, _ in results["ours (synctalk-audio process)"])
    ours_mem = max(m for _, m in results["ours (synctalk-audio process)"])
    print(
        f"input: {args.seconds:g} s of 16 kHz speech; {args.repeats} runs each,"
        " median wall, max peak RSS"
    )
    print(
        f"{'command':45s} {'wall s':>8s} {'peak MiB':>9s} {'wall / ours':>12s} {'mem / ours':>11s}"
    )
    report = {}
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        mem = max(m for _, m in runs)
        report[name] = {"wall_s": wall, "peak_mib": mem, "runs": runs}
        print(f"{name:45s} {wall:8.2f} {mem:9.0f} {wall / ours:12.2f} {mem / ours_mem:11.2f}")
    check = subprocess.run(
        [
            py,
            "-m",
            "synctalk_audio",
            "validate",
            os.path.join(work, "peer_onnx"),
            os.path.join(work, "ours"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    print(check.stdout.strip())
    with open(os.path.join(work, "report.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
