"""The batch engine under its public name: see `synctalk_audio.engines.pipeline`."""

from __future__ import annotations

from .engines.pipeline import Pipeline
from .modes.ave import DEFAULT_MODEL
from .outputs.metadata import versions
from .spec import RunSpec

__all__ = ["DEFAULT_MODEL", "Pipeline", "RunSpec", "versions"]
