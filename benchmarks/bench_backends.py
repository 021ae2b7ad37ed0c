"""The AVE encoder on each backend: ONNX Runtime (threads spinning or not) and OpenVINO.

1497 windows (60 s of speech at 25 fps) of the real-size AVE encoder (the
random-weight test encoder: speed does not depend on the weights), default
batch size, 1 and 2 threads.

As a script, every configuration encodes the windows once per round, in
turn (the order rotating from round to round, so a burst of load elsewhere
on a shared machine hits them alike), and the table gives the minimum and
the median per window over the rounds:

    python benchmarks/bench_backends.py --model models/audio_encoder.onnx --rounds 15

With pytest-benchmark (one configuration after another):

    python -m pytest benchmarks/bench_backends.py --benchmark-enable
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pytest

from synctalk_audio import encoder_windows, melspectrogram
from synctalk_audio.encoders import Backend, Encoder, get_backend, open_encoder
from synctalk_audio.encoders.onnxruntime_backend import OnnxRuntimeBackend

#: (label, backend, threads) of every configuration measured.
CONFIGS: list[tuple[str, Backend, int]] = [
    (f"{label}, {threads} thread{'s' if threads > 1 else ''}", backend, threads)
    for threads in (1, 2)
    for label, backend in (
        ("onnxruntime, spinning on", OnnxRuntimeBackend(allow_spinning=True)),
        ("onnxruntime, spinning off", OnnxRuntimeBackend(allow_spinning=False)),
        ("openvino (f32)", get_backend("openvino")),
    )
]


@pytest.fixture(scope="module")
def windows(speech_60s):
    return encoder_windows(melspectrogram(speech_60s))


@pytest.mark.benchmark(group="backends-1497-windows")
@pytest.mark.parametrize(("label", "backend", "threads"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_backend(benchmark, encoder_path, windows, label, backend, threads):
    encoder = open_encoder("ave", encoder_path, backend=backend, threads=threads)
    out = benchmark.pedantic(encoder.encode, args=(windows,), rounds=3, warmup_rounds=1)
    assert out.shape == (windows.shape[0], 512)


def _speech_60s() -> np.ndarray:
    import soundfile as sf

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    wav, rate = sf.read(
        os.path.join(root, "tests", "data", "speech_16k_s16_mono.wav"), dtype="float32"
    )
    return np.tile(wav, 60 * rate // wav.shape[0] + 1)[: 60 * rate].copy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the AVE encoder (ONNX)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    windows = encoder_windows(melspectrogram(_speech_60s()))
    count = windows.shape[0]
    encoders: list[tuple[str, Encoder]] = [
        (label, open_encoder("ave", args.model, backend=backend, threads=threads))
        for label, backend, threads in CONFIGS
    ]
    reference = encoders[0][1].encode(windows)
    for label, encoder in encoders:  # warm-up, and the rows agree
        error = float(np.abs(encoder.encode(windows) - reference).max())
        print(f"warm-up {label}: max abs diff to the first {error:.2g}", file=sys.stderr)
    times: dict[str, list[float]] = {label: [] for label, _ in encoders}
    for r in range(args.rounds):
        order = encoders[r % len(encoders) :] + encoders[: r % len(encoders)]
        for label, encoder in order:
            started = time.perf_counter()
            encoder.encode(windows)
            times[label].append((time.perf_counter() - started) / count * 1e3)
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
    print(f"{count} windows, batch {encoders[0][1].batch_size}, {args.rounds} rounds\n")
    print("| backend | min ms/window | median ms/window |")
    print("| --- | --- | --- |")
    for label, values in times.items():
        print(f"| {label} | {min(values):.3f} | {statistics.median(values):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
