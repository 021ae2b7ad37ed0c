"""Memory of a live stream that runs for hours: ``synctalk-audio stream`` fed as fast as it reads.

A WAV stream of unknown size (the header's sizes 0xFFFFFFFF, as a live
source sends) carrying HOURS of speech-like audio is written to the
command's standard input as fast as it reads; its frames go to /dev/null
(and, with ``--output``, to an output directory). The command's resident
memory is read from /proc while it runs: the peak (VmHWM) once 5 minutes of
audio have gone in, and at the end. Flat memory means the end's peak is
within 10 % of the 5-minute one, whatever the duration.

    python benchmarks/stream_memory.py --model models/audio_encoder.onnx --hours 1
    python benchmarks/stream_memory.py --model tiny.onnx --hours 24 --output /tmp/out
    python benchmarks/stream_memory.py --mode wenet --model encoder.onnx --hours 6

Also, with ``--api N``: the API's `FeatureStream` opened, fed 2 s and closed
N times in this process, RSS before and after.

Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import threading
import time

import numpy as np

RATE = 16000
CHUNK_S = 10  # seconds of audio per write
FIVE_MINUTES_S = 300


def wav_header_unknown_size(rate: int = RATE) -> bytes:
    """A 16-bit mono WAV header whose RIFF and data sizes say 'unknown' (0xFFFFFFFF)."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", 0xFFFFFFFF)
    )  # fmt: skip


def status_kib(pid: int, field: str) -> int:
    """A field of /proc/PID/status in KiB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def audio_chunks(seconds: float, seed: int = 0):  # type: ignore[no-untyped-def]
    """int16 speech-like noise (amplitude-modulated), CHUNK_S seconds at a time."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(CHUNK_S * RATE)
    envelope = 0.5 + 0.5 * np.sin(np.arange(CHUNK_S * RATE) * (2 * np.pi * 3 / RATE))
    chunk = (base * envelope * 3000).astype("<i2").tobytes()
    for _ in range(int(seconds // CHUNK_S)):
        yield chunk


def run_command(args: argparse.Namespace) -> dict[str, object]:
    command = [args.python, "-m", "synctalk_audio", "stream", "--mode", args.mode, "-q"]
    if args.model:
        command += ["--model", args.model]
    if args.output:
        command += ["--output", args.output, "--overwrite"]
    seconds = args.hours * 3600
    started = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=null)
        assert proc.stdin is not None
        fed = 0.0
        at_five: dict[str, int] = {}
        peak_seen = 0

        def watch() -> None:  # sample RSS every 0.2 s until the process ends
            nonlocal peak_seen
            while proc.poll() is None:
                try:
                    peak_seen = max(peak_seen, status_kib(proc.pid, "VmRSS"))
                except (OSError, KeyError):
                    return
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        proc.stdin.write(wav_header_unknown_size())
        for chunk in audio_chunks(seconds):
            proc.stdin.write(chunk)
            fed += CHUNK_S
            if not at_five and fed >= FIVE_MINUTES_S:
                proc.stdin.flush()
                at_five = {
                    "rss_kib": status_kib(proc.pid, "VmRSS"),
                    "hwm_kib": status_kib(proc.pid, "VmHWM"),
                }
        end = {"rss_kib": status_kib(proc.pid, "VmRSS"), "hwm_kib": status_kib(proc.pid, "VmHWM")}
        proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        watcher.join()
    wall = time.perf_counter() - started
    return {
        "mode": args.mode,
        "model": args.model,
        "output": bool(args.output),
        "audio_hours": args.hours,
        "exit": code,
        "wall_s": round(wall, 1),
        "after_5_min": at_five,
        "at_end": end,
        "peak_rss_kib_sampled": peak_seen,
        "peak_rss_kib_whole_run": usage.ru_maxrss,  # Linux: KiB
        "whole_run_peak_over_5_min_peak": round(usage.ru_maxrss / at_five["hwm_kib"], 4)
        if at_five
        else None,
    }


def run_api(args: argparse.Namespace) -> dict[str, object]:
    """FeatureStream opened, fed 2 s and closed ``args.api`` times: RSS before and after."""
    from synctalk_audio.streaming import FeatureStreamer

    streamer = FeatureStreamer(args.model, mode=args.mode)
    audio = (np.random.default_rng(1).standard_normal(2 * RATE) * 0.1).astype(np.float32)
    rss = []
    for i in range(args.api):
        stream = streamer.open(sample_rate=RATE)
        stream.feed(audio)
        stream.close()
        if i in (args.api // 10, args.api - 1):
            rss.append(status_kib(os.getpid(), "VmRSS"))
    return {"api_streams": args.api, "rss_kib_after_10pct": rss[0], "rss_kib_at_end": rss[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="ave")
    parser.add_argument("--model", default=None)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--output", default=None, help="also write this output directory")
    parser.add_argument("--api", type=int, default=0, help="FeatureStream open/feed/close N times")
    parser.add_argument(
        "--python", default=sys.executable, help="the Python running the command (another install)"
    )
    args = parser.parse_args()
    result = run_api(args) if args.api else run_command(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
