"""The encoder alone: AveEncoder (ONNX Runtime) against a bare ONNX Runtime loop on the same model.

1497 windows (60 s of speech at 25 fps). The bare loop is the best case of
calling onnxruntime directly (batch 16 was its best here); ours adds input
checks, batching and output assembly, and must be no slower.

    python -m pytest benchmarks/bench_encoder.py --benchmark-enable
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from synctalk_audio import encoder_windows, melspectrogram
from synctalk_audio.encoders import AveEncoder


@pytest.fixture(scope="module")
def windows(speech_60s):
    return encoder_windows(melspectrogram(speech_60s))


@pytest.mark.benchmark(group="encoder-1497-windows")
@pytest.mark.parametrize("batch", [16, 32, 64])
def test_encoder_ours(benchmark, encoder_path, windows, batch):
    enc = AveEncoder(encoder_path, batch_size=batch)
    out = benchmark.pedantic(enc.encode, args=(windows,), rounds=3, warmup_rounds=1)
    assert out.shape == (windows.shape[0], 512)


@pytest.mark.benchmark(group="encoder-1497-windows")
@pytest.mark.parametrize("batch", [16, 64])
def test_encoder_bare_onnxruntime(benchmark, encoder_path, windows, batch):
    session = ort.InferenceSession(encoder_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def loop() -> list[np.ndarray]:
        return [
            session.run(None, {name: windows[i : i + batch]})[0]
            for i in range(0, windows.shape[0], batch)
        ]

    out = benchmark.pedantic(loop, rounds=3, warmup_rounds=1)
    assert sum(o.shape[0] for o in out) == windows.shape[0]
