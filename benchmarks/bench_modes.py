"""The hubert and wenet modes against the upstream scripts (``--heavy``).

On 60 s of speech (benchmarks/long_file.py's `write_speech`, a 16 kHz WAV),
each side a fresh process, alternating round by round:

- ours: ``python -m synctalk_audio process --mode hubert|wenet --no-frames``
  (timed by pytest-benchmark);
- upstream: ``tests/reference/ultralight.py hubert|wenet`` (data_utils/hubert.py's
  logic on transformers + PyTorch; data_utils/wenet_infer.py's: torchaudio's
  kaldi.fbank, then the chunk loop on ONNX Runtime), timed in the round's setup.

The models are the test fixtures' (tiny HuBERT, the stand-in WeNet encoder)
unless ``--hubert-checkpoint``/``--hubert-model`` and ``--wenet-model`` name
others (docs/BENCHMARKS.md: hubert-large, the full-size WeNet stand-in).
``ratios``: ``vs_upstream`` (upstream's median wall over ours) and
``memory_vs_upstream`` (peak RSS). The largest absolute difference of the two
feature arrays is in ``extra_info["max_abs_difference"]``.

    python -m pytest benchmarks/bench_modes.py --benchmark-enable --heavy
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from bench_command import Side
from long_file import write_speech
from ratio import interleaved, record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPSTREAM = os.path.join(ROOT, "tests", "reference", "ultralight.py")
SECONDS = 60
ROUNDS = 2


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("modes") / "speech_60s.wav")
    write_speech(path, SECONDS / 3600)
    return path


def _models(request: pytest.FixtureRequest, mode: str) -> tuple[list[str], list[str], str]:
    """(our model arguments, upstream's model arguments, the model's label)."""
    config = request.config
    if mode == "hubert":
        checkpoint, onnx = (
            config.getoption("--hubert-checkpoint"),
            config.getoption("--hubert-model"),
        )
        if bool(checkpoint) != bool(onnx):
            pytest.fail("--hubert-checkpoint and --hubert-model go together")
        if not checkpoint:
            checkpoint = request.getfixturevalue("hubert_checkpoint")
            onnx = request.getfixturevalue("hubert_onnx")
        return ["--model", onnx], ["--checkpoint", checkpoint], os.path.basename(str(checkpoint))
    model = config.getoption("--wenet-model") or request.getfixturevalue("wenet_model")
    return ["--model", model], ["--model", model], os.path.basename(str(model))


@pytest.mark.heavy
@pytest.mark.benchmark(group="modes-60s")
@pytest.mark.parametrize("mode", ["hubert", "wenet"])
def test_mode_vs_upstream(benchmark, request, speech_wav, tmp_path, mode):
    ours_model, up_model, label = _models(request, mode)
    out = tmp_path / "ours"
    up_npy = str(tmp_path / "upstream.npy")
    ours = Side(
        [sys.executable, "-m", "synctalk_audio", "process", "--audio", speech_wav, "--mode", mode]
        + [*ours_model, "--output", str(out), "--overwrite", "--no-frames", "-q"]
    )
    upstream = Side(
        [sys.executable, UPSTREAM, mode, "--audio", speech_wav, *up_model, "--output", up_npy]
    )
    interleaved(
        benchmark,
        ours,
        upstream,
        rounds=ROUNDS,
        headline=f"{mode} mode, 60 s of speech ({label}): synctalk-audio process vs"
        " the upstream script",
        reference_name=f"tests/reference/ultralight.py {mode}",
        ratio_name="vs_upstream",
    )
    npy = {"hubert": "aud_hu.npy", "wenet": "aud_wenet.npy"}[mode]
    diff = float(np.max(np.abs(np.load(out / npy) - np.load(up_npy))))
    if ours.runs and upstream.runs:
        record(
            benchmark,
            benchmark.extra_info.get("headline", ""),
            {"memory_vs_upstream": upstream.peak_mib / ours.peak_mib},
            peak_mib=ours.peak_mib,
            reference_peak_mib=upstream.peak_mib,
            max_abs_difference=diff,
            model=label,
        )
    assert diff < 1e-3
