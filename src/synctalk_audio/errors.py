"""Exceptions raised by synctalk_audio."""

from __future__ import annotations

__all__ = ["AudioLoadError", "ModelError", "ParameterError"]


class ParameterError(ValueError):
    """An argument has a bad value, shape or content (empty, NaN, too short).

    The message says what was wrong and what to do about it.
    """


class AudioLoadError(ValueError):
    """An audio file or stream could not be decoded into samples.

    Raised for empty files, files that are not audio, truncated headers,
    codecs libsndfile does not support and files with zero samples.
    """


class ModelError(ValueError):
    """An encoder model is missing, unreadable or not the expected network.

    SyncTalk_2D's AVE audio encoder takes float32 (B, 1, 80, 16) mel windows
    and returns (B, 512) features; anything else is refused at load time.
    """
