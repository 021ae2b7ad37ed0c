"""The streaming engine under its public name: see `synctalk_audio.engines.streaming`."""

from __future__ import annotations

from .engines.streaming import *  # noqa: F403  (FeatureStreamer, FeatureStream, ...)
from .engines.streaming import __all__ as _engine_names
from .modes.ave import samples_needed_for_frame

__all__ = [*_engine_names, "samples_needed_for_frame"]
