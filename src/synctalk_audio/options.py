"""Options of the front ends, mirroring the C++ ``synctalk::MelOptions`` and ``FbankOptions``."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Literal, TypeVar

from . import _core
from .errors import ParameterError

__all__ = ["FbankOptions", "MelOptions", "PadMode", "SimdLevel"]

PadMode = Literal["constant", "reflect"]
#: A SIMD level of the core (`synctalk_audio.frontends.mel.simd_levels`); every
#: level gives the same bits, see docs/NUMERICS.md ("SIMD lanes").
SimdLevel = Literal["auto", "scalar", "sse2", "avx2", "avx512", "neon"]


@dataclasses.dataclass(frozen=True)
class MelOptions:
    """Every parameter of SyncTalk_2D's (wav2lip's) mel spectrogram.

    The defaults are the values the SyncTalk_2D audio encoder was trained
    with; change them only to study the pipeline. Field for field the same as
    the C++ struct ``synctalk::MelOptions`` (``cpp/include/synctalk/options.h``).

    Every field is bounded, generously but safely (no overflow to inf, no
    allocation or run time out of proportion to the input); a value outside
    its range raises `ParameterError` naming the field, the value and the
    range. The bounds are defined once, in ``cpp/include/synctalk/options.h``.

    Attributes
    ----------
    sample_rate : int
        Rate of the input samples, Hz, 1000 to 768000. The reference
        resamples to 16000 first.
    n_fft : int
        FFT length in samples (800 = 50 ms), 1 to 65536, with no prime factor
        above 1024.
    hop_length : int
        Frame shift in samples (200 = 12.5 ms, 80 mel frames per second),
        1 to 65536.
    win_length : int
        Length of the periodic Hann window, centred in ``n_fft``; 1 to ``n_fft``.
    n_mels : int
        Number of mel bands, 1 to 4096.
    fmin, fmax : float
        Lowest and highest filter edges, Hz (Slaney mel scale and norm):
        ``0 <= fmin < fmax <= sample_rate / 2``.
    preemphasis : float
        Pre-emphasis coefficient, -1 to 1: ``y[n] = x[n] - preemphasis * x[n-1]``.
    ref_level_db : float
        Subtracted after the dB conversion; -1000 to 1000.
    min_level_db : float
        Floor of the dB scale (amplitude floor ``10 ** (min_level_db / 20)``),
        from -1000 to below 0.
    max_abs_value : float
        The output is clipped to ``[-max_abs_value, max_abs_value]``;
        above 0, at most 1e6.
    pad_mode : {"constant", "reflect"}
        Padding of the centred STFT: zeros (librosa >= 0.10, the default) or
        reflection (librosa < 0.10). They differ only in the first and last
        two mel frames.
    simd : {"auto", "scalar", "sse2", "avx2", "avx512", "neon"}
        Which SIMD lanes compute the FFT, magnitude and filterbank: the best
        this CPU supports (``auto``), or one level (`ParameterError` if this
        CPU lacks it). Every level gives bitwise the same result as
        ``scalar``, the reference code a port transcribes. The environment
        variable ``SYNCTALK_AUDIO_SIMD`` caps the level of every processor
        built while it is set (e.g. ``SYNCTALK_AUDIO_SIMD=scalar``).

    Examples
    --------
    >>> from synctalk_audio import MelOptions
    >>> MelOptions().n_mels
    80
    >>> MelOptions(pad_mode="reflect").pad_mode
    'reflect'
    """

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
    pad_mode: PadMode = "constant"
    simd: SimdLevel = "auto"

    def __post_init__(self) -> None:
        self.to_core()  # validates every field, raising ParameterError

    def to_core(self) -> _core.MelOptions:
        """Return the equivalent C++ options object, validated.

        Raises
        ------
        ParameterError
            If a field has a bad value; the message names it.
        """
        return _fill_core(self, _core.MelOptions(), _FIELD_TYPES, "mel")

    def num_frames(self, num_samples: int) -> int:
        """Mel frames for ``num_samples`` samples, as librosa's centred STFT gives them.

        ``1 + num_samples // hop_length`` for an even ``n_fft`` (the default),
        ``1 + (num_samples - 1) // hop_length`` for an odd one.
        """
        padded = int(num_samples) + 2 * (self.n_fft // 2)
        return 1 + (padded - self.n_fft) // self.hop_length


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "sample_rate": (numbers.Integral,),
    "n_fft": (numbers.Integral,),
    "hop_length": (numbers.Integral,),
    "win_length": (numbers.Integral,),
    "n_mels": (numbers.Integral,),
    "fmin": (numbers.Real,),
    "fmax": (numbers.Real,),
    "preemphasis": (numbers.Real,),
    "ref_level_db": (numbers.Real,),
    "min_level_db": (numbers.Real,),
    "max_abs_value": (numbers.Real,),
    "pad_mode": (str,),
    "simd": (str,),
}


_CoreT = TypeVar("_CoreT", _core.MelOptions, _core.FbankOptions)


def _fill_core(
    options: object, core: _CoreT, field_types: dict[str, tuple[type, ...]], what: str
) -> _CoreT:
    """Copy the dataclass ``options`` into the C++ options ``core`` and validate it.

    Raises `ParameterError` naming the field for a wrong type or a value the
    core refuses (``what`` names the options in the message: "mel", "fbank").
    """
    names = {"Integral": "an integer", "Real": "a number", "str": "a string", "bool": "a bool"}
    for field in dataclasses.fields(options):  # type: ignore[arg-type]
        value = getattr(options, field.name)
        expected = field_types[field.name]
        if expected[0] is bool:
            ok = isinstance(value, bool)
        else:
            ok = not isinstance(value, bool) and isinstance(value, expected)
        if not ok:
            raise ParameterError(
                f"invalid {what} option {field.name}={value!r}: expected"
                f" {names[expected[0].__name__]}, got {type(value).__name__}"
            )
        if isinstance(value, bool):
            pass
        elif isinstance(value, numbers.Integral) and not isinstance(value, str):
            value = int(value) if expected[0] is numbers.Integral else float(value)
            if isinstance(value, int) and not -(2**31) <= value < 2**31:
                raise ParameterError(
                    f"invalid {what} option {field.name}={value}: out of range"
                    f" (see {type(options).__name__} for the accepted ranges)"
                )
        elif isinstance(value, numbers.Real):
            value = float(value)
        try:
            setattr(core, field.name, value)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"invalid {what} option {field.name}={value!r}: {exc}") from None
    try:
        core.validate()
    except (TypeError, ValueError) as exc:
        raise ParameterError(str(exc)) from None
    return core


@dataclasses.dataclass(frozen=True)
class FbankOptions:
    """Every parameter of the Kaldi log mel filterbank of the ``wenet`` mode.

    The defaults are the arguments Ultralight-Digital-Human's WeNet front end
    passes to ``torchaudio.compliance.kaldi.fbank`` (80 bins, 25 ms frames
    every 10 ms at 16 kHz, dither 0, energy floor 0); the rest of Kaldi's
    definition is fixed: povey window, frames zero-padded to the next power of
    two, power spectrum, Kaldi mel scale ``1127 ln(1 + f / 700)``, log floored
    at FLT_EPSILON, ``snip_edges`` (only whole frames). Field for field the same
    as the C++ struct ``synctalk::FbankOptions`` (``cpp/include/synctalk/options.h``);
    a bad value raises `ParameterError` naming the field, the value and the range.

    Attributes
    ----------
    sample_rate : int
        Rate of the input samples, Hz, 1000 to 768000.
    frame_length : int
        Frame length in samples (400 = 25 ms), 2 to 65536.
    frame_shift : int
        Frame shift in samples (160 = 10 ms), 1 to 65536.
    num_bins : int
        Number of mel bins, 4 to 4096.
    low_freq, high_freq : float
        Lowest and highest filter edges, Hz: ``0 <= low_freq < high_freq <= sample_rate / 2``.
    preemphasis : float
        Pre-emphasis coefficient, -1 to 1 (``x[0]`` uses itself as its predecessor).
    remove_dc_offset : bool
        Subtract each frame's mean first.
    simd : {"auto", "scalar", "sse2", "avx2", "avx512", "neon"}
        The SIMD level, as for `MelOptions`; every level gives the same bits.

    Examples
    --------
    >>> from synctalk_audio.options import FbankOptions
    >>> FbankOptions().num_frames(16000)
    98
    """

    sample_rate: int = 16000
    frame_length: int = 400
    frame_shift: int = 160
    num_bins: int = 80
    low_freq: float = 20.0
    high_freq: float = 8000.0
    preemphasis: float = 0.97
    remove_dc_offset: bool = True
    simd: SimdLevel = "auto"

    def __post_init__(self) -> None:
        self.to_core()  # validates every field, raising ParameterError

    def to_core(self) -> _core.FbankOptions:
        """Return the equivalent C++ options object, validated.

        Raises
        ------
        ParameterError
            If a field has a bad value; the message names it.
        """
        return _fill_core(self, _core.FbankOptions(), _FBANK_FIELD_TYPES, "fbank")

    def num_frames(self, num_samples: int) -> int:
        """Frames of ``num_samples`` samples: ``1 + (n - frame_length) // frame_shift``, or 0."""
        n = int(num_samples)
        return 0 if n < self.frame_length else 1 + (n - self.frame_length) // self.frame_shift


_FBANK_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "sample_rate": (numbers.Integral,),
    "frame_length": (numbers.Integral,),
    "frame_shift": (numbers.Integral,),
    "num_bins": (numbers.Integral,),
    "low_freq": (numbers.Real,),
    "high_freq": (numbers.Real,),
    "preemphasis": (numbers.Real,),
    "remove_dc_offset": (bool,),
    "simd": (str,),
}
