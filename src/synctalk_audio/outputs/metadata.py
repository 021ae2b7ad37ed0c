"""metadata.json: one builder for every command and engine.

`run_metadata` lays out what a run writes (input facts, counts, the mode's
settings, timings, and optionally the model and versions); `Pipeline`, the
block-by-block writer and ``synctalk-audio stream`` all call it, so the
files of ``process`` and ``stream`` have the same structure.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from .._version import __version__
from ..frontends.audio import AudioInfo

if TYPE_CHECKING:
    from ..spec import RunSpec

__all__ = ["input_facts", "run_metadata", "versions"]


def versions(backend: str | None = None) -> dict[str, str]:
    """Versions of everything that shapes the numbers, for metadata.json.

    ``backend`` is the encoder's backend (`Encoder.describe`'s ``backend``):
    its runtime's version is listed (`encoders.runtime_versions`; the
    default backend's when None, none for a backend not registered).
    """
    import soundfile
    import soxr

    from ..encoders import runtime_versions

    return {
        "synctalk_audio": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        **runtime_versions(backend),
        "soundfile": soundfile.__version__,
        "libsndfile": soundfile.__libsndfile_version__,
        "soxr": soxr.__version__,
        "platform": sys.platform,
    }


def input_facts(info: AudioInfo) -> dict[str, Any]:
    """The ``input`` part of metadata.json for a file, file object or array."""
    return {
        "path": info.source if info.source.startswith("<") else os.path.abspath(info.source),
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "duration_s": info.duration,
        "format": info.format,
    }


def run_metadata(
    spec: RunSpec,
    *,
    input: dict[str, Any],
    counts: dict[str, int],
    timings: dict[str, float],
    complete: bool | None = None,
    model: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What metadata.json holds for one run.

    Parameters
    ----------
    spec : RunSpec
        The run's settings (`RunSpec.describe` gives ``settings``).
    input : dict
        Facts of the input (`input_facts` for files).
    counts : dict
        The mode's counts and ``frames``.
    timings : dict
        Seconds per stage.
    complete : bool, optional
        For a stream: whether it reached the end of its input.
    model : dict, optional
        The encoder's facts (`Encoder.describe`); the versions are added with it.
    """
    metadata: dict[str, Any] = {
        "input": input,
        "counts": counts,
        "settings": spec.describe(),
    }
    if complete is not None:
        metadata["complete"] = complete
    metadata["timings"] = timings
    if model is not None:
        metadata["model"] = model
        metadata["versions"] = versions(model.get("backend"))
    return metadata
