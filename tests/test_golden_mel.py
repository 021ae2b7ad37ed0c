"""`melspectrogram` against SyncTalk_2D's ``utils.melspectrogram`` on librosa 0.11.0.

Input: the golden ``librosa.load`` samples of each case. Reference: the mel
computed by tests/golden/make_golden.py in float64 with both STFT pad modes.

Tolerances (max abs error over the whole (80, T) spectrogram, values in
[-4, 4]):

- float32 output: <= 1e-6 (float32 rounding alone is up to 2.4e-7 near 4);
- float64 output: <= 1e-9.

Frame counts must be equal: T = 1 + len(wav) // 200. The max abs error of
each case is printed in the terminal summary ("golden mel max abs error") and
recorded as a junit-xml property (``pytest --junitxml=...``).
"""

from __future__ import annotations

import numpy as np
import pytest

from synctalk_audio import MelOptions, melspectrogram

pytestmark = pytest.mark.numeric

TOLERANCE = {np.float32: 1e-6, np.float64: 1e-9}
PAD_MODES = ("constant", "reflect")
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


def check_mel(got: np.ndarray, want: np.ndarray, dtype: type, what: str) -> float:
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}, asked for {np.dtype(dtype)}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, reference {want.shape}"
    assert got.flags.c_contiguous, f"{what}: not C-contiguous"
    err = np.abs(got.astype(np.float64) - want)
    worst = float(err.max())
    tol = TOLERANCE[dtype]
    bin_, frame = np.unravel_index(int(err.argmax()), err.shape)
    assert worst <= tol, (
        f"{what}: max abs error {worst:.3g} > tolerance {tol:g} at mel bin {bin_}, frame"
        f" {frame} of {want.shape[1]} (got {got[bin_, frame]!r}, reference {want[bin_, frame]!r})"
    )
    return worst


@DTYPES
@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_mel_matches_reference(golden_case, pad_mode, dtype, record_mel_error):
    want = golden_case.mel(pad_mode)
    got = melspectrogram(golden_case.samples, pad_mode=pad_mode, dtype=dtype)
    worst = check_mel(got, want, dtype, f"{golden_case.name} pad_mode={pad_mode} {np.dtype(dtype)}")
    record_mel_error(golden_case.name, pad_mode, np.dtype(dtype).name, worst)


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_mel_frame_count(golden_case, pad_mode):
    n = golden_case.samples.shape[0]
    got = melspectrogram(golden_case.samples, pad_mode=pad_mode)
    assert got.shape == (80, 1 + n // 200) == tuple(golden_case.facts["mel_shape"]), (
        f"{golden_case.name}: mel shape {got.shape}, reference"
        f" {tuple(golden_case.facts['mel_shape'])} (= 80 x (1 + {n} // 200))"
    )
    assert MelOptions().num_frames(n) == got.shape[1]


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_options_pad_mode_equals_keyword(golden_case, pad_mode):
    by_keyword = melspectrogram(golden_case.samples, pad_mode=pad_mode)
    by_options = melspectrogram(golden_case.samples, options=MelOptions(pad_mode=pad_mode))
    assert np.array_equal(by_keyword, by_options), golden_case.name


def test_default_pad_mode_is_constant(golden_case):
    assert np.array_equal(
        melspectrogram(golden_case.samples),
        melspectrogram(golden_case.samples, pad_mode="constant"),
    ), golden_case.name


def test_float64_input_gives_the_same_mel(golden_case):
    """float32 -> float64 is exact, and the reference pre-emphasis runs in float64
    either way, so float64 input of the same values must meet the same tolerance."""
    got = melspectrogram(golden_case.samples.astype(np.float64), dtype=np.float64)
    check_mel(got, golden_case.mel("constant"), np.float64, f"{golden_case.name} float64 input")


def test_pad_modes_differ_only_where_the_reference_does(golden_case):
    constant = melspectrogram(golden_case.samples, pad_mode="constant", dtype=np.float64)
    reflect = melspectrogram(golden_case.samples, pad_mode="reflect", dtype=np.float64)
    differing = np.nonzero(np.abs(constant - reflect).max(axis=0) > TOLERANCE[np.float64])[0]
    want = golden_case.facts["pad_modes_differ_in_frames"]
    assert set(differing.tolist()) <= set(want), (
        f"{golden_case.name}: pad modes differ in frames {differing.tolist()},"
        f" reference only in {want}"
    )
