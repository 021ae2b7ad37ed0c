"""The SyncTalk_2D mel spectrogram, computed by the C++ core."""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

from .. import _core
from ..errors import ParameterError
from ..limits import check_count, usable_cpus
from ..options import MelOptions, PadMode

__all__ = ["check_threads", "melspectrogram", "melspectrogram_many", "mel_processor", "simd_levels"]


DEFAULT_OPTIONS = MelOptions()


def simd_levels() -> list[str]:
    """The SIMD levels of the core this CPU runs, ``"scalar"`` first, the best last.

    ``MelOptions(simd=...)`` and ``FbankOptions(simd=...)`` accept any of
    them (or ``"auto"``, the last); all give bitwise the same results.

    Examples
    --------
    >>> from synctalk_audio.frontends.mel import simd_levels
    >>> simd_levels()[0]
    'scalar'
    """
    return list(_core.simd_levels())


def check_threads(threads: object, name: str = "threads") -> int:
    """``threads`` as an int in [1, ``_core.MAX_THREADS``]; `ParameterError` otherwise."""
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise ParameterError(f"{name} must be an integer, got {type(threads).__name__}")
    if not 1 <= threads <= _core.MAX_THREADS:
        raise ParameterError(f"{name} must be in [1, {_core.MAX_THREADS}], got {threads}")
    return threads


@functools.lru_cache(maxsize=16)
def mel_processor(options: MelOptions = DEFAULT_OPTIONS) -> _core.MelProcessor:
    """Return the (cached) C++ processor for ``options``.

    The processor holds the window, FFT plan, filterbank and SIMD lanes;
    building one takes well under a millisecond, and this cache makes
    repeated calls free. It is immutable and safe to share between threads.
    Its ``simd`` attribute names the level in use: ``options.simd`` capped by
    the environment variable ``SYNCTALK_AUDIO_SIMD`` as it was when the
    processor was built.

    Raises
    ------
    ParameterError
        If ``SYNCTALK_AUDIO_SIMD`` holds an unknown level.
    """
    try:
        return _core.MelProcessor(options.to_core())
    except ValueError as exc:
        raise ParameterError(str(exc)) from None


def _resolve(options: MelOptions | None, pad_mode: PadMode | None) -> MelOptions:
    resolved = options if options is not None else MelOptions()
    if not isinstance(resolved, MelOptions):
        raise TypeError(f"options must be a MelOptions, got {type(resolved).__name__}")
    if pad_mode is not None and pad_mode != resolved.pad_mode:
        resolved = dataclasses.replace(resolved, pad_mode=pad_mode)
    return resolved


def as_audio_array(wav: object, name: str = "wav") -> np.ndarray:
    """Check ``wav`` against the input policy and return it ready for the core.

    The policy: a 1-D NumPy array of float32 or float64 samples (nominally in
    [-1, 1]); non-contiguous and non-native-byte-order arrays are copied;
    integer, complex and other dtypes raise ``TypeError``; other shapes,
    empty arrays and NaN/inf raise `ParameterError` (NaN/inf is detected by
    the core while it reads the samples).
    """
    if not isinstance(wav, np.ndarray):
        raise TypeError(
            f"{name} must be a NumPy array of float32 or float64 samples, got {type(wav).__name__}"
        )
    if wav.dtype.kind != "f" or wav.dtype.itemsize not in (4, 8):
        hint = ""
        if wav.dtype.kind in "iu":
            hint = (
                " (integer PCM: convert first, e.g. int16 samples / 32768.0,"
                " or read files with synctalk_audio.load_audio)"
            )
        raise TypeError(f"{name} must be float32 or float64, got {wav.dtype}{hint}")
    if wav.ndim != 1:
        raise ParameterError(
            f"{name} must be 1-D mono samples, got shape {wav.shape}; average the channels"
            " first (wav.mean(axis=channel_axis)) or use synctalk_audio.load_audio"
        )
    if wav.size == 0:
        raise ParameterError(f"{name} is empty: need at least one sample")
    if not wav.dtype.isnative:
        wav = wav.astype(wav.dtype.type)  # the canonical native float32/float64
    return np.ascontiguousarray(wav)


def melspectrogram(
    wav: npt.NDArray[np.floating],
    *,
    pad_mode: PadMode | None = None,
    options: MelOptions | None = None,
    dtype: npt.DTypeLike = np.float32,
    threads: int = 1,
) -> np.ndarray:
    """Compute SyncTalk_2D's mel spectrogram of 16 kHz mono audio.

    Equal to ``utils.melspectrogram`` of SyncTalk_2D (wav2lip's
    ``audio.melspectrogram``) run on librosa, within 1e-6 (float32 output) —
    see docs/NUMERICS.md. The work runs in C++ with the GIL released, on the
    SIMD lanes of ``options.simd`` and on ``threads`` threads; the result is
    bitwise the same for every SIMD level and thread count.

    Parameters
    ----------
    wav : numpy.ndarray
        1-D float32 or float64 samples at ``options.sample_rate`` (16 kHz).
        Non-contiguous arrays are copied; NaN or infinite samples raise.
    pad_mode : {"constant", "reflect"}, optional
        Overrides ``options.pad_mode``: ``"constant"`` matches librosa >= 0.10
        (the default), ``"reflect"`` librosa < 0.10.
    options : MelOptions, optional
        The spectrogram parameters; SyncTalk_2D's by default.
    dtype : {numpy.float32, numpy.float64}
        Output dtype. float32 is what the encoder consumes; float64 keeps
        the core's full precision.
    threads : int
        Threads sharing the frames of this clip (the calling one included),
        1 to ``_core.MAX_THREADS``; short clips use fewer (64 frames at least
        each).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_mels, 1 + len(wav) // hop_length)`` = (80, T), C order,
        values in [-4, 4].

    Raises
    ------
    TypeError
        If ``wav`` is not a float32/float64 NumPy array.
    ParameterError
        If ``wav`` is not 1-D, is empty or holds NaN/inf, an option is bad, or
        ``threads`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from synctalk_audio import melspectrogram
    >>> t = np.arange(16000) / 16000
    >>> mel = melspectrogram((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    >>> mel.shape, mel.dtype
    ((80, 81), dtype('float32'))
    >>> bool(mel.min() >= -4 and mel.max() <= 4)
    True
    """
    samples = as_audio_array(wav)
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {out_dtype}")
    check_threads(threads)
    processor = mel_processor(_resolve(options, pad_mode))
    try:
        return processor.melspectrogram(samples, out_dtype.name, threads)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None


def melspectrogram_many(
    wavs: Sequence[npt.NDArray[np.floating]],
    *,
    pad_mode: PadMode | None = None,
    options: MelOptions | None = None,
    dtype: npt.DTypeLike = np.float32,
    threads: int | None = None,
) -> list[np.ndarray]:
    """Compute the mel spectrograms of many clips on several threads.

    Each clip is computed by the C++ core with the GIL released, so the
    threads run truly in parallel; each clip on one thread (for one long
    clip, use ``melspectrogram(..., threads=N)`` instead). Results are identical to calling
    `melspectrogram` on each clip, and come back in input order.

    Parameters
    ----------
    wavs : sequence of numpy.ndarray
        The clips; each as for `melspectrogram`.
    pad_mode, options, dtype
        As for `melspectrogram`, applied to every clip.
    threads : int, optional
        Worker threads; the number of CPUs by default.

    Returns
    -------
    list of numpy.ndarray
        One (80, T_i) array per clip.

    Examples
    --------
    >>> import numpy as np
    >>> from synctalk_audio import melspectrogram_many
    >>> clips = [np.zeros(n, dtype=np.float32) for n in (4000, 16000)]
    >>> [m.shape for m in melspectrogram_many(clips, threads=2)]
    [(80, 21), (80, 81)]
    """
    workers = check_count(threads, "threads") if threads is not None else usable_cpus()
    arrays = [as_audio_array(w, name=f"wavs[{i}]") for i, w in enumerate(wavs)]
    resolved = _resolve(options, pad_mode)
    if workers == 1 or len(arrays) <= 1:
        return [melspectrogram(a, options=resolved, dtype=dtype) for a in arrays]
    # Each thread takes the next clip, longest first, until none is left: one
    # thread start per worker rather than one task per clip, which for short
    # clips (~0.6 ms of C++ for 5 s) would cost as much as the clip.
    results: list[np.ndarray | None] = [None] * len(arrays)
    order = iter(sorted(range(len(arrays)), key=lambda i: -arrays[i].shape[0]))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            while True:
                with lock:
                    i = next(order, None)
                if i is None or failures:
                    return
                results[i] = melspectrogram(arrays[i], options=resolved, dtype=dtype)
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)

    helpers = [threading.Thread(target=work) for _ in range(min(workers, len(arrays)) - 1)]
    for thread in helpers:
        thread.start()
    work()
    for thread in helpers:
        thread.join()
    if failures:
        raise failures[0]
    return cast("list[np.ndarray]", results)  # every slot is filled when none failed
