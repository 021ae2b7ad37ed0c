"""Exceptions raised by synctalk_audio."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DEBUG_ENV", "AudioLoadError", "ModelError", "ParameterError", "WorkerStartError"]

#: Set this environment variable to 1 to see the traceback of an unexpected error
#: (the commands, and a job's workers, print one line otherwise).
DEBUG_ENV = "SYNCTALK_AUDIO_DEBUG"


class ParameterError(ValueError):
    """An argument has a bad value, shape or content (empty, NaN, too short).

    The message says what was wrong and what to do about it.

    Parameters
    ----------
    message : str
        The message.
    parameter : str, optional
        The keyword argument the message is about, if it is about one; the
        message then starts with that name (``"threads must be a positive
        integer, got 0"``), so that a caller which calls the value something
        else, such as the command's ``--threads``, can say it its own way
        (`named`).

    Examples
    --------
    >>> error = ParameterError("threads must be a positive integer, got 0", parameter="threads")
    >>> error.named({"threads": "--threads"})
    '--threads must be a positive integer, got 0'
    >>> str(error)
    'threads must be a positive integer, got 0'
    """

    def __init__(self, message: str = "", *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter

    def named(self, names: Mapping[str, str]) -> str:
        """The message, with its parameter called by ``names[parameter]`` if it has one.

        Parameters
        ----------
        names : mapping of str to str
            Keyword argument -> the caller's name for it (e.g. ``"batch_size"``
            -> ``"--batch-size"``).

        Returns
        -------
        str
            The message; if `parameter` is in ``names`` and starts the message,
            with that start replaced by its name from ``names``.
        """
        message = str(self)
        name = self.parameter
        if name is None or name not in names or not message.startswith(name):
            return message
        return names[name] + message[len(name) :]


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


class WorkerStartError(RuntimeError):
    """A job's worker could not be built (its model did not load, for example).

    Every worker of a job is built the same way, so the first one that fails
    stops the job with this one error instead of failing each item with it.
    The message is the worker's error, with its type (``ModelError: ...``).
    """
