"""The batch engine under its public name: see `synctalk_audio.engines.pipeline`."""

from __future__ import annotations

from .engines.pipeline import DEFAULT_MODEL, Pipeline, check_mode, check_pad_mode, versions

__all__ = ["DEFAULT_MODEL", "Pipeline", "check_mode", "check_pad_mode", "versions"]
