"""The hubert and wenet modes against the upstream scripts, side by side.

On the same speech (tests/data/speech_16k_s16_mono.wav tiled to each
``--seconds``, written to a temporary 16 kHz PCM_16 WAV), each side runs in a
fresh process, alternating, ``--repeat`` times:

- hubert, ours: ``python -m synctalk_audio process --mode hubert --model X.onnx
  --no-frames`` (ONNX Runtime);
- hubert, upstream: ``tests/reference/ultralight.py hubert`` (data_utils/hubert.py's
  logic: transformers HubertModel on PyTorch CPU);
- wenet, ours: ``python -m synctalk_audio process --mode wenet --no-frames`` for
  every ``--wenet-model``;
- wenet, upstream: ``tests/reference/ultralight.py wenet`` (data_utils/wenet_infer.py's
  logic: torchaudio's kaldi.fbank in float32, then the chunk loop on ONNX Runtime).

Wall time is measured around the child; peak memory is its maximum resident set
size (``os.wait4``, the helpers of benchmarks/long_file.py). The table gives the
median over the repeats, the real-time factor (wall / audio seconds) and the
largest absolute difference between the two feature arrays of the last repeat.
Run with a Python that has transformers (the ``export`` extra):

    python models/make_test_hubert.py --size large --out /tmp/bm/hubert_large
    synctalk-audio export --mode hubert --checkpoint /tmp/bm/hubert_large \\
        --output /tmp/bm/hubert_large.onnx
    python models/make_test_wenet.py --out /tmp/bm/wenet_tiny.onnx
    python models/make_test_wenet.py --size full --out /tmp/bm/wenet_full.onnx
    python benchmarks/compare_modes.py --seconds 60 \\
        --hubert-checkpoint /tmp/bm/hubert_large --hubert-model /tmp/bm/hubert_large.onnx \\
        --wenet-model /tmp/bm/wenet_tiny.onnx /tmp/bm/wenet_full.onnx
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from long_file import ROOT, measure, write_speech  # noqa: E402

UPSTREAM = os.path.join(ROOT, "tests", "reference", "ultralight.py")


def run_pair(
    label: str,
    ours: list[str],
    ours_npy: str,
    upstream: list[str],
    upstream_npy: str,
    repeat: int,
) -> list[tuple[str, str, float, float, float, float]]:
    """Alternate both commands ``repeat`` times; (label, side, wall, cpu, peak) medians."""
    times: dict[str, list[tuple[float, float, float]]] = {"ours": [], "upstream": []}
    for _ in range(repeat):
        for side, cmd in (("upstream", upstream), ("ours", ours)):
            wall, cpu, peak = measure(cmd)
            times[side].append((wall, cpu, peak))
            print(
                f"  {label} {side}: {wall:.2f} s, CPU {cpu:.1f} s, {peak:.0f} MiB", file=sys.stderr
            )
    diff = float(np.max(np.abs(np.load(ours_npy) - np.load(upstream_npy))))
    print(f"  {label}: max abs difference {diff:.2e}", file=sys.stderr)
    rows = []
    for side in ("upstream", "ours"):
        wall = statistics.median(t[0] for t in times[side])
        cpu = statistics.median(t[1] for t in times[side])
        peak = statistics.median(t[2] for t in times[side])
        rows.append((label, side, wall, cpu, peak, diff))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, nargs="+", default=[60.0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per side (median reported)")
    parser.add_argument("--hubert-checkpoint", help="HuggingFace HuBERT checkpoint directory")
    parser.add_argument("--hubert-model", help="its ONNX export (synctalk-audio export)")
    parser.add_argument("--wenet-model", nargs="*", default=[], help="WeNet encoder ONNX files")
    parser.add_argument("--threads", type=int, default=None, help="--threads for ours")
    args = parser.parse_args()
    if bool(args.hubert_checkpoint) != bool(args.hubert_model):
        parser.error("--hubert-checkpoint and --hubert-model go together")

    py = sys.executable
    threads = [] if args.threads is None else ["--threads", str(args.threads)]
    work = tempfile.mkdtemp(prefix="synctalk-modes-")
    rows = []
    try:
        for seconds in args.seconds:
            audio = os.path.join(work, f"speech_{seconds:g}s.wav")
            write_speech(audio, seconds / 3600)
            process = [py, "-m", "synctalk_audio", "process", "--audio", audio, "--no-frames", "-q"]
            ours_out = os.path.join(work, "ours")
            up_npy = os.path.join(work, "upstream.npy")
            if args.hubert_model:
                rows += run_pair(
                    f"{seconds:g} s hubert",
                    [*process, "--mode", "hubert", "--model", args.hubert_model]
                    + ["--output", ours_out, "--overwrite", *threads],
                    os.path.join(ours_out, "aud_hu.npy"),
                    [py, UPSTREAM, "hubert", "--audio", audio]
                    + ["--checkpoint", args.hubert_checkpoint, "--output", up_npy],
                    up_npy,
                    args.repeat,
                )
            for model in args.wenet_model:
                rows += run_pair(
                    f"{seconds:g} s wenet {os.path.basename(model)}",
                    [*process, "--mode", "wenet", "--model", model]
                    + ["--output", ours_out, "--overwrite", *threads],
                    os.path.join(ours_out, "aud_wenet.npy"),
                    [py, UPSTREAM, "wenet", "--audio", audio, "--model", model, "--output", up_npy],
                    up_npy,
                    args.repeat,
                )
            os.unlink(audio)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\n| audio, mode, model | side | wall | CPU | peak RSS | real-time factor | speed-up |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for i, (label, side, wall, cpu, peak, _diff) in enumerate(rows):
        seconds = float(label.split(" ")[0])
        speedup = f"{rows[i - 1][2] / wall:.2f}x" if side == "ours" else ""
        print(
            f"| {label} | {side} | {wall:.2f} s | {cpu:.1f} s | {peak:.0f} MiB"
            f" | {wall / seconds:.3f} | {speedup} |"
        )
    print("\n| audio, mode, model | max abs difference ours vs upstream |")
    print("| --- | --- |")
    for label, side, *_, diff in rows:
        if side == "ours":
            print(f"| {label} | {diff:.2e} |")


if __name__ == "__main__":
    main()
