"""Consistency of the hubert / wenet references and their golden data (tests/golden/modes).

These need NumPy only: they check the committed golden files against the
upstream arithmetic (T, F, K, shapes), the per-frame window rule, and the
NumPy float64 Kaldi fbank (reference/kaldi_fbank.py) against torchaudio's
stored float64 and float32 fbanks.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import reference_data
from reference import kaldi_fbank, ultralight

TESTS = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(TESTS, "golden", "modes")
with open(os.path.join(GOLDEN, "manifest.json"), encoding="utf-8") as _f:
    MANIFEST = json.load(_f)
CASES = sorted(MANIFEST["cases"])

pytestmark = pytest.mark.numeric


def _arrays(name: str) -> dict[str, np.ndarray]:
    return reference_data.load_npz(os.path.join(GOLDEN, name + ".npz"))


@pytest.mark.parametrize("name", CASES)
def test_golden_case_matches_upstream_arithmetic(name):
    facts = MANIFEST["cases"][name]
    with open(os.path.join(TESTS, facts["file"]), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == facts["file_sha256"], facts["file"]
    n = facts["samples_16k"]
    t = (n - 80) // 320
    assert facts["hubert_T"] == t
    assert facts["hubert_shape"] == [(t + 1) // 2, 2, 1024]
    padded = 32 * 160 + n + 35 * 160
    f = 1 + (padded - 400) // 160
    assert facts["wenet_F"] == f
    assert facts["wenet_K"] == ultralight.wenet_count(f)
    assert facts["wenet_shape"] == [facts["wenet_K"], 16, 512]
    arrays = _arrays(name)
    for key in ("hubert", "wenet"):
        full = facts[f"{key}_shape"]
        stride = facts[f"{key}_column_stride"]
        assert list(arrays[key].shape) == full[:-1] + [len(range(0, full[-1], stride))]
        assert arrays[key].dtype == np.float32
    if t % 2:  # the padded row is half zero
        assert not arrays["hubert"][-1, 1].any()
        assert arrays["hubert"][-1, 0].any()
    assert arrays["fbank"].shape == (f, 80)


@pytest.mark.parametrize("frames", range(0, 160))
def test_wenet_count_is_the_length_of_upstreams_loop(frames):
    feat = np.zeros((frames, 80), dtype=np.float32)
    chunks = list(ultralight.wenet_chunks(feat))
    assert len(chunks) == ultralight.wenet_count(frames)
    assert all(c.shape == (1, 1, 67, 80) for c in chunks)


@pytest.mark.parametrize(("mode", "h"), sorted(ultralight.FRAME_SHAPES))
@pytest.mark.parametrize("rows", [1, 3, 20])
def test_frame_window_rows_and_zero_padding(mode, h, rows):
    row_shape = ultralight.ROW_SHAPES[mode]
    feats = np.arange(1, rows * int(np.prod(row_shape)) + 1, dtype=np.float32)
    feats = feats.reshape(rows, *row_shape)
    for i in range(rows):
        window = ultralight.frame_window(feats, i, h, mode)
        assert window.shape == ultralight.FRAME_SHAPES[(mode, h)]
        flat = window.reshape(2 * h, *row_shape)
        for j in range(2 * h):
            r = i - h + j
            want = feats[r] if 0 <= r < rows else np.zeros(row_shape, np.float32)
            np.testing.assert_array_equal(flat[j], want)


# 16 kHz mono cases with a float64 fbank: read with soundfile alone, no resampling
FBANK64_CASES = [
    n
    for n in CASES
    if "fbank64" in _arrays(n)
    and MANIFEST["cases"][n]["rate"] == 16000
    and MANIFEST["cases"][n]["channels"] == 1
]


@pytest.mark.parametrize("name", FBANK64_CASES)
def test_numpy_kaldi_fbank_against_torchaudio(name):
    """float64 definition vs torchaudio float64 (2.5e-4: its float32 mel filters) and float32."""
    import soundfile as sf

    facts = MANIFEST["cases"][name]
    speech, _ = sf.read(os.path.join(TESTS, facts["file"]))
    ours = kaldi_fbank.kaldi_fbank(ultralight.wenet_waveform(speech))
    arrays = _arrays(name)
    assert float(np.abs(ours - arrays["fbank64"]).max()) < 3e-4
    assert float(np.abs(ours - arrays["fbank"]).max()) < 5e-3
