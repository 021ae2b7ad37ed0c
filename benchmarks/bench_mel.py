"""The mel spectrogram: the C++ core against SyncTalk's librosa function, NumPy and SciPy.

60 s of 16 kHz speech. Each test times one candidate with pytest-benchmark
and its reference in the same rounds, alternating (benchmarks/ratio.py), and
records the ratio of the two medians in ``extra_info["ratios"]``:

- ``test_mel_vs_librosa``: the core on 1 and 2 threads (best SIMD level),
  forced to the scalar reference (``MelOptions(simd="scalar")``) and a
  vectorised NumPy rewrite, each against SyncTalk_2D's function on librosa
  (``vs_librosa``);
- ``test_fft_core_vs_scipy``: the FFT alone on the same 4801 windowed
  800-sample frames, the core's SIMD lanes and its scalar FFT, against
  ``scipy.fft.rfft(workers=1)`` (``vs_scipy``);
- ``test_mel_many_clips_two_threads``: 12 clips of 5 s through
  ``melspectrogram_many`` on 2 threads against 1 (``vs_1_thread``).

librosa's matmul runs on one OpenBLAS thread (benchmarks/conftest.py sets
OPENBLAS_NUM_THREADS=1 unless it is set).

    python -m pytest benchmarks/bench_mel.py --benchmark-enable

Run as a script, it prints the same comparisons as tables with the goals
(every candidate in turn per round, the fastest of 3 back-to-back calls,
median over the rounds), with OPENBLAS_NUM_THREADS=1 unless it is set (see
the end of the file):

    python benchmarks/bench_mel.py --rounds 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import pytest
import scipy.fft
import scipy.signal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

import upstream  # noqa: E402  tests/reference/upstream.py: SyncTalk_2D's functions on librosa

from synctalk_audio import (  # noqa: E402
    MelOptions,
    _core,  # noqa: E402
    melspectrogram,
    melspectrogram_many,
)
from synctalk_audio.frontends.mel import mel_processor, simd_levels  # noqa: E402

sys.path.insert(0, HERE)
from ratio import interleaved  # noqa: E402

BASIS = None
SCALAR = MelOptions(simd="scalar")
REPEAT = 3  # back-to-back calls per candidate and round in the interleaved goals


def numpy_melspectrogram(wav: np.ndarray) -> np.ndarray:
    """A vectorised NumPy rewrite: rfft on strided frames, one matmul."""
    global BASIS
    if BASIS is None:
        import librosa

        BASIS = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    y = scipy.signal.lfilter([1, -0.97], [1], wav)
    y = np.pad(y, 400)
    frames = np.lib.stride_tricks.sliding_window_view(y, 800)[::200]
    window = scipy.signal.get_window("hann", 800)
    mag = np.abs(np.fft.rfft(frames * window, axis=1))
    s = 20 * np.log10(np.maximum(1e-5, BASIS @ mag.T)) - 20
    return np.clip(8 * (s + 100) / 100 - 4, -4, 4)


def windowed_frames(wav: np.ndarray) -> np.ndarray:
    """The 4801 windowed frames of 60 s exactly as the core builds them (float64, C order)."""
    return np.ascontiguousarray(mel_processor(SCALAR).stages(wav)["windowed"])


def load_speech_60s() -> np.ndarray:
    import soundfile as sf

    wav, rate = sf.read(
        os.path.join(HERE, "..", "tests", "data", "speech_16k_s16_mono.wav"), dtype="float32"
    )
    return np.tile(wav, 60 * rate // wav.shape[0] + 1)[: 60 * rate].copy()


# --- pytest-benchmark ----------------------------------------------------------
# Each test times the core with pytest-benchmark and its reference in the
# same rounds, alternating (benchmarks/ratio.py), and records the ratio.

MEL_ROUNDS = 25


@pytest.mark.benchmark(group="mel-60s")
@pytest.mark.parametrize(
    "candidate", ["core-1-thread", "core-2-threads", "core-forced-scalar", "numpy-vectorised"]
)
def test_mel_vs_librosa(benchmark, speech_60s, candidate):
    runs: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
        "core-1-thread": ("mel, core, 1 thread", lambda: melspectrogram(speech_60s)),
        "core-2-threads": (
            "mel, core, 2 threads",
            lambda: melspectrogram(speech_60s, threads=2),
        ),
        "core-forced-scalar": (
            "mel, core forced to the scalar reference, 1 thread",
            lambda: melspectrogram(speech_60s, options=SCALAR),
        ),
        "numpy-vectorised": ("mel, vectorised NumPy", lambda: numpy_melspectrogram(speech_60s)),
    }
    headline, ours = runs[candidate]
    mel = interleaved(
        benchmark,
        ours,
        lambda: upstream.melspectrogram(speech_60s),
        rounds=MEL_ROUNDS,
        headline=f"{headline} (60 s) vs SyncTalk_2D's librosa function",
        reference_name="SyncTalk_2D melspectrogram on librosa 0.11",
        ratio_name="vs_librosa",
    )
    benchmark.extra_info["simd"] = mel_processor(MelOptions()).simd
    benchmark.extra_info["OPENBLAS_NUM_THREADS"] = os.environ.get("OPENBLAS_NUM_THREADS")
    assert mel.shape == (80, 4801)


@pytest.mark.benchmark(group="fft-stage")
@pytest.mark.parametrize("simd", ["auto", "scalar"])
def test_fft_core_vs_scipy(benchmark, speech_60s, simd):
    frames = windowed_frames(speech_60s)
    fft = _core.FrameFft(800, simd)
    spectrum = interleaved(
        benchmark,
        lambda: fft.forward(frames),
        lambda: scipy.fft.rfft(frames, axis=1, workers=1),
        rounds=MEL_ROUNDS,
        headline=f"FFT stage, core {'SIMD lanes' if simd == 'auto' else 'scalar'}"
        " (4801 x 800 points) vs scipy.fft.rfft, 1 worker",
        reference_name="scipy.fft.rfft(frames, axis=1, workers=1)",
        ratio_name="vs_scipy",
    )
    assert spectrum.shape == (4801, 401)


@pytest.mark.benchmark(group="mel-many-clips")
def test_mel_many_clips_two_threads(benchmark, speech_60s):
    clips = [speech_60s[i * 80000 : (i + 1) * 80000] for i in range(12)]  # 12 x 5 s
    mels = interleaved(
        benchmark,
        lambda: melspectrogram_many(clips, threads=2),
        lambda: melspectrogram_many(clips, threads=1),
        rounds=MEL_ROUNDS,
        headline="many clips (12 x 5 s), melspectrogram_many on 2 threads vs 1",
        reference_name="melspectrogram_many(clips, threads=1)",
        ratio_name="vs_1_thread",
    )
    assert len(mels) == 12


# --- the goals, interleaved ----------------------------------------------------


def goals(rounds: int) -> None:
    """Time every candidate once per round, in turn; print medians and the goal ratios."""
    wav = load_speech_60s()
    frames = windowed_frames(wav)
    clips = [wav[i * 80000 : (i + 1) * 80000] for i in range(12)]
    fft_auto, fft_scalar = _core.FrameFft(800, "auto"), _core.FrameFft(800, "scalar")
    candidates: dict[str, Callable[[], object]] = {
        "librosa (SyncTalk_2D's function)": lambda: upstream.melspectrogram(wav),
        "numpy vectorised": lambda: numpy_melspectrogram(wav),
        "core, 1 thread": lambda: melspectrogram(wav),
        "core, 2 threads": lambda: melspectrogram(wav, threads=2),
        "core, forced scalar, 1 thread": lambda: melspectrogram(wav, options=SCALAR),
        "FFT stage: core SIMD": lambda: fft_auto.forward(frames),
        "FFT stage: core scalar": lambda: fft_scalar.forward(frames),
        "FFT stage: scipy.fft.rfft, 1 worker": lambda: scipy.fft.rfft(frames, axis=1, workers=1),
        "12 x 5 s clips, 1 thread": lambda: melspectrogram_many(clips, threads=1),
        "12 x 5 s clips, 2 threads": lambda: melspectrogram_many(clips, threads=2),
    }
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for run in candidates.values():
        run()  # warm up (librosa's first call is slow)
    for _ in range(rounds):
        for name, run in candidates.items():
            # Warm: the fastest of REPEAT back-to-back calls (the first call
            # after another candidate pays for cold caches and, on a VM, for
            # waking the second vCPU).
            best = float("inf")
            for _ in range(REPEAT):
                start = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - start)
            times[name].append(best)
    med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    level = mel_processor(MelOptions()).simd
    print(f"\nSIMD levels here: {', '.join(simd_levels())}; auto = {level}; {rounds} rounds")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}")
    print("\n| 60 s of speech | median | vs librosa |\n| --- | --- | --- |")
    base = med["librosa (SyncTalk_2D's function)"]
    for name in list(candidates)[:5]:
        print(f"| {name} | {med[name]:.2f} ms | {base / med[name]:.2f}x |")
    scipy_ms = med["FFT stage: scipy.fft.rfft, 1 worker"]
    print("\n| FFT stage, 4801 x 800 points | median | vs scipy |\n| --- | --- | --- |")
    for name in list(candidates)[5:8]:
        print(f"| {name} | {med[name]:.2f} ms | {scipy_ms / med[name]:.2f}x |")
    one = med["12 x 5 s clips, 1 thread"]
    print("\n| many clips | median | vs 1 thread |\n| --- | --- | --- |")
    for name in list(candidates)[8:]:
        print(f"| {name} | {med[name]:.2f} ms | {one / med[name]:.2f}x |")
    checks = [
        ("core >= 3x librosa on 1 thread", base / med["core, 1 thread"], 3.0),
        ("core >= 5x librosa on 2 threads", base / med["core, 2 threads"], 5.0),
        ("FFT stage no slower than scipy (1 worker)", scipy_ms / med["FFT stage: core SIMD"], 1.0),
        ("many clips >= 1.8x on 2 threads", one / med["12 x 5 s clips, 2 threads"], 1.8),
    ]
    print("\n| goal | measured | met |\n| --- | --- | --- |")
    for what, ratio, need in checks:
        print(f"| {what} | {ratio:.2f}x | {'yes' if ratio >= need else 'NO'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    goals(parser.parse_args().rounds)


if __name__ == "__main__" and "OPENBLAS_NUM_THREADS" not in os.environ:
    # librosa's mel matmul (OpenBLAS) on one thread, as every other candidate
    # but "2 threads": OpenBLAS's idle workers spin for ~0.1 s after each call
    # and would take the second core from the next candidate. Re-exec so the
    # setting is in place before NumPy loads; set the variable to override.
    # sys.orig_argv keeps the interpreter's own options (-S, -X ...).
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


if __name__ == "__main__":
    main()
