"""Options of the mel spectrogram, mirroring the C++ ``synctalk::MelOptions``."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Literal

from . import _core
from .errors import ParameterError

__all__ = ["MelOptions", "PadMode"]

PadMode = Literal["constant", "reflect"]


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

    def __post_init__(self) -> None:
        self.to_core()  # validates every field, raising ParameterError

    def to_core(self) -> _core.MelOptions:
        """Return the equivalent C++ options object, validated.

        Raises
        ------
        ParameterError
            If a field has a bad value; the message names it.
        """
        core = _core.MelOptions()
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            expected = _FIELD_TYPES[field.name]
            if isinstance(value, bool) or not isinstance(value, expected):
                names = {"Integral": "an integer", "Real": "a number", "str": "a string"}[
                    expected[0].__name__
                ]
                raise ParameterError(
                    f"invalid mel option {field.name}={value!r}: expected {names},"
                    f" got {type(value).__name__}"
                )
            if isinstance(value, numbers.Integral) and not isinstance(value, str):
                value = int(value) if expected[0] is numbers.Integral else float(value)
                if isinstance(value, int) and not -(2**31) <= value < 2**31:
                    raise ParameterError(
                        f"invalid mel option {field.name}={value}: out of range"
                        " (see MelOptions for the accepted ranges)"
                    )
            elif isinstance(value, numbers.Real):
                value = float(value)
            try:
                setattr(core, field.name, value)
            except (TypeError, ValueError) as exc:
                raise ParameterError(f"invalid mel option {field.name}={value!r}: {exc}") from None
        try:
            core.validate()
        except (TypeError, ValueError) as exc:
            raise ParameterError(str(exc)) from None
        return core

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
}
