"""StreamingResampler: soxr-HQ resampling in pieces equals the one-shot loader's.

Bit equality is the package's own promise (stream == batch, one machine):
both sides run the same soxr build on the same samples.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synctalk_audio.frontends.audio import (
    TARGET_RATE,
    StreamingResampler,
    _resample,
    resampled_length,
)


def _pieces(signal: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    out, at = [], 0
    for size in sizes:
        out.append(signal[at : at + size])
        at += size
    out.append(signal[at:])
    return out


@settings(max_examples=40, deadline=None)
@given(
    rate=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]),
    dtype=st.sampled_from([np.float32, np.float64]),
    length=st.integers(0, 6000),
    sizes=st.lists(st.integers(0, 2500), max_size=8),
    seed=st.integers(0, 2**16),
)
def test_any_chunking_equals_the_whole(rate, dtype, length, sizes, seed):
    signal = np.random.default_rng(seed).uniform(-1, 1, length).astype(dtype)
    stream = StreamingResampler(rate, dtype)
    parts = [stream.push(piece) for piece in _pieces(signal, sizes)] + [stream.finish()]
    got = np.concatenate(parts)
    want = _resample(signal, rate, TARGET_RATE)
    assert got.dtype == want.dtype == np.dtype(dtype)
    assert got.shape == (resampled_length(length, rate, TARGET_RATE),)
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize(
    ("n", "rate", "want"), [(44100, 44100, 16000), (1, 44100, 1), (3, 48000, 1)]
)
def test_length_rule_is_librosas_ceiling(n, rate, want):
    assert resampled_length(n, rate, TARGET_RATE) == want
