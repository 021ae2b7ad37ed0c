"""The encoder: the package's in-memory path against a bare ONNX Runtime loop, same model.

60 s of speech (1497 windows at 25 fps). Ours is ``Pipeline.process`` on the
samples (mel, windows, ONNX Runtime in batches of 32, aud_ave); the
reference computes the same mel and windows with the public functions and
then calls ``session.run`` in a plain loop of batch 16 (the best batch of the
bare loop here), the best case of calling onnxruntime directly. Both sides
alternate round by round; ``extra_info["ratios"]["vs_bare_onnxruntime"]`` is
the bare loop's median over ours (>= 1: no slower).

    python -m pytest benchmarks/bench_encoder.py --benchmark-enable
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from ratio import interleaved

from synctalk_audio import encoder_windows, melspectrogram
from synctalk_audio.pipeline import Pipeline

BARE_BATCH = 16


@pytest.mark.benchmark(group="encoder-1497-windows")
def test_pipeline_vs_bare_onnxruntime(benchmark, encoder_path, speech_60s):
    session = ort.InferenceSession(encoder_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def bare() -> list[np.ndarray]:
        windows = encoder_windows(melspectrogram(speech_60s))
        return [
            session.run(None, {name: windows[i : i + BARE_BATCH]})[0]
            for i in range(0, windows.shape[0], BARE_BATCH)
        ]

    with Pipeline(encoder_path, batch_size=32) as pipe:
        features = interleaved(
            benchmark,
            lambda: pipe.process(speech_60s),
            bare,
            rounds=3,
            headline="encoder, 60 s (1497 windows): Pipeline.process vs a bare"
            " ONNX Runtime loop (batch 16), same mel",
            reference_name="melspectrogram + encoder_windows + session.run loop,"
            f" batch {BARE_BATCH}",
            ratio_name="vs_bare_onnxruntime",
        )
    assert features.aud_ave.shape == (1499, 512)
