"""The feature modes, registered in one place.

`REGISTRY` maps a mode's name (``--mode``) to its `FeatureMode` object. A new
mode is one module defining a `FeatureMode` subclass (see `modes.base`) and
one line here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from .. import _core
from ..encoders import Backend, Encoder
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
    "configure",
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


def configure(
    mode: str | FeatureMode,
    model: str | os.PathLike[str] | Encoder | None,
    *,
    fps: float | None,
    half_window: int,
    pad_mode: str,
    batch_size: int | None,
    threads: int | None,
    backend: str | Backend | None = None,
    stream: bool = False,
    options: Mapping[str, object] | None = None,
) -> tuple[FeatureMode, ModeSettings, Encoder]:
    """The mode, its validated settings and its encoder: what `Pipeline` and
    `FeatureStreamer` are built from.

    ``model`` None means the mode's ``default_model``; ``stream`` True first
    checks that the mode streams (`FeatureMode.check_streamable`);
    ``options`` are the mode's own (`FeatureMode.options`). ``threads`` is
    given to the encoder and to the front end (`front_end_threads`);
    ``backend`` names the encoder's runtime (`encoders.BACKENDS`; the
    default one when None).
    """
    found = get_mode(mode)
    if stream:
        found.check_streamable()
    settings = found.settings(fps=fps, half_window=half_window, pad_mode=pad_mode, options=options)
    settings = dataclasses.replace(settings, threads=front_end_threads(threads))
    encoder = found.open_encoder(
        found.default_model if model is None else model,
        backend=backend,
        batch_size=batch_size,
        threads=threads,
    )
    return found, settings, encoder
