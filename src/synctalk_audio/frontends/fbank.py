"""The Kaldi log mel filterbank of the ``wenet`` mode, computed by the C++ core.

What ``torchaudio.compliance.kaldi.fbank`` computes with the arguments of
Ultralight-Digital-Human's WeNet front end (`FbankOptions` defaults), in
float64 with the mel filters built in float32 as torchaudio builds them;
see docs/DECISIONS.md ("Kaldi fbank") and docs/NUMERICS.md for the figures.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from .. import _core
from ..errors import ParameterError
from ..options import FbankOptions
from .mel import as_audio_array, check_threads

__all__ = ["fbank_processor", "kaldi_fbank", "online_fbank"]


DEFAULT_FBANK_OPTIONS = FbankOptions()


@functools.lru_cache(maxsize=8)
def fbank_processor(options: FbankOptions = DEFAULT_FBANK_OPTIONS) -> _core.FbankProcessor:
    """Return the (cached) C++ processor for ``options``: window, FFT plan, mel banks.

    Immutable and safe to share between threads.
    """
    if not isinstance(options, FbankOptions):
        raise TypeError(f"options must be a FbankOptions, got {type(options).__name__}")
    try:
        return _core.FbankProcessor(options.to_core())
    except ValueError as exc:  # an unknown SYNCTALK_AUDIO_SIMD
        raise ParameterError(str(exc)) from None


def kaldi_fbank(
    wave: npt.NDArray[np.floating],
    *,
    options: FbankOptions | None = None,
    dtype: npt.DTypeLike = np.float32,
    threads: int = 1,
) -> np.ndarray:
    """Kaldi log mel filterbank energies of ``wave``, one row per frame.

    Parameters
    ----------
    wave : numpy.ndarray
        1-D float32 or float64 samples at ``options.sample_rate``, on Kaldi's
        int16 scale (the ``wenet`` mode passes int16-valued samples).
    options : FbankOptions, optional
        The filterbank parameters; WeNet's by default.
    dtype : {numpy.float32, numpy.float64}
        Output dtype; the core computes in float64.
    threads : int
        Threads sharing the frames (1 to ``_core.MAX_THREADS``); the result
        is bitwise the same for any count and any ``options.simd``.

    Returns
    -------
    numpy.ndarray
        ``(options.num_frames(len(wave)), num_bins)``; no rows for fewer than
        ``frame_length`` samples.

    Raises
    ------
    TypeError
        If ``wave`` is not a float32/float64 NumPy array or ``dtype`` is another type.
    ParameterError
        If ``wave`` is not 1-D, is empty or holds NaN/inf, or ``threads`` is
        out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from synctalk_audio.frontends.fbank import kaldi_fbank
    >>> feats = kaldi_fbank(np.zeros(16000))
    >>> feats.shape, float(feats[0, 0])
    ((98, 80), -15.942384719848633)
    """
    samples = as_audio_array(wave, name="wave")
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {out_dtype}")
    check_threads(threads)
    processor = fbank_processor(options if options is not None else DEFAULT_FBANK_OPTIONS)
    try:
        return processor.fbank(samples, out_dtype.name, threads)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None


def online_fbank(options: FbankOptions | None = None) -> _core.OnlineFbank:
    """A streaming fbank: ``accept_waveform(float32 samples)``, then ``pop_frames()``.

    Frame k is computed as soon as sample ``frame_shift * k + frame_length - 1``
    has arrived, by the same per-frame code as `kaldi_fbank`, so its float32
    rows equal `kaldi_fbank`'s bit for bit for any chunking.
    """
    return _core.OnlineFbank(
        fbank_processor(options if options is not None else DEFAULT_FBANK_OPTIONS)
    )
