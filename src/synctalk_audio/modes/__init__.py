"""The feature modes, registered in one place.

`REGISTRY` maps a mode's name (``--mode``) to its `FeatureMode` object. A new
mode is one module defining a `FeatureMode` subclass (see `modes.base`) and
one line here.
"""

from __future__ import annotations

from .. import _core
from ..errors import ParameterError
from ..limits import check_count, usable_cpus
from .ave import AveMode
from .base import (
    DEFAULT_HALF_WINDOW,
    BatchResult,
    FeatureMode,
    ModeOption,
    ModeSettings,
    RowStream,
)
from .hubert import HubertMode
from .wenet import WenetMode

__all__ = [
    "DEFAULT_HALF_WINDOW",
    "REGISTRY",
    "BatchResult",
    "FeatureMode",
    "ModeOption",
    "ModeSettings",
    "RowStream",
    "feature_files",
    "get_mode",
    "register",
]

#: name -> mode: the modes `Pipeline`, `FeatureStreamer` and ``--mode`` accept.
REGISTRY: dict[str, FeatureMode] = {
    "ave": AveMode(),
    "hubert": HubertMode(),
    "wenet": WenetMode(),
}


def register(mode: FeatureMode) -> FeatureMode:
    """Add ``mode`` to `REGISTRY` under its name (for modes defined outside the package)."""
    if not mode.name:
        raise ValueError("a feature mode needs a name")
    REGISTRY[mode.name] = mode
    return mode


def feature_files() -> str:
    """Each registered mode's feature file, for help texts and messages.

    Returns
    -------
    str
        ``"MODE: FILE; ..."`` in registry order (as ``--model`` lists the default models).

    Examples
    --------
    >>> feature_files()
    'ave: aud_ave.npy; hubert: aud_hu.npy; wenet: aud_wenet.npy'
    """
    return "; ".join(f"{mode.name}: {mode.feature_file}" for mode in REGISTRY.values())


def get_mode(mode: str | FeatureMode) -> FeatureMode:
    """The registered mode called ``mode`` (a `FeatureMode` is returned as it is).

    Raises
    ------
    ParameterError
        If no mode of that name is registered; the message lists those that are.
    """
    if isinstance(mode, FeatureMode):
        return mode
    found = REGISTRY.get(mode) if isinstance(mode, str) else None
    if found is not None:
        return found
    raise ParameterError(f"unknown mode '{mode}': expected one of {', '.join(REGISTRY)}")


def front_end_threads(threads: int | None) -> int:
    """Threads of the C++ front end for an engine's ``threads`` setting.

    The same number as the encoder gets (the front end runs before or
    between encoder calls, never beside them), or every CPU this process may
    run on when None (the encoder then takes ONNX Runtime's default). Frames
    per thread are at least 64, so short inputs and live chunks stay on one
    thread.
    """
    if threads is None:
        return min(usable_cpus(), _core.MAX_THREADS)
    return min(check_count(threads, "threads"), _core.MAX_THREADS)
