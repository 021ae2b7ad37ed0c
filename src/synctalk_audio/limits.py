"""The accepted ranges of frame rates, sample rates, channel counts and durations.

Each range is defined here once and checked by one function, which every
entry point calls: the command (``--fps``, ``--rate``, ``--channels``,
``--max-duration``), `Pipeline`, `FeatureStreamer` / `FeatureStream`, the
window functions and the audio loader. A value outside its range raises
`ParameterError` naming the value and the range, before any work is done.

- frame rate: ``1 <= fps < 80``, finite. 80 is the mel frame rate (16 kHz,
  hop 200): below it every video frame gets its own mel frame.
- sample rate: an integer from 1000 to 768000 Hz, the range of
  `MelOptions.sample_rate` (defined in ``cpp/include/synctalk/options.h``).
- channels: an integer from 1 to 1024 (libsndfile's own limit).
- duration: at most `DEFAULT_MAX_DURATION` (24 h) of audio per input unless
  the caller sets another limit (``max_duration``, ``--max-duration``).
"""

from __future__ import annotations

import math
import numbers
import os

from . import _core
from .errors import ParameterError

__all__ = [
    "DEFAULT_MAX_DURATION",
    "FPS_MAX",
    "FPS_MIN",
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MEL_FRAMES_PER_SECOND",
    "MIN_SAMPLE_RATE",
    "check_channels",
    "check_duration",
    "check_fps",
    "check_index",
    "check_max_duration",
    "check_sample_rate",
]

#: Mel frames per second at 16 kHz with a hop of 200 samples.
MEL_FRAMES_PER_SECOND = 80.0
#: Lowest accepted video frame rate.
FPS_MIN = 1.0
#: Video frame rates must be below this: the mel frame rate.
FPS_MAX = MEL_FRAMES_PER_SECOND
#: Lowest accepted sample rate, Hz.
MIN_SAMPLE_RATE: int = _core.MIN_SAMPLE_RATE
#: Highest accepted sample rate, Hz.
MAX_SAMPLE_RATE: int = _core.MAX_SAMPLE_RATE
#: Most interleaved channels accepted.
MAX_CHANNELS = 1024
#: Default limit on the duration of one input, seconds (24 hours).
DEFAULT_MAX_DURATION = 86400.0


def _shown(value: object) -> str:
    return str(value) if isinstance(value, numbers.Real) else repr(value)


def check_fps(fps: object, *, name: str = "fps") -> float:
    """Return ``fps`` as a float if ``1 <= fps < 80``; raise `ParameterError` otherwise.

    Examples
    --------
    >>> check_fps(25)
    25.0
    """
    if isinstance(fps, numbers.Real) and not isinstance(fps, bool):
        value = float(fps)
        if math.isfinite(value) and FPS_MIN <= value < FPS_MAX:
            return value
    raise ParameterError(
        f"{name} must be a number from {FPS_MIN:g} to below {FPS_MAX:g} (the mel frame rate),"
        f" got {_shown(fps)}",
        parameter=name,
    )


def _check_int(value: object, low: int, high: int, name: str, unit: str) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if low <= int(value) <= high:
            return int(value)
    raise ParameterError(
        f"{name} must be an integer from {low} to {high}{unit}, got {_shown(value)}",
        parameter=name,
    )


def check_index(value: object, name: str = "index") -> int:
    """``value`` as an int if it is an integer >= 0 (a frame or row number).

    Raises
    ------
    ParameterError
        Otherwise (a negative number, a float, a bool, None), naming ``name``.

    Examples
    --------
    >>> check_index(3)
    3
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0:
        return int(value)
    raise ParameterError(
        f"{name} must be a frame number, an integer >= 0, got {_shown(value)}", parameter=name
    )


def check_sample_rate(rate: object, *, name: str = "sample_rate") -> int:
    """Return ``rate`` as an int if it is an integer from 1000 to 768000 Hz.

    Raises
    ------
    ParameterError
        Otherwise, naming the value and the range.
    """
    return _check_int(rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE, name, " Hz")


def check_channels(channels: object, *, name: str = "channels") -> int:
    """Return ``channels`` as an int if it is an integer from 1 to 1024."""
    return _check_int(channels, 1, MAX_CHANNELS, name, "")


def check_max_duration(max_duration: object, *, name: str = "max_duration") -> float | None:
    """Validate a duration limit: None (no limit) or a finite number of seconds > 0."""
    if max_duration is None:
        return None
    if isinstance(max_duration, numbers.Real) and not isinstance(max_duration, bool):
        value = float(max_duration)
        if math.isfinite(value) and value > 0:
            return value
    raise ParameterError(
        f"{name} must be a positive number of seconds, got {_shown(max_duration)}",
        parameter=name,
    )


def check_duration(
    frames: int,
    sample_rate: int,
    max_duration: float | None,
    *,
    source: str,
    verb: str = "declares",
) -> None:
    """Raise `ParameterError` if ``frames`` at ``sample_rate`` exceed ``max_duration`` seconds.

    Called with what a file's header declares, before it is decoded, and on
    every chunk of a stream. The message says what was asked and how to
    allow it.
    """
    if max_duration is None or frames <= max_duration * sample_rate:
        return
    raise ParameterError(
        f"{source} {verb} {frames / sample_rate:.6g} s of audio ({sample_rate} Hz x {frames}"
        f" frames); the limit is {max_duration:g} s: pass a larger --max-duration"
        " (max_duration in Python) to allow it"
    )


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else the CPU count).

    The default number of threads or workers wherever the package picks one.
    """
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def check_count(value: object, name: str) -> int:
    """``value`` if it is an integer >= 1 (threads, workers, sizes); else `ParameterError`.

    The error's message starts with ``name``, the keyword argument, and its
    ``parameter`` is ``name``: the command says its option instead
    (``--threads``; `ParameterError.named`).

    >>> check_count(2, "threads")
    2
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}", parameter=name)
    return value
