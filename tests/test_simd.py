"""SIMD lanes == the scalar reference, bit for bit; threads within one clip.

The core's own promise (docs/NUMERICS.md, "SIMD lanes"): every SIMD level
(SSE2, AVX2, AVX-512F, NEON) computes each frame with exactly the scalar
code's operations in the same order, so the mel, the fbank and the FFT are
bitwise the scalar path's on every input; and any thread count gives the same
bits. Every level this CPU has is tested (the set is checked against what the
CPU reports, so a missing kernel cannot pass by being skipped).
"""

from __future__ import annotations

import os
import platform
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synctalk_audio import MelOptions, ParameterError, _core, melspectrogram
from synctalk_audio.frontends.fbank import fbank_processor, kaldi_fbank
from synctalk_audio.frontends.mel import mel_processor, simd_levels
from synctalk_audio.options import FbankOptions

LEVELS = simd_levels()
SIMD = [level for level in LEVELS if level != "scalar"]
ENV = _core.SIMD_ENV_VAR


def cpu_levels() -> set[str]:
    """The levels the CPU reports, read independently of the core."""
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return {"scalar", "neon"}
    if machine not in ("x86_64", "amd64"):
        return {"scalar"}
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    else:  # macOS
        out = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        flags = out.lower().replace("avx2.0", "avx2").replace("avx512f", "avx512f").split()
    levels = {"scalar", "sse2"}
    if "avx2" in flags:
        levels.add("avx2")
    if "avx512f" in flags:
        levels.add("avx512")
    return levels


def bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def mel_of(samples: np.ndarray, level: str, pad_mode: str = "constant", **kw: object) -> np.ndarray:
    return melspectrogram(
        samples, options=MelOptions(simd=level, pad_mode=pad_mode), dtype=np.float64, **kw
    )


def test_levels_are_those_the_cpu_reports():
    assert set(LEVELS) == cpu_levels(), f"core: {LEVELS}, CPU: {sorted(cpu_levels())}"
    assert LEVELS[0] == "scalar"


def test_auto_is_the_best_level_and_scalar_can_be_forced():
    assert mel_processor(MelOptions()).simd == LEVELS[-1]
    assert mel_processor(MelOptions(simd="scalar")).simd == "scalar"
    assert mel_processor(MelOptions(simd="scalar")).lanes == 1
    assert fbank_processor(FbankOptions(simd="scalar")).simd == "scalar"
    for level in LEVELS:
        assert mel_processor(MelOptions(simd=level)).simd == level
        assert fbank_processor(FbankOptions(simd=level)).simd == level


def test_unknown_or_missing_level_is_refused():
    with pytest.raises(ParameterError, match="invalid mel option simd='avx9'.*expected one of"):
        MelOptions(simd="avx9")  # type: ignore[arg-type]
    missing = [level for level in ("sse2", "avx2", "avx512", "neon") if level not in LEVELS]
    for level in missing:
        with pytest.raises(ParameterError, match=f"simd={level}.*not available on this CPU"):
            MelOptions(simd=level)  # type: ignore[arg-type]
        with pytest.raises(ParameterError, match=f"simd={level}.*not available on this CPU"):
            FbankOptions(simd=level)  # type: ignore[arg-type]


@pytest.mark.parametrize("cap", LEVELS)
def test_environment_caps_the_level(monkeypatch, cap):
    monkeypatch.setenv(ENV, cap)
    assert _core.MelProcessor(MelOptions().to_core()).simd == cap
    assert _core.FbankProcessor(FbankOptions().to_core()).simd == cap
    assert _core.FrameFft(800).simd == cap
    # An explicit level above the cap is capped too (ports and debugging).
    assert _core.MelProcessor(MelOptions(simd=LEVELS[-1]).to_core()).simd == cap


def test_environment_cap_above_the_cpu_gives_the_best_level(monkeypatch):
    monkeypatch.setenv(ENV, "avx512" if "neon" not in LEVELS else "neon")
    assert _core.MelProcessor(MelOptions().to_core()).simd == LEVELS[-1]
    monkeypatch.setenv(ENV, "auto")
    assert _core.MelProcessor(MelOptions().to_core()).simd == LEVELS[-1]


def test_bad_environment_value_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(ENV, "fast")
    with pytest.raises(ValueError, match=f"invalid environment variable {ENV}='fast'"):
        _core.MelProcessor(MelOptions().to_core())
    mel_processor.cache_clear()
    fbank_processor.cache_clear()
    try:
        with pytest.raises(ParameterError, match=f"{ENV}='fast'.*expected one of"):
            melspectrogram(np.zeros(1000, np.float32))
        with pytest.raises(ParameterError, match=f"{ENV}='fast'"):
            kaldi_fbank(np.zeros(1000, np.float32))
    finally:
        mel_processor.cache_clear()
        fbank_processor.cache_clear()


# --- SIMD == scalar, bit for bit ---------------------------------------------


@pytest.mark.parametrize("level", SIMD)
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_mel_simd_equals_scalar_on_golden_audio(golden_case, level, pad_mode):
    x = golden_case.samples
    want = mel_of(x, "scalar", pad_mode)
    assert bits(mel_of(x, level, pad_mode)) == bits(want), f"{level} differs from scalar"
    got32 = melspectrogram(x, options=MelOptions(simd=level, pad_mode=pad_mode))
    want32 = melspectrogram(x, options=MelOptions(simd="scalar", pad_mode=pad_mode))
    assert bits(got32) == bits(want32)


@pytest.mark.parametrize("level", SIMD)
def test_fbank_simd_equals_scalar_on_golden_audio(golden_case, level):
    wave = golden_case.samples.astype(np.float64) * 32768
    want = kaldi_fbank(wave, options=FbankOptions(simd="scalar"), dtype=np.float64)
    got = kaldi_fbank(wave, options=FbankOptions(simd=level), dtype=np.float64)
    assert bits(got) == bits(want), f"{level} differs from scalar"


audio = st.builds(
    lambda n, seed, amp, kind: signal(n, seed, amp, kind),
    st.integers(1, 6000),  # 1 to 31 frames: every partial lane group
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.0, 1e-6, 1e-3, 0.5, 10.0]),
    st.sampled_from(["noise", "tone", "impulse"]),
)


def signal(n: int, seed: int, amp: float, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        x = rng.standard_normal(n)
    elif kind == "tone":
        x = np.sin(2 * np.pi * rng.uniform(20, 8000) * np.arange(n) / 16000)
    else:
        x = np.zeros(n)
        x[rng.integers(0, n)] = 1.0
    return (amp * x).astype(np.float32 if seed % 2 else np.float64)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=audio, pad_mode=st.sampled_from(["constant", "reflect"]))
def test_mel_simd_equals_scalar_property(x, pad_mode):
    want = mel_of(x, "scalar", pad_mode)
    for level in SIMD:
        assert bits(mel_of(x, level, pad_mode)) == bits(want), level


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=audio, shift=st.sampled_from([160, 97]), length=st.sampled_from([400, 256, 23]))
def test_fbank_simd_equals_scalar_property(x, shift, length):
    wave = x.astype(np.float64) * 32768
    if wave.shape[0] < length:
        wave = np.concatenate([wave, np.ones(length)])
    want = kaldi_fbank(
        wave,
        options=FbankOptions(simd="scalar", frame_shift=shift, frame_length=length),
        dtype=np.float64,
    )
    for level in SIMD:
        got = kaldi_fbank(
            wave,
            options=FbankOptions(simd=level, frame_shift=shift, frame_length=length),
            dtype=np.float64,
        )
        assert bits(got) == bits(want), level


@settings(max_examples=40, deadline=None)
@given(
    n=st.sampled_from([2, 4, 6, 10, 14, 22, 98, 400, 512, 800, 1000, 2310 * 2]),
    count=st.integers(1, 19),
    seed=st.integers(0, 2**32 - 1),
)
def test_fft_simd_equals_scalar_property(n, count, seed):
    """The FFT stage alone, every radix (2, 3, 4, 5 and the generic 7, 11)."""
    frames = np.random.default_rng(seed).standard_normal((count, n))
    want = _core.FrameFft(n, "scalar").forward(frames)
    assert bits(want[0]) == bits(_core.rfft(frames[0]))
    for level in SIMD:
        fft = _core.FrameFft(n, level)
        assert fft.simd == level
        assert bits(fft.forward(frames)) == bits(want), level


def test_odd_fft_length_runs_the_scalar_path():
    assert _core.FrameFft(801, LEVELS[-1]).simd == "scalar"
    x = np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    odd = MelOptions(n_fft=801, win_length=801, simd=LEVELS[-1])
    assert mel_processor(odd).simd == "scalar"
    assert bits(melspectrogram(x, options=odd)) == bits(
        melspectrogram(x, options=MelOptions(n_fft=801, win_length=801, simd="scalar"))
    )


# --- threads within one clip ---------------------------------------------------


@pytest.mark.parametrize("level", ["scalar", LEVELS[-1]])
def test_mel_threads_give_the_same_bits(level):
    x = np.random.default_rng(7).standard_normal(16000 * 7 + 123).astype(np.float32)
    want = mel_of(x, level, threads=1)
    processor = mel_processor(MelOptions(simd=level))
    for threads in (2, 3, 4, 7, 16):
        assert bits(mel_of(x, level, threads=threads)) == bits(want), threads
        # Into a NaN-filled array: a frame no thread computed cannot pass.
        out = np.full_like(want, np.nan)
        processor.melspectrogram_into(x, out, threads=threads)
        assert bits(out) == bits(want), threads


@pytest.mark.parametrize("level", ["scalar", LEVELS[-1]])
def test_fbank_threads_give_the_same_bits(level):
    x = np.random.default_rng(8).standard_normal(16000 * 5 + 77) * 3000
    options = FbankOptions(simd=level)
    want = kaldi_fbank(x, options=options, dtype=np.float64)
    for threads in (2, 3, 5):
        got = kaldi_fbank(x, options=options, dtype=np.float64, threads=threads)
        assert bits(got) == bits(want), threads


def test_online_mel_with_threads_equals_batch():
    x = np.random.default_rng(9).standard_normal(16000 * 6 + 5).astype(np.float32)
    want = melspectrogram(x)
    online = _core.OnlineMel(mel_processor(MelOptions()), 2)
    got = []
    for chunk in np.array_split(x, [50000, 50003, 90000]):
        online.accept_waveform(np.ascontiguousarray(chunk))
        got.append(online.pop_frames())
    online.input_finished()
    got.append(online.pop_frames())
    assert bits(np.concatenate(got).T) == bits(want)


@pytest.mark.parametrize("bad", [0, -1, _core.MAX_THREADS + 1])
def test_bad_thread_counts_are_refused(bad):
    x = np.zeros(16000, np.float32)
    with pytest.raises(ParameterError, match=rf"threads must be in \[1, {_core.MAX_THREADS}\]"):
        melspectrogram(x, threads=bad)
    with pytest.raises(ParameterError, match=r"threads must be in \[1, "):
        kaldi_fbank(x, threads=bad)
    with pytest.raises(ValueError, match=r"threads must be in \[1, "):
        mel_processor(MelOptions()).melspectrogram(x, "float32", bad)
    with pytest.raises(ValueError, match=r"threads must be in \[1, "):
        _core.OnlineMel(mel_processor(MelOptions()), bad)
    with pytest.raises(ParameterError, match="threads must be an integer"):
        melspectrogram(x, threads=2.0)  # type: ignore[arg-type]


class ZeroEncoder:
    """(B, 1, 80, 16) windows -> (B, 512) zeros."""

    def encode(self, windows: np.ndarray) -> np.ndarray:
        return np.zeros((windows.shape[0], 512), np.float32)

    def describe(self) -> dict[str, object]:
        return {"backend": "zeros", "batch_size": None}


def test_pipeline_threads_reach_the_front_end(monkeypatch):
    """Pipeline(threads=N) gives the mel N threads; None gives it every CPU."""
    from synctalk_audio.modes import ave, front_end_threads

    seen: list[int] = []
    real = ave.melspectrogram

    def spy(*args: object, **kwargs: object) -> np.ndarray:
        seen.append(int(kwargs["threads"]))  # type: ignore[call-overload]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ave, "melspectrogram", spy)
    from synctalk_audio.spec import RunSpec

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for threads, expected in ((3, 3), (None, usable)):
        spec = RunSpec.create("ave", ZeroEncoder(), threads=threads)
        assert spec.settings.threads == expected == front_end_threads(threads)
        spec.mode.compute(np.zeros(8000, np.float32), spec.open_encoder(), spec.settings)
        assert seen[-1] == expected
