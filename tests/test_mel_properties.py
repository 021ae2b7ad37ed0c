"""The C++ mel spectrogram against the NumPy transcription of docs/NUMERICS.md section 2.

The reference is tests/reference_mel.py (plain NumPy + scipy's window +
librosa's filterbank, no synctalk_audio). Tolerances, max abs error over the
whole (80, T) spectrogram (values in [-4, 4]):

- float64 output: 1e-9;
- float32 output: 1e-6 (rounding float64 -> float32 alone is up to 2.4e-7).

NumPy, SciPy, librosa and libm results differ in their last bits from one
CPU to another (tests/tolerances.py), so nothing here is compared with them
bit for bit: the window within 1e-15 (the port tolerance of tests/vectors),
the filterbank within one float32 ulp per weight, pre-emphasis and framing
within one rounding. The core is compared with itself bit for bit.

Property tests (hypothesis) draw lengths 1 .. 20000 samples — a third of them
below 400, where the 400-sample reflect pad wraps around the signal more than
once — amplitudes 1e-6 .. 10 (log-uniform) or exactly 0, several signal kinds,
both pad modes and float32 / float64 input. Deterministic tests pin the frame
count, the window, the filterbank, every intermediate stage and where the two
pad modes may differ.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference_mel as R
import scipy.signal
import tolerances
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from synctalk_audio import MelOptions, melspectrogram
from synctalk_audio.frontends.mel import mel_processor

pytestmark = pytest.mark.numeric

TOL = {np.float64: 1e-9, np.float32: 1e-6}
#: The core's window (libm cos) vs SciPy's (NumPy's cos kernels): w = 0.5 + 0.5 cos(t)
#: differs in the last bits; the window tolerance tests/vectors/index.json gives a port.
WINDOW_ABS = 1e-15
PAD_MODES = ("constant", "reflect")
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = (
    "noise",
    "tone",
    "noise+tone",
    "speechlike",
    "sparse",
    "dc",
    "chirp",
    "silent_start",
    "zeros",
)


def make_signal(kind: str, n: int, amplitude: float, seed: int) -> np.ndarray:
    """A float64 test signal of ``n`` samples peaking at ``amplitude`` (or all zero)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000.0
    if kind == "noise":
        x = rng.standard_normal(n)
    elif kind == "tone":
        x = np.sin(2 * np.pi * rng.uniform(30, 7990) * t + rng.uniform(0, 2 * np.pi))
    elif kind == "noise+tone":
        x = 0.3 * rng.standard_normal(n) + np.sin(2 * np.pi * rng.uniform(80, 4000) * t)
    elif kind == "speechlike":
        # low-passed noise under a 4 Hz syllabic envelope
        b, a = scipy.signal.butter(2, 3000 / 8000)
        env = 0.5 * (1 - np.cos(2 * np.pi * 4 * t + rng.uniform(0, 2 * np.pi)))
        x = scipy.signal.lfilter(b, a, rng.standard_normal(n)) * env
    elif kind == "sparse":
        x = np.zeros(n)
        x[rng.integers(0, n, size=max(1, n // 400))] = rng.choice([-1.0, 1.0])
    elif kind == "dc":
        x = np.ones(n)
    elif kind == "chirp":
        x = scipy.signal.chirp(t, f0=50, t1=max(t[-1], 1e-3), f1=7900)
    elif kind == "silent_start":
        x = rng.standard_normal(n)
        x[: n // 2] = 0.0
    elif kind == "zeros":
        return np.zeros(n)
    else:  # pragma: no cover
        raise AssertionError(kind)
    peak = np.abs(x).max()
    return x * (amplitude / peak) if peak > 0 else x


signals = st.builds(
    dict,
    kind=st.sampled_from(KINDS),
    n=st.one_of(st.integers(1, 399), st.integers(400, 1600), st.integers(1601, 20000)),
    amplitude=st.one_of(st.just(0.0), st.floats(-6.0, 1.0).map(lambda e: 10.0**e)),
    seed=st.integers(0, 2**32 - 1),
)


def check(got: np.ndarray, want: np.ndarray, tol: float, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape}, reference {want.shape}"
    err = np.abs(got.astype(np.float64) - want)
    worst = float(err.max())
    if worst > tol:
        b, f = np.unravel_index(int(err.argmax()), err.shape)
        raise AssertionError(
            f"{what}: max abs error {worst:.3g} > tolerance {tol:g} at mel bin {b}, frame {f}"
            f" of {want.shape[1]} (got {got[b, f]!r}, reference {want[b, f]!r})"
        )


@SETTINGS
@given(
    sig=signals,
    pad_mode=st.sampled_from(PAD_MODES),
    in_dtype=st.sampled_from([np.float32, np.float64]),
    out_dtype=st.sampled_from([np.float32, np.float64]),
)
@example(
    sig=dict(kind="noise", n=1, amplitude=1.0, seed=0),
    pad_mode="reflect",
    in_dtype=np.float32,
    out_dtype=np.float64,
)
@example(
    sig=dict(kind="noise", n=2, amplitude=10.0, seed=1),
    pad_mode="reflect",
    in_dtype=np.float64,
    out_dtype=np.float64,
)
@example(
    sig=dict(kind="tone", n=399, amplitude=10.0, seed=2),
    pad_mode="reflect",
    in_dtype=np.float32,
    out_dtype=np.float64,
)
@example(
    sig=dict(kind="zeros", n=20000, amplitude=0.0, seed=0),
    pad_mode="constant",
    in_dtype=np.float32,
    out_dtype=np.float32,
)
def test_mel_matches_transcription(sig, pad_mode, in_dtype, out_dtype):
    x = make_signal(**sig).astype(in_dtype)
    want = R.melspectrogram(x, R.Params(pad_mode=pad_mode))
    got = melspectrogram(x, pad_mode=pad_mode, dtype=out_dtype)
    assert got.dtype == np.dtype(out_dtype)
    check(
        got,
        want,
        TOL[out_dtype],
        f"{sig} {pad_mode} in={np.dtype(in_dtype)} out={np.dtype(out_dtype)}",
    )


@SETTINGS
@given(n=st.integers(1, 50000), pad_mode=st.sampled_from(PAD_MODES))
def test_frame_count(n, pad_mode):
    x = np.zeros(n, dtype=np.float32)
    x[::7] = 0.25
    got = mel_processor(MelOptions(pad_mode=pad_mode)).melspectrogram(x, "float32")
    assert got.shape == (80, 1 + n // 200), f"n={n}: shape {got.shape}, want (80, {1 + n // 200})"
    assert MelOptions().num_frames(n) == 1 + n // 200 == R.frame_count(n)


def test_frame_count_boundaries():
    for n in (1, 199, 200, 201, 399, 400, 401, 799, 800, 801, 16000, 16199, 16200):
        got = melspectrogram(np.full(n, 0.1, dtype=np.float32))
        assert got.shape[1] == 1 + n // 200, f"n={n}: {got.shape[1]} frames"


def test_window_is_scipys_periodic_hann():
    proc = mel_processor(MelOptions())
    want = scipy.signal.get_window("hann", 800)
    assert proc.window.dtype == np.float64 and proc.window.shape == want.shape
    err = np.abs(proc.window - want)
    assert err.max() <= WINDOW_ABS, (
        f"window differs from get_window('hann', 800) by {err.max():.3g} > {WINDOW_ABS:g}"
        f" at index {int(err.argmax())}"
    )
    assert tolerances.max_abs_diff(proc.window, R.window()) <= WINDOW_ABS


@pytest.mark.parametrize("win_length", [800, 799, 640, 401, 1])
def test_window_centred_like_librosa_pad_center(win_length):
    import librosa

    proc = mel_processor(MelOptions(win_length=win_length))
    want = librosa.util.pad_center(scipy.signal.get_window("hann", win_length), size=800)
    assert proc.window.shape == want.shape, f"win_length={win_length}"
    # same zeros (the centring must be exact), same values within the cos rounding
    assert np.array_equal(proc.window == 0.0, want == 0.0), f"win_length={win_length}: centring"
    err = tolerances.max_abs_diff(proc.window, want)
    assert err <= WINDOW_ABS, f"win_length={win_length}: {err:.3g} > {WINDOW_ABS:g}"


def test_filterbank_is_librosas():
    """Within one float32 ulp per weight: librosa's mel frequencies come from NumPy's
    exp/log kernels, the core's from libm; either may round a float32 weight the other
    way on some CPU (bitwise equal on every machine tried)."""
    import librosa

    proc = mel_processor(MelOptions())
    want = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    got = proc.filterbank
    assert got.dtype == np.float32 == want.dtype
    assert got.shape == want.shape == (80, 401)
    tolerances.assert_elementwise_ulps(
        got, want, tolerances.FLOAT32_ROUNDING_ULPS, "filterbank vs librosa's"
    )


@pytest.mark.parametrize(
    "params",
    [
        dict(n_mels=40),
        dict(fmin=0.0, fmax=8000.0),
        dict(n_fft=1024, win_length=1024, hop_length=256, sample_rate=22050, fmax=11025.0),
        dict(n_fft=512, win_length=400, hop_length=160, n_mels=64, fmin=20.0, fmax=7000.0),
    ],
)
def test_filterbank_other_options(params):
    import librosa

    o = MelOptions(**params)
    want = librosa.filters.mel(
        sr=o.sample_rate, n_fft=o.n_fft, n_mels=o.n_mels, fmin=o.fmin, fmax=o.fmax
    )
    tolerances.assert_elementwise_ulps(
        mel_processor(o).filterbank, want, tolerances.FLOAT32_ROUNDING_ULPS, str(params)
    )


def _stage_cases():
    rng = np.random.default_rng(1234)
    cases = {
        "noise_4000_f32": (rng.standard_normal(4000) * 0.3).astype(np.float32),
        "tone_7777_f64": 0.8 * np.sin(2 * np.pi * 440 * np.arange(7777) / 16000),
        "short_150_f32": (rng.standard_normal(150) * 0.5).astype(np.float32),
        "one_sample_f64": np.array([0.5]),
        "silent_start_5000_f32": np.concatenate(
            [np.zeros(2500), rng.standard_normal(2500) * 0.1]
        ).astype(np.float32),
    }
    return [pytest.param(x, pm, id=f"{name}-{pm}") for name, x in cases.items() for pm in PAD_MODES]


# (comparison, tolerance) per stage; "rel" is relative to the max |value| of the
# stage, except for mel: relative to max(max mel, max magnitude x max filter sum),
# the size of a mel value the magnitude could produce (a clip whose energy lies
# outside every filter has mel values of pure rounding noise, ~1e-16). "ulps" is
# in ulps of the stage's largest |value|: pre-emphasis is one rounding (a fused
# multiply-add may change it), frames copy it, windowed adds one product.
STAGE_TOL = {
    "preemphasis": ("ulps", tolerances.ONE_ROUNDING_ULPS),
    "frames": ("ulps", tolerances.ONE_ROUNDING_ULPS),
    "windowed": ("ulps", 2 * tolerances.ONE_ROUNDING_ULPS),
    "spectrum": ("rel", 1e-12),
    "magnitude": ("rel", 1e-12),
    "mel": ("rel", 1e-12),
    "db": ("abs", 1.25e-8),  # = 1e-9 on the normalized scale (x 8/100)
    "normalized": ("abs", 1e-9),
}


@pytest.mark.parametrize("x, pad_mode", _stage_cases())
def test_every_stage_matches_transcription(x, pad_mode):
    got = mel_processor(MelOptions(pad_mode=pad_mode)).stages(x)
    want = R.stages(x, R.Params(pad_mode=pad_mode))
    assert set(got) == set(R.STAGE_NAMES), sorted(got)
    for name in R.STAGE_NAMES:
        g, w = got[name], want[name]
        assert g.shape == w.shape, f"{name}: shape {g.shape}, reference {w.shape}"
        assert g.dtype == w.dtype, f"{name}: dtype {g.dtype}, reference {w.dtype}"
        kind, tol = STAGE_TOL[name]
        err = float(np.abs(g - w).max())
        if kind == "ulps":
            tolerances.assert_scale_ulps(g, w, tol, name)
        elif kind == "rel":
            scale = float(np.abs(w).max())
            if name == "mel":
                row_sum = float(R.filterbank().astype(np.float64).sum(axis=1).max())
                scale = max(scale, float(want["magnitude"].max()) * row_sum)
            assert err <= tol * scale, (
                f"{name}: max abs error {err:.3g} > {tol:g} x max |reference| ({scale:.3g})"
            )
        else:
            assert err <= tol, f"{name}: max abs error {err:.3g} > {tol:g}"
    # the stages chain into the public result
    full = mel_processor(MelOptions(pad_mode=pad_mode)).melspectrogram(x, "float64")
    assert np.array_equal(full, got["normalized"].T), "stages()['normalized'].T != melspectrogram"


def test_preemphasis_transcription_is_lfilter():
    """The reference's own first step is scipy.signal.lfilter, as the spec says: within
    one rounding (bitwise here; a SciPy build that fuses the multiply-add may differ)."""
    rng = np.random.default_rng(5)
    for x in (
        rng.standard_normal(1000).astype(np.float32),
        rng.standard_normal(33),
        np.array([0.3], dtype=np.float32),
    ):
        want = scipy.signal.lfilter([1, -0.97], [1], x)
        tolerances.assert_scale_ulps(
            R.preemphasis(x), want, tolerances.ONE_ROUNDING_ULPS, f"n={len(x)}"
        )


@SETTINGS
@given(sig=signals)
def test_pad_modes_differ_only_in_two_edge_frames(sig):
    x = make_signal(**sig).astype(np.float32)
    constant = melspectrogram(x, pad_mode="constant", dtype=np.float64)
    reflect = melspectrogram(x, pad_mode="reflect", dtype=np.float64)
    T = constant.shape[1]
    inner = slice(2, T - 2)
    assert np.array_equal(constant[:, inner], reflect[:, inner]), (
        f"{sig}: pad modes differ inside frames 2..{T - 3}"
    )
    # and the reference agrees on where they differ (two NumPy runs: within the rounding)
    want_c = R.melspectrogram(x, R.Params(pad_mode="constant"))
    want_r = R.melspectrogram(x, R.Params(pad_mode="reflect"))
    tolerances.assert_scale_ulps(
        want_r[:, inner], want_c[:, inner], tolerances.SAME_COMPUTATION_ULPS, "reference"
    )


def test_pad_modes_do_differ_at_the_edges():
    x = (np.random.default_rng(3).standard_normal(16000) * 0.3).astype(np.float32)
    constant = melspectrogram(x, pad_mode="constant", dtype=np.float64)
    reflect = melspectrogram(x, pad_mode="reflect", dtype=np.float64)
    differs = np.nonzero(np.abs(constant - reflect).max(axis=0) > 1e-9)[0].tolist()
    T = constant.shape[1]
    assert differs == [0, 1, T - 2, T - 1], differs


OTHER_OPTIONS = [
    dict(win_length=640),
    dict(n_mels=40, fmin=0.0, fmax=8000.0),
    dict(preemphasis=0.0),
    dict(preemphasis=0.5, ref_level_db=10.0, min_level_db=-80.0, max_abs_value=1.0),
    dict(n_fft=512, win_length=400, hop_length=160, n_mels=64, fmin=20.0, fmax=7000.0),
    dict(n_fft=1024, win_length=1024, hop_length=256, sample_rate=22050, fmax=11025.0),
    dict(n_fft=810, win_length=810, hop_length=210),  # 810 = 2 * 3^4 * 5: radix-3 path
    dict(n_fft=770, win_length=700, hop_length=100),  # 770 = 2 * 5 * 7 * 11: generic radix
]


@pytest.mark.parametrize("pad_mode", PAD_MODES)
@pytest.mark.parametrize(
    "params", OTHER_OPTIONS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items())
)
def test_other_options_match_transcription(params, pad_mode):
    o = MelOptions(pad_mode=pad_mode, **params)
    rng = np.random.default_rng(9)
    for n in (1, 300, 5000, 12345):
        x = make_signal("speechlike", n, 0.5, int(rng.integers(1 << 30))).astype(np.float32)
        want = R.melspectrogram(x, R.Params.from_options(o))
        got = melspectrogram(x, options=o, dtype=np.float64)
        check(got, want, 1e-9, f"{params} {pad_mode} n={n}")


@pytest.mark.parametrize("n_fft", [801, 799])
def test_odd_n_fft_frame_count_matches_librosa(n_fft):
    o = MelOptions(n_fft=n_fft, win_length=n_fft)
    x = make_signal("noise", 4000, 0.1, 0).astype(np.float32)
    want = R.melspectrogram(x, R.Params.from_options(o))  # librosa.stft gives 20 frames too
    got = melspectrogram(x, options=o, dtype=np.float64)
    assert got.shape == want.shape, f"n_fft={n_fft}: {got.shape} frames, librosa {want.shape}"
