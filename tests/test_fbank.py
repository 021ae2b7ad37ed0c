"""The Kaldi fbank of the C++ core (the ``wenet`` mode's front end).

Against the NumPy float64 definition (tests/reference/kaldi_fbank.py) stage by
stage, against torchaudio's stored float64 and float32 fbanks
(tests/golden/modes, made by upstream's logic), online == offline bit for bit
for any chunking, and the boundary checks of the bindings.

Tolerances, from measured facts (docs/DECISIONS.md, "Kaldi fbank"):

- The core is the NumPy float64 definition fed the core's float32 mel filters
  up to float64 rounding: 3.6e-11 measured on 21 s of speech; 1e-9 allowed.
- torchaudio builds its filters in float32 with SLEEF's SIMD logf (1 ulp),
  the core with a correctly rounded float32 log: 41 of 20480 weights differ,
  by at most 7.1e-6 (1e-5 allowed). On the stored clips that moves the log
  energies by at most FBANK64_TOL from torchaudio's float64 fbank.
- torchaudio's float32 fbank (what upstream computes) is up to 3.9e-3 from
  float64 on speech: FBANK32_TOL.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import reference_data
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import kaldi_fbank as ref
from reference import ultralight

from synctalk_audio import ParameterError, _core
from synctalk_audio.frontends.fbank import fbank_processor, kaldi_fbank, online_fbank
from synctalk_audio.options import FbankOptions

TESTS = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(TESTS, "golden", "modes")
with open(os.path.join(GOLDEN, "manifest.json"), encoding="utf-8") as _f:
    MANIFEST = json.load(_f)

#: Core vs NumPy float64 definition with the same (float32) filters.
DEFINITION_TOL = 1e-9
#: Core's float32 filter weights vs the float64 definition's: 1.38e-5 measured
#: (a float32 ulp of a mel value is ~1/100000 of the filter spacing).
BANK_TOL = 2e-5
#: Core vs torchaudio float64 fbank (stored clips <= 3 s; 7.0e-5 on 21 s of speech).
FBANK64_TOL = 1.5e-4  # 5.0e-5 measured (speech_16k_s16_mono)
#: Core vs torchaudio float32 fbank (upstream, stored): 2.9e-4 measured on the stored
#: clips, 3.9e-3 on 21 s of speech (speech_16k_long_21s).
FBANK32_TOL = 5e-3


def _speech_int16(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) + 0.05 * rng.standard_normal(
        n
    )
    return np.trunc(np.clip(x, -1, 1) * 32767).astype(np.float32)


def _stored_cases() -> list[str]:
    out = []
    for name, facts in sorted(MANIFEST["cases"].items()):
        with np.load(os.path.join(GOLDEN, name + ".npz")) as data:
            if "fbank64" in data.files and facts["rate"] == 16000 and facts["channels"] == 1:
                out.append(name)
    return out


@pytest.mark.numeric
def test_stages_follow_the_definition():
    wave = _speech_int16(4000, 1).astype(np.float64)
    stages = fbank_processor().stages(wave)
    frames = ref.frames_of(wave)
    np.testing.assert_array_equal(stages["frames"], frames)
    dc = frames - frames.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(stages["dc_removed"], dc, rtol=0, atol=1e-10)
    pre = dc - 0.97 * np.concatenate([dc[:, :1], dc[:, :-1]], axis=1)
    np.testing.assert_allclose(stages["preemphasis"], pre, rtol=0, atol=1e-10)
    windowed = np.pad(pre * ref.povey_window(), ((0, 0), (0, 112)))
    np.testing.assert_allclose(stages["windowed"], windowed, rtol=0, atol=1e-10)
    spectrum = np.fft.rfft(windowed, axis=1)
    scale = np.abs(spectrum).max()
    np.testing.assert_allclose(stages["spectrum"], spectrum, rtol=0, atol=1e-12 * scale)
    power = spectrum.real**2 + spectrum.imag**2
    np.testing.assert_allclose(stages["power"], power, rtol=1e-9, atol=1e-12 * scale**2)
    banks = fbank_processor().mel_banks.astype(np.float64)
    energy = power @ banks.T
    np.testing.assert_allclose(stages["energy"], energy, rtol=1e-9)
    np.testing.assert_allclose(
        stages["log"], np.log(np.maximum(energy, ref.FLT_EPSILON)), atol=1e-9
    )
    np.testing.assert_array_equal(stages["log"], fbank_processor().fbank(wave, "float64"))


def test_window_and_banks():
    proc = fbank_processor()
    np.testing.assert_allclose(proc.window, ref.povey_window(), rtol=0, atol=1e-15)
    banks = proc.mel_banks
    assert banks.shape == (80, 257) and banks.dtype == np.float32
    assert not banks[:, 256].any()  # the Nyquist bin
    assert float(np.abs(banks - ref.mel_banks()).max()) < BANK_TOL
    # float32 as torchaudio builds them: the left edges are float32 sums.
    assert not np.array_equal(banks.astype(np.float64), ref.mel_banks())


@pytest.mark.numeric
@pytest.mark.parametrize("n", [400, 401, 559, 560, 16000, 48123])
def test_fbank_equals_the_float64_definition(n):
    wave = _speech_int16(n, n)
    ours = kaldi_fbank(wave, dtype=np.float64)
    want = ref.kaldi_fbank(wave, banks=fbank_processor().mel_banks)
    assert ours.shape == want.shape == (1 + (n - 400) // 160, 80)
    assert float(np.abs(ours - want).max()) < DEFINITION_TOL
    # float32 input of the same int16 values: the same result.
    np.testing.assert_array_equal(ours, kaldi_fbank(wave.astype(np.float64), dtype=np.float64))
    np.testing.assert_array_equal(kaldi_fbank(wave), ours.astype(np.float32))


@pytest.mark.numeric
@pytest.mark.parametrize("name", _stored_cases())
def test_fbank_against_stored_torchaudio(name):
    import soundfile as sf

    facts = MANIFEST["cases"][name]
    speech, _ = sf.read(os.path.join(TESTS, facts["file"]))
    wave = ultralight.wenet_waveform(speech)
    ours = kaldi_fbank(wave, dtype=np.float64)
    data = reference_data.load_npz(os.path.join(GOLDEN, name + ".npz"))
    fbank64, fbank32 = data["fbank64"], data["fbank"]
    assert ours.shape == fbank64.shape
    assert float(np.abs(ours - fbank64).max()) < FBANK64_TOL
    assert float(np.abs(ours - fbank32).max()) < FBANK32_TOL


def test_silence_is_the_log_floor():
    feats = kaldi_fbank(np.zeros(1000, np.float32), dtype=np.float64)
    assert feats.shape == (4, 80)
    assert np.all(feats == np.log(np.float64(np.finfo(np.float32).eps)))


def test_fewer_samples_than_a_frame_give_no_rows():
    assert kaldi_fbank(np.ones(399, np.float32)).shape == (0, 80)


def _stream(wave: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, list[int]]:
    online = online_fbank()
    rows, ready, at, i = [], [], 0, 0
    while at < wave.size:
        size = sizes[i % len(sizes)]
        i += 1
        online.accept_waveform(wave[at : at + size])
        at += size
        ready.append(online.num_frames_ready)
        assert online.num_frames_ready == FbankOptions().num_frames(min(at, wave.size))
        rows.append(online.pop_frames())
    online.input_finished()
    assert online.num_frames_pending == 0
    return np.concatenate(rows), ready


@pytest.mark.parametrize("sizes", [[1], [7], [160], [399, 1, 2], [400], [401, 13], [10**6]])
def test_online_equals_offline_bit_for_bit(sizes):
    wave = _speech_int16(20000, 3)
    batch = kaldi_fbank(wave)
    streamed, _ = _stream(wave, sizes)
    assert streamed.dtype == np.float32
    np.testing.assert_array_equal(streamed, batch)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=6000),
    sizes=st.lists(st.integers(min_value=1, max_value=2500), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_online_equals_offline_property(n, sizes, seed):
    wave = _speech_int16(n, seed)
    if n < 400:
        streamed, _ = _stream(wave, sizes)
        assert streamed.shape == (0, 80)
        return
    streamed, _ = _stream(wave, sizes)
    np.testing.assert_array_equal(streamed, kaldi_fbank(wave))


def test_online_samples_needed_and_reset():
    online = online_fbank()
    assert online.samples_needed(0) == 400 and online.samples_needed(5) == 1200
    online.accept_waveform(np.zeros(399, np.float32))
    assert online.num_frames_ready == 0
    online.accept_waveform(np.zeros(1, np.float32))
    assert online.num_frames_ready == 1
    online.input_finished()
    with pytest.raises(ValueError, match="after InputFinished"):
        online.accept_waveform(np.zeros(1, np.float32))
    online.reset()
    assert online.num_samples_received == 0 and not online.is_finished


def test_bindings_validate_their_input():
    proc = fbank_processor()
    with pytest.raises(TypeError, match="float32 or float64"):
        proc.fbank(np.zeros(500, np.int16))
    with pytest.raises(ValueError, match="1-D"):
        proc.fbank(np.zeros((2, 500)))
    with pytest.raises(ValueError, match="C-contiguous"):
        proc.fbank(np.zeros(1000)[::2])
    with pytest.raises(ValueError, match="empty"):
        proc.fbank(np.zeros(0))
    with pytest.raises(TypeError, match="dtype"):
        proc.fbank(np.zeros(500), "float16")
    bad = np.zeros(1000)
    bad[600] = np.inf
    with pytest.raises(ValueError, match="sample 600"):
        proc.fbank(bad)
    online = online_fbank()
    with pytest.raises(TypeError, match="float32"):
        online.accept_waveform(np.zeros(10))
    with pytest.raises(ValueError, match="1-D"):
        online.accept_waveform(np.zeros((2, 10), np.float32))
    nan = np.zeros(10, np.float32)
    nan[3] = np.nan
    with pytest.raises(ValueError, match="sample 3"):
        online.accept_waveform(nan)
    assert online.num_samples_received == 0
    bad_options = _core.FbankOptions()
    bad_options.frame_shift = 0
    with pytest.raises(ValueError, match="frame_shift"):
        _core.FbankProcessor(bad_options)


def test_python_api_errors():
    with pytest.raises(ParameterError, match="wave must be 1-D"):
        kaldi_fbank(np.zeros((2, 500)))
    with pytest.raises(ParameterError, match="sample 10"):
        kaldi_fbank(np.where(np.arange(500) == 10, np.nan, 0.0))
    with pytest.raises(TypeError, match="int16"):
        kaldi_fbank(np.zeros(500, np.int16))
    with pytest.raises(TypeError, match="dtype"):
        kaldi_fbank(np.zeros(500), dtype=np.int32)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_bins", 3, "num_bins=3: must be in \\[4, 4096\\]"),
        ("frame_length", 1, "frame_length=1: must be in \\[2, 65536\\]"),
        ("frame_shift", 0, "frame_shift=0"),
        ("high_freq", 8001.0, "high_freq=8001: must be <= sample_rate / 2"),
        ("low_freq", -1.0, "low_freq=-1: must be >= 0"),
        ("preemphasis", 1.5, "preemphasis=1.5"),
        ("sample_rate", 10**7, "sample_rate=10000000"),
        ("remove_dc_offset", 1, "remove_dc_offset=1: expected a bool"),
        ("num_bins", 80.0, "num_bins=80.0: expected an integer"),
    ],
)
def test_options_are_validated(field, value, message):
    with pytest.raises(ParameterError, match=message):
        FbankOptions(**{field: value})


def test_options_mirror_the_core():
    core = FbankOptions().to_core()
    for name in (
        "sample_rate",
        "frame_length",
        "frame_shift",
        "num_bins",
        "low_freq",
        "high_freq",
        "preemphasis",
        "remove_dc_offset",
    ):
        assert getattr(core, name) == getattr(FbankOptions(), name)
    for n in (0, 399, 400, 559, 560, 10**6):
        assert FbankOptions().num_frames(n) == core.num_frames(n)
    assert core.padded_length() == 512


def test_other_options_change_the_result():
    wave = _speech_int16(4000, 5)
    base = kaldi_fbank(wave, dtype=np.float64)
    no_dc = kaldi_fbank(wave, options=FbankOptions(remove_dc_offset=False), dtype=np.float64)
    assert not np.array_equal(base, no_dc)
    f40 = kaldi_fbank(wave, options=FbankOptions(num_bins=40))
    assert f40.shape == (base.shape[0], 40)
