"""Streaming promptness: extra latency from the needed sample's arrival to the frame.

Feeds speech to one `FeatureStream` at real-time pace in ragged chunks (random
5-40 ms), and for every frame emitted before the end of input measures the
time from the arrival of the chunk holding the frame's last needed sample
(`samples_needed_for_frame`) to the moment the frame was returned. Also
counts frames that came out later than the chunk that completed them.

    python benchmarks/stream_latency.py --model models/audio_encoder.onnx --seconds 60
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from synctalk_audio import load_audio
from synctalk_audio.streaming import FeatureStreamer, samples_needed_for_frame


def measure_latency(
    streamer: FeatureStreamer,
    audio: np.ndarray,
    *,
    seed: int = 0,
    idle: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Feed ``audio`` to one stream at real-time pace in ragged chunks; the latency report.

    Parameters
    ----------
    streamer : FeatureStreamer
        Opens the stream (16 kHz input).
    audio : numpy.ndarray
        16 kHz float32 samples.
    seed : int
        Seeds the chunk sizes (5-40 ms).
    idle : callable, optional
        Called as ``idle(seconds)`` when the next chunk is due in ``seconds``
        (a measurement to interleave); it must return well before that.

    Returns
    -------
    dict
        Frames emitted before the end and at close, frames late (not in the
        call of the chunk that completed them) and the extra latency's p50,
        p99 and max in ms.
    """
    rng = np.random.default_rng(seed)
    stream = streamer.open(sample_rate=16000)
    stream.feed(np.zeros(0, np.float32))

    latencies, late = [], 0
    position = 0
    t0 = time.perf_counter()
    arrivals: list[tuple[int, float]] = []  # (end sample of chunk, arrival time)
    while position < audio.shape[0]:
        size = int(rng.integers(80, 641))  # 5-40 ms at 16 kHz
        chunk = audio[position : position + size]
        end = position + chunk.shape[0]
        arrival = t0 + end / 16000
        delay = arrival - time.perf_counter()
        if idle is not None and delay > 0:
            idle(delay)
            delay = arrival - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        arrived = max(arrival, time.perf_counter()) if delay > 0 else arrival
        arrivals.append((end, arrived))
        frames = stream.feed(chunk)
        done = time.perf_counter()
        for frame in frames:
            needed = samples_needed_for_frame(frame.index, streamer.fps)
            if needed > end:
                raise AssertionError(f"frame {frame.index} emitted before its audio arrived")
            # The chunk that brought the last needed sample.
            chunk_end, chunk_time = next((e, t) for e, t in arrivals if e >= needed)
            if chunk_end != end:
                late += 1
            latencies.append(done - chunk_time)
        position = end
    tail = stream.close()
    ms = np.array(latencies) * 1e3
    return {
        "frames_before_end": len(latencies),
        "frames_at_close": len(tail),
        "frames_late": late,
        "extra_latency_ms": {
            "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="models/audio_encoder.onnx")
    parser.add_argument("--audio", default=None, help="16 kHz speech; noise when omitted")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    if args.audio:
        audio = load_audio(args.audio)
        reps = int(np.ceil(args.seconds * 16000 / audio.shape[0]))
        audio = np.tile(audio, reps)[: int(args.seconds * 16000)]
    else:
        audio = (rng.standard_normal(int(args.seconds * 16000)) * 0.1).astype(np.float32)
    report = measure_latency(FeatureStreamer(args.model), audio, seed=args.seed)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
