"""A plain NumPy transcription of the mel spectrogram, stage by stage.

The stages, their precision and tolerances are written out in
docs/NUMERICS.md section 2.

This is the *independent* reference the C++ core is checked against in
tests/test_mel_properties.py and tests/test_stage_vectors.py, and the code
that writes the staged test vectors of the iOS port
(tools/make_stage_vectors.py). It does not import synctalk_audio. Every line
is one step of SyncTalk_2D's ``utils/audio.py`` ``melspectrogram`` (copied
from wav2lip's ``audio.py``) as run on librosa >= 0.10, written out with
NumPy so each intermediate is visible:

1. pre-emphasis  ``y[0] = x[0]; y[n] = x[n] - 0.97 x[n-1]`` in float64
   (equal, bit for bit, to ``scipy.signal.lfilter([1, -0.97], [1], x)``);
2. centring pad  ``np.pad(y, n_fft // 2, mode)``, mode "constant" or "reflect";
3. framing       ``1 + len(y) // hop`` frames (even n_fft),
                 frame k = ``y_pad[hop k : hop k + n_fft]``;
4. window        ``scipy.signal.get_window('hann', win_length)`` (periodic),
                 centred in n_fft zeros as ``librosa.util.pad_center`` does;
5. spectrum      ``np.fft.rfft`` of every windowed frame (n_fft / 2 + 1 bins);
6. magnitude     ``np.abs``;
7. mel           ``np.dot(librosa.filters.mel(...) [float32], magnitude)`` in float64;
8. dB            ``20 log10(max(min_level, mel)) - ref_level_db``,
                 ``min_level = exp(min_level_db / 20 * ln 10)``;
9. normalise     ``clip(2 A ((S - min_level_db) / -min_level_db) - A, -A, A)``, A = 4.

Stage arrays are frame-major, ``(T, ...)``, like ``MelProcessor.stages``; the
final spectrogram of `melspectrogram` is ``(n_mels, T)`` like the package's.

Tests import it as ``import reference_mel`` (``tests/`` is on ``sys.path``
under pytest's default rootdir-relative import mode).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import scipy.signal

__all__ = [
    "Params",
    "STAGE_NAMES",
    "filterbank",
    "frame_count",
    "melspectrogram",
    "preemphasis",
    "stages",
    "window",
]

#: The stage names, in pipeline order, as ``MelProcessor.stages`` returns them.
STAGE_NAMES = (
    "preemphasis",
    "frames",
    "windowed",
    "spectrum",
    "magnitude",
    "mel",
    "db",
    "normalized",
)


@dataclass(frozen=True)
class Params:
    """The wav2lip hparams (SyncTalk_2D's values by default)."""

    sample_rate: int = 16000
    n_fft: int = 800
    hop_length: int = 200
    win_length: int = 800
    n_mels: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    ref_level_db: float = 20.0
    min_level_db: float = -100.0
    max_abs_value: float = 4.0
    pad_mode: str = "constant"

    @classmethod
    def from_options(cls, options: Any) -> Params:
        """Copy the fields of a ``synctalk_audio.MelOptions`` (or anything alike)."""
        return cls(**{name: getattr(options, name) for name in cls.__dataclass_fields__})


DEFAULT = Params()


def preemphasis(x: np.ndarray, coef: float = 0.97) -> np.ndarray:
    """``lfilter([1, -coef], [1], x)`` in float64: y[0] = x[0], y[n] = x[n] - coef x[n-1]."""
    x64 = np.asarray(x, dtype=np.float64)
    y: np.ndarray = x64.copy()
    y[1:] = x64[1:] - coef * x64[:-1]
    return y


def frame_count(num_samples: int, hop_length: int = 200, n_fft: int = 800) -> int:
    """librosa's centred STFT frame count, ``1 + (num_samples + 2 (n_fft // 2) - n_fft) // hop``.

    For an even n_fft (800) this is ``1 + num_samples // hop_length``; for an
    odd one it is ``1 + (num_samples - 1) // hop_length``.
    """
    padded = int(num_samples) + 2 * (n_fft // 2)
    return 1 + (padded - n_fft) // hop_length


@functools.lru_cache(maxsize=8)
def _window(win_length: int, n_fft: int) -> np.ndarray:
    w = scipy.signal.get_window("hann", win_length, fftbins=True).astype(np.float64)
    lpad = (n_fft - win_length) // 2  # librosa.util.pad_center
    out = np.zeros(n_fft, dtype=np.float64)
    out[lpad : lpad + win_length] = w
    out.setflags(write=False)
    return out


def window(p: Params = DEFAULT) -> np.ndarray:
    """The periodic Hann window of ``win_length`` centred in ``n_fft`` (float64)."""
    return _window(p.win_length, p.n_fft)


@functools.lru_cache(maxsize=8)
def _filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa

    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert basis.dtype == np.float32, basis.dtype
    basis.setflags(write=False)
    return basis


def filterbank(p: Params = DEFAULT) -> np.ndarray:
    """``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)``: float32 (n_mels, n_fft/2+1)."""
    return _filterbank(p.sample_rate, p.n_fft, p.n_mels, float(p.fmin), float(p.fmax))


def stages(x: np.ndarray, p: Params = DEFAULT) -> dict[str, np.ndarray]:
    """Every intermediate of the chain for the 1-D signal ``x``.

    Returns float64 arrays (complex128 for ``spectrum``), frame-major:
    preemphasis (n,), frames / windowed (T, n_fft), spectrum / magnitude
    (T, n_fft/2+1), mel / db / normalized (T, n_mels).
    """
    x = np.asarray(x)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"need a non-empty 1-D signal, got shape {x.shape}")
    if p.pad_mode not in ("constant", "reflect"):
        raise ValueError(f"pad_mode must be 'constant' or 'reflect', got {p.pad_mode!r}")
    y = preemphasis(x, p.preemphasis)
    half = p.n_fft // 2
    y_pad = np.pad(y, half, mode=cast(Any, p.pad_mode))
    num_frames = frame_count(len(y), p.hop_length, p.n_fft)
    frames = np.lib.stride_tricks.sliding_window_view(y_pad, p.n_fft)[:: p.hop_length]
    frames = np.ascontiguousarray(frames[:num_frames])
    assert frames.shape == (num_frames, p.n_fft), (frames.shape, num_frames)
    windowed = frames * window(p)
    spectrum = np.fft.rfft(windowed, axis=-1)
    magnitude = np.abs(spectrum)
    # np.dot(basis, |D|) with |D| bins x frames, as wav2lip does; transposed back.
    mel = np.dot(filterbank(p), magnitude.T).T
    min_level = np.exp(p.min_level_db / 20 * np.log(10))
    db = 20 * np.log10(np.maximum(min_level, mel)) - p.ref_level_db
    a = p.max_abs_value
    normalized = np.clip((2 * a) * ((db - p.min_level_db) / (-p.min_level_db)) - a, -a, a)
    return {
        "preemphasis": y,
        "frames": frames,
        "windowed": windowed,
        "spectrum": spectrum,
        "magnitude": magnitude,
        "mel": np.ascontiguousarray(mel),
        "db": np.ascontiguousarray(db),
        "normalized": np.ascontiguousarray(normalized),
    }


def melspectrogram(x: np.ndarray, p: Params = DEFAULT) -> np.ndarray:
    """The final spectrogram, ``(n_mels, T)`` float64, as the package returns it."""
    return np.ascontiguousarray(stages(x, p)["normalized"].T)
