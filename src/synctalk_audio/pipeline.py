"""The batch engine under its public name: see `synctalk_audio.engines.pipeline`."""

from __future__ import annotations

from .engines.pipeline import *  # noqa: F403  (Pipeline, DEFAULT_MODEL, ...)
from .engines.pipeline import __all__ as __all__
