"""The mel spectrogram: the C++ core against SyncTalk's librosa function and NumPy.

60 s of 16 kHz speech, single-threaded (the core runs on the calling thread);
then throughput over many clips with 1 and 2 threads. Compare the medians of
one run as ratios: the machine is noisy.

    python -m pytest benchmarks/bench_mel.py --benchmark-enable \
        --benchmark-columns=median,iqr,rounds
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import upstream  # tests/reference/upstream.py: SyncTalk_2D's functions on librosa

from synctalk_audio import melspectrogram, melspectrogram_many

BASIS = None


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


@pytest.mark.benchmark(group="mel-60s")
def test_mel_cpp(benchmark, speech_60s):
    mel = benchmark(melspectrogram, speech_60s)
    assert mel.shape == (80, 4801)


@pytest.mark.benchmark(group="mel-60s")
def test_mel_librosa_synctalk(benchmark, speech_60s):
    upstream.melspectrogram(speech_60s)  # warm: librosa's first call is slow
    mel = benchmark(upstream.melspectrogram, speech_60s)
    assert mel.shape == (80, 4801)


@pytest.mark.benchmark(group="mel-60s")
def test_mel_numpy_vectorised(benchmark, speech_60s):
    mel = benchmark(numpy_melspectrogram, speech_60s)
    assert mel.shape == (80, 4801)


@pytest.mark.benchmark(group="mel-many-clips")
@pytest.mark.parametrize("threads", [1, 2])
def test_mel_many_clips(benchmark, speech_60s, threads):
    clips = [speech_60s[i * 80000 : (i + 1) * 80000] for i in range(12)]  # 12 x 5 s
    mels = benchmark(melspectrogram_many, clips, threads=threads)
    assert len(mels) == 12
