"""Shared inputs of the benchmark suites (kept out of the default test run).

Run with ``python -m pytest benchmarks --benchmark-enable``. The encoder comes
from ``--encoder PATH`` or, by default, the random-weight test encoder made by
models/make_test_encoder.py (speed does not depend on the weights).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

from model_fixture import test_encoder  # noqa: E402,F401  (fixture)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--encoder", default=None, help="ONNX encoder to benchmark")


@pytest.fixture(scope="session")
def encoder_path(request: pytest.FixtureRequest) -> str:
    given = request.config.getoption("--encoder")
    if given:
        return str(given)
    return str(request.getfixturevalue("test_encoder").onnx)


@pytest.fixture(scope="session")
def speech_60s() -> np.ndarray:
    """60 s of 16 kHz speech: the test speech tiled, float32 as librosa.load gives it."""
    wav, rate = sf.read(
        os.path.join(ROOT, "tests", "data", "speech_16k_s16_mono.wav"), dtype="float32"
    )
    assert rate == 16000
    return np.tile(wav, 60 * rate // wav.shape[0] + 1)[: 60 * rate].copy()
