"""Encoder windows of 16 mel frames per video frame (SyncTalk_2D ``AudDataset``)."""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..limits import MEL_FRAMES_PER_SECOND, check_fps

__all__ = [
    "MEL_FRAMES_PER_SECOND",
    "WINDOW_MEL_FRAMES",
    "cut_windows",
    "encoder_windows",
    "min_samples",
    "num_windows",
    "require_min_samples",
    "window_start",
    "window_starts",
]

#: Sample rate of the mel spectrogram, Hz.
SAMPLE_RATE = 16000
#: Mel frames in one encoder window.
WINDOW_MEL_FRAMES = 16


def min_samples(hop_length: int = 200) -> int:
    """Fewest samples that give one encoder window (16 mel frames): 3000 at 16 kHz.

    ``1 + n // hop_length >= 16`` holds from ``n = 15 * hop_length``.
    """
    return (WINDOW_MEL_FRAMES - 1) * hop_length


def require_min_samples(num_samples: int) -> None:
    """Raise `ParameterError` if 16 kHz audio of ``num_samples`` is too short for one window."""
    if num_samples < min_samples():
        raise ParameterError(
            f"audio too short: need at least {min_samples() / SAMPLE_RATE:.4g} s"
            f" ({min_samples()} samples at 16 kHz, {WINDOW_MEL_FRAMES} mel frames),"
            f" got {num_samples / SAMPLE_RATE:.4g} s ({num_samples} samples)"
        )


def _check_mel_frames(mel_frames: int) -> int:
    mel_frames = int(mel_frames)
    if mel_frames < WINDOW_MEL_FRAMES:
        need = min_samples() / SAMPLE_RATE
        raise ParameterError(
            f"audio too short: need at least {need:.4g} s ({WINDOW_MEL_FRAMES} mel frames,"
            f" {min_samples()} samples at 16 kHz), got {mel_frames} mel frames"
            f" (under {mel_frames / MEL_FRAMES_PER_SECOND:.4g} s)"
        )
    return mel_frames


def num_windows(mel_frames: int, fps: float = 25.0) -> int:
    """Number of encoder windows (= video frames before padding) for ``mel_frames``.

    ``int((M - 16) / 80 * fps) + 2``, as ``AudDataset.data_len`` computes it.
    ``fps`` must be from 1 to below 80 (`limits.check_fps`): above that
    several video frames would share a mel frame, and absurd rates would
    ask for absurd numbers of windows.

    Raises
    ------
    ParameterError
        If ``fps`` is out of range or ``mel_frames`` is below 16.

    Examples
    --------
    >>> num_windows(21), num_windows(4801)  # 0.25 s and 60 s of audio
    (3, 1497)
    """
    fps = check_fps(fps)
    mel_frames = _check_mel_frames(mel_frames)
    return int((mel_frames - WINDOW_MEL_FRAMES) / MEL_FRAMES_PER_SECOND * fps) + 2


def window_start(index: int, fps: float) -> int:
    """First mel frame of encoder window ``index`` before the end clamp: ``int(80 * (i / fps))``.

    The one place this formula lives; ``fps`` must already be checked.
    """
    return int(MEL_FRAMES_PER_SECOND * (index / fps))


def window_starts(mel_frames: int, fps: float = 25.0) -> np.ndarray:
    """First mel frame of every encoder window, int64, shape (N,).

    ``start = int(80 * (i / fps))``, moved back to ``M - 16`` where the window
    would run past the end (``AudDataset.crop_audio_window``).

    Examples
    --------
    >>> window_starts(21).tolist()
    [0, 3, 5]
    """
    count = num_windows(mel_frames, fps)
    fps = check_fps(fps)
    last = mel_frames - WINDOW_MEL_FRAMES
    return np.array([min(window_start(i, fps), last) for i in range(count)], dtype=np.int64)


def encoder_windows(mel: np.ndarray, fps: float = 25.0) -> np.ndarray:
    """Cut a mel spectrogram into the encoder's input windows.

    Parameters
    ----------
    mel : numpy.ndarray
        (80, M) mel spectrogram, as returned by `melspectrogram`.
    fps : float
        Video frame rate; 25 in SyncTalk_2D; from 1 to below 80.

    Returns
    -------
    numpy.ndarray
        float32 (N, 1, 80, 16), C order: window i is ``mel[:, s_i : s_i + 16]``
        with ``s_i = window_starts(M, fps)[i]`` — the encoder's batch input.

    Raises
    ------
    ParameterError
        If ``mel`` is not 2-D or has fewer than 16 frames (audio shorter than
        0.1875 s), or ``fps`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> encoder_windows(np.zeros((80, 21), dtype=np.float32)).shape
    (3, 1, 80, 16)
    """
    if not isinstance(mel, np.ndarray) or mel.ndim != 2:
        shape = getattr(mel, "shape", type(mel).__name__)
        raise ParameterError(f"mel must be a 2-D (n_mels, frames) array, got {shape}")
    return cut_windows(mel, window_starts(mel.shape[1], fps))


def cut_windows(mel: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The windows of ``mel`` (80, M) starting at ``starts``: float32 (len(starts), 1, 80, 16).

    Lets a caller cut the windows batch by batch instead of all at once.
    """
    index = np.asarray(starts)[:, None] + np.arange(WINDOW_MEL_FRAMES)[None, :]
    windows = mel[:, index].astype(np.float32, copy=False)  # (80, n, 16)
    return np.ascontiguousarray(windows.transpose(1, 0, 2))[:, None, :, :]
