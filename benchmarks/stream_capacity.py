"""Capacity: how many concurrent real-time 25 fps streams one machine sustains.

K streams receive 20 ms of audio each every 20 ms of wall time (each
started 0-40 ms after the others, at random); each tick feeds all of them through
`FeatureStreamer.feed_many`, so windows of different streams share encoder
batches. A frame is late when it comes out more than one video frame period
(40 ms) after the tick that completed its audio should have started. The run
reports, for each K, late frames, the worst backlog, and the CPU time per
frame; the capacity is the largest K with no late frame.

    python benchmarks/stream_capacity.py --model models/audio_encoder.onnx --streams 8 16 24 32 40
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from synctalk_audio.streaming import FeatureStreamer

TICK_S = 0.020
CHUNK = 320  # 20 ms at 16 kHz


def run(streamer: FeatureStreamer, count: int, seconds: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    ticks = int(seconds / TICK_S)
    audio = (rng.standard_normal((count, ticks * CHUNK)) * 0.1).astype(np.float32)
    streams = [streamer.open(sample_rate=16000) for _ in range(count)]
    # Live streams do not start together: delay each by a random 0-40 ms so
    # their windows fall due in different ticks, as they would in service.
    offsets = rng.integers(0, 2 * CHUNK, size=count)
    frames = late = 0
    worst_lag = 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    start = time.perf_counter()
    for tick in range(ticks):
        due = start + tick * TICK_S
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        chunks = [
            (
                s,
                audio[
                    i, max(0, tick * CHUNK - offsets[i]) : max(0, (tick + 1) * CHUNK - offsets[i])
                ],
            )
            for i, s in enumerate(streams)
        ]
        out = streamer.feed_many(chunks)
        done = time.perf_counter()
        lag = done - (due + TICK_S)  # the chunk is complete at the end of its tick
        worst_lag = max(worst_lag, lag)
        n = sum(len(v) for v in out.values())
        frames += n
        if lag > 0.040:
            late += n
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "streams": count,
        "frames": frames,
        "late_frames": late,
        "worst_lag_ms": worst_lag * 1e3,
        "cpu_ms_per_frame": cpu / max(frames, 1) * 1e3,
        "wall_over_audio": wall / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/audio_encoder.onnx")
    parser.add_argument("--streams", type=int, nargs="+", default=[8, 16, 24, 32, 40])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    streamer = FeatureStreamer(args.model, batch_size=args.batch_size)
    results = [run(streamer, k, args.seconds, seed=k) for k in args.streams]
    for r in results:
        print(json.dumps(r))
    ok = [r["streams"] for r in results if r["late_frames"] == 0]
    print(json.dumps({"capacity_streams": max(ok) if ok else 0}))


if __name__ == "__main__":
    main()
