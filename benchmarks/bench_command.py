"""The whole command against the librosa + ONNX Runtime peer and the upstream PyTorch path.

Each round runs, each in a fresh process (imports included), on 60 s of
speech written as a 16 kHz WAV, alternating:

- ours: ``python -m synctalk_audio process`` (frame files written), timed by
  pytest-benchmark;
- the peer: ``tests/reference/upstream.py --engine onnx`` (librosa + ONNX
  Runtime, batch 64, the same files written), timed in the round's setup;
- with ``--heavy``, in its own test, the upstream path
  ``tests/reference/upstream.py --engine torch`` (librosa + PyTorch).

``extra_info["ratios"]``: ``vs_peer`` (the other side's median wall over
ours), ``memory_vs_peer`` (its largest peak RSS over ours, ``os.wait4``) and,
for the peer test, ``encoder_share``: our encoder's own time (metadata.json's
``encode_s``) over our whole command's wall, medians of the same rounds (the
rest is interpreter start, imports, decoding, the mel and writing).

    python -m pytest benchmarks/bench_command.py --benchmark-enable [--heavy]
"""

from __future__ import annotations

import json
import os
import statistics
import sys

import pytest
from ratio import interleaved, record, run_child

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPSTREAM = os.path.join(ROOT, "tests", "reference", "upstream.py")
ROUNDS = 3


class Side:
    """One command, run repeatedly: its wall, CPU and peak RSS per run."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.runs: list[tuple[float, float, float]] = []

    def __call__(self) -> None:
        self.runs.append(run_child(self.argv, cwd=ROOT))

    @property
    def peak_mib(self) -> float:
        return max(r[2] for r in self.runs)


def _sides(tmp_path, wav: str, encoder, engine: str) -> tuple[Side, Side]:  # type: ignore[no-untyped-def]
    ours = Side(
        [sys.executable, "-m", "synctalk_audio", "process", "--audio", wav, "--model"]
        + [encoder.onnx, "--output", str(tmp_path / "ours"), "--overwrite", "-q"]
    )
    peer = [sys.executable, UPSTREAM, "--audio", wav, "--checkpoint", encoder.pth]
    peer += ["--engine", engine, "--output", str(tmp_path / f"peer_{engine}")]
    if engine == "onnx":
        peer += ["--model", encoder.onnx]
    return ours, Side(peer)


def _encode_s(ours_out: str, encode_s: list[float]) -> None:
    with open(os.path.join(ours_out, "metadata.json"), encoding="utf-8") as f:
        encode_s.append(float(json.load(f)["timings"]["encode_s"]))


@pytest.mark.benchmark(group="command-60s")
def test_command_vs_librosa_onnxruntime(benchmark, test_encoder, speech_60s_wav, tmp_path):
    ours, peer = _sides(tmp_path, speech_60s_wav, test_encoder, "onnx")
    encode_s: list[float] = []

    def run_ours() -> None:
        ours()
        _encode_s(str(tmp_path / "ours"), encode_s)

    interleaved(
        benchmark,
        run_ours,
        peer,
        rounds=ROUNDS,
        headline="whole command, 60 s of speech with frame files:"
        " synctalk-audio process vs librosa + ONNX Runtime (batch 64)",
        reference_name="tests/reference/upstream.py --engine onnx",
        ratio_name="vs_peer",
    )
    if ours.runs and peer.runs:
        walls = [r[0] for r in ours.runs[1:]]  # the timed rounds (the first is the warm-up)
        record(
            benchmark,
            benchmark.extra_info.get("headline", ""),
            {
                "memory_vs_peer": peer.peak_mib / ours.peak_mib,
                "encoder_share": statistics.median(encode_s[1:]) / statistics.median(walls),
            },
            peak_mib=ours.peak_mib,
            reference_peak_mib=peer.peak_mib,
            encode_s=encode_s[1:],
            cpu_s=[r[1] for r in ours.runs[1:]],
        )
    assert os.path.exists(tmp_path / "ours" / "frames" / "frame_01498.bin")


@pytest.mark.heavy
@pytest.mark.benchmark(group="command-60s")
def test_command_vs_librosa_pytorch(benchmark, test_encoder, speech_60s_wav, tmp_path):
    ours, peer = _sides(tmp_path, speech_60s_wav, test_encoder, "torch")
    interleaved(
        benchmark,
        ours,
        peer,
        rounds=ROUNDS,
        headline="whole command, 60 s of speech with frame files:"
        " synctalk-audio process vs the upstream librosa + PyTorch path",
        reference_name="tests/reference/upstream.py --engine torch",
        ratio_name="vs_peer",
    )
    if ours.runs and peer.runs:
        record(
            benchmark,
            benchmark.extra_info.get("headline", ""),
            {"memory_vs_peer": peer.peak_mib / ours.peak_mib},
            peak_mib=ours.peak_mib,
            reference_peak_mib=peer.peak_mib,
        )
    assert os.path.exists(tmp_path / "peer_torch" / "aud_ave.npy")
