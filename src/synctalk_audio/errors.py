"""Exceptions raised by synctalk_audio."""

from __future__ import annotations

__all__ = ["AudioLoadError", "ParameterError"]


class ParameterError(ValueError):
    """An argument has a bad value, shape or content (empty, NaN, too short).

    The message says what was wrong and what to do about it.
    """


class AudioLoadError(ValueError):
    """An audio file or stream could not be decoded into samples.

    Raised for empty files, files that are not audio, truncated headers,
    codecs libsndfile does not support and files with zero samples.
    """
