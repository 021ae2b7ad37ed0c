"""Live streams: the latency of one stream, and how many streams one machine carries.

- ``test_stream_latency`` (default run): one `FeatureStream` fed 30 s of
  speech at real-time pace in ragged 5-40 ms chunks
  (benchmarks/stream_latency.py's `measure_latency`). The extra latency of a
  frame runs from the arrival of the chunk holding its last needed sample to
  the frame's return. The reference, measured in the same run while the
  stream waits for its next chunk: one bare ONNX Runtime call on one window
  (what a frame's latency mostly is). ``ratios``: that call's median over
  the latency's p50 and over its p99 (higher: less streaming overhead).
- ``test_stream_capacity`` (``--heavy``): K live 25 fps streams through one
  `FeatureStreamer.feed_many` per 20 ms tick (benchmarks/stream_capacity.py's
  `run`), K = 8, 12, 16, 20, 24, 28; the capacity is the largest K with no late frame.
  The reference is the encoder's ceiling, measured between the K: a bare
  ONNX Runtime loop over batches of 64 windows gives the time per window t,
  and 1 / (25 t) streams would keep the encoder busy all the time.
  ``ratios["vs_encoder_ceiling"]`` = capacity / ceiling.

    python -m pytest benchmarks/bench_stream.py --benchmark-enable [--heavy]
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import onnxruntime as ort
import pytest
from ratio import record
from stream_capacity import run as run_capacity
from stream_latency import measure_latency

from synctalk_audio import encoder_windows, melspectrogram
from synctalk_audio.streaming import FeatureStreamer

LATENCY_SECONDS = 30
CAPACITY_STREAMS = [8, 12, 16, 20, 24, 28]
CAPACITY_SECONDS = 10.0


def _session(path: str) -> tuple[ort.InferenceSession, str]:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session, session.get_inputs()[0].name


@pytest.mark.benchmark(group="stream")
def test_stream_latency(benchmark, encoder_path, speech_60s):
    audio = speech_60s[: LATENCY_SECONDS * 16000]
    windows = encoder_windows(melspectrogram(speech_60s[:16000]))
    session, name = _session(encoder_path)
    one = windows[:1]
    session.run(None, {name: one})
    calls: list[float] = []

    def idle(seconds: float) -> None:
        # One bare call per idle gap well longer than the last call took, so
        # that the call does not delay the stream's next chunk.
        if seconds > max(0.010, 3 * (calls[-1] if calls else 0.0)):
            start = time.perf_counter()
            session.run(None, {name: one})
            calls.append(time.perf_counter() - start)

    streamer = FeatureStreamer(encoder_path)
    reports = []

    def stream_once() -> None:
        reports.append(measure_latency(streamer, audio, seed=0, idle=idle))

    benchmark.pedantic(stream_once, rounds=1, iterations=1)
    report = reports[-1]
    latency = report["extra_latency_ms"]
    call_ms = statistics.median(calls) * 1e3
    record(
        benchmark,
        f"live stream, {LATENCY_SECONDS} s of speech in 5-40 ms chunks: extra latency"
        " per frame vs one bare ONNX Runtime call on one window",
        {"vs_one_call_p50": call_ms / latency["p50"], "vs_one_call_p99": call_ms / latency["p99"]},
        reference="onnxruntime session.run on one window, in the stream's idle gaps",
        reference_median_s=call_ms / 1e3,
        latency_ms=latency,
        frames_late=report["frames_late"],
        frames_before_end=report["frames_before_end"],
        reference_calls=len(calls),
    )
    assert report["frames_late"] == 0
    frames = encoder_windows(melspectrogram(audio)).shape[0] + 2  # aud_ave's rows
    assert report["frames_before_end"] + report["frames_at_close"] == frames


def _per_window(session: ort.InferenceSession, name: str, windows: np.ndarray) -> float:
    start = time.perf_counter()
    for i in range(0, windows.shape[0], 64):
        session.run(None, {name: windows[i : i + 64]})
    return (time.perf_counter() - start) / windows.shape[0]


@pytest.mark.heavy
@pytest.mark.benchmark(group="stream")
def test_stream_capacity(benchmark, encoder_path, speech_60s):
    windows = encoder_windows(melspectrogram(speech_60s[: 20 * 16000]))  # 497 windows
    session, name = _session(encoder_path)
    _per_window(session, name, windows[:64])
    streamer = FeatureStreamer(encoder_path, batch_size=64)
    per_window: list[float] = []
    results: list[dict[str, float]] = []

    def all_loads() -> None:
        for k in CAPACITY_STREAMS:
            per_window.append(_per_window(session, name, windows))
            results.append(run_capacity(streamer, k, CAPACITY_SECONDS, seed=k))
        per_window.append(_per_window(session, name, windows))

    benchmark.pedantic(all_loads, rounds=1, iterations=1)
    ok = [int(r["streams"]) for r in results if r["late_frames"] == 0]
    capacity = max(ok) if ok else 0
    ceiling = 1.0 / (25 * statistics.median(per_window))
    record(
        benchmark,
        "live capacity: 25 fps streams with no late frame vs the encoder's ceiling"
        " (1 / (25 x its time per window))",
        {"vs_encoder_ceiling": capacity / ceiling},
        reference="bare ONNX Runtime loop, batches of 64 windows, between the loads",
        reference_median_s=statistics.median(per_window),
        capacity_streams=capacity,
        ceiling_streams=ceiling,
        loads=results,
    )
    assert results
