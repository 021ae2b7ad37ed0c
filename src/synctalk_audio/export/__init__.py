"""Exporting checkpoints to ONNX, one module per kind of model.

`synctalk_audio.export.ave`: SyncTalk_2D's ``audio_visual_encoder.pth`` (the
``ave`` mode's AudioEncoder) to ONNX, checked against PyTorch; its public
names are re-exported here. `synctalk_audio.export.hubert`: a HuggingFace
HuBERT checkpoint directory (the ``hubert`` mode's model) to ONNX, checked
against a freshly loaded PyTorch model. `synctalk_audio.export.common`: the
errors and the optional PyTorch import every exporter shares.

Which exporter serves which mode is a fact of the mode (`FeatureMode.exporter`,
``"module:function"``, and `FeatureMode.checkpoint_help`); `exporter_of`
imports it. Each is called as ``f(checkpoint, output, opset=...,
tolerance=...)`` and returns a report whose ``str()`` is a readable summary.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..errors import ParameterError
from ..modes import REGISTRY, get_mode
from .ave import *  # noqa: F403  (the public names of export.ave)
from .ave import __all__ as _ave_all
from .hubert import HubertExportReport, export_hubert

__all__ = [*_ave_all, "HubertExportReport", "exportable_modes", "export_hubert", "exporter_of"]


def exportable_modes() -> list[str]:
    """Names of the registered modes that have an exporter."""
    return [name for name, mode in REGISTRY.items() if mode.exporter]


def exporter_of(mode: str) -> Callable[..., Any]:
    """The function exporting ``mode``'s checkpoint to ONNX.

    Raises
    ------
    ParameterError
        If the mode is unknown or has no exporter.
    """
    found = get_mode(mode)
    if not found.exporter:
        raise ParameterError(
            f"mode '{found.name}' has no exporter: its model is used as upstream ships it"
            f" (modes with one: {', '.join(exportable_modes())})"
        )
    module, _, function = found.exporter.partition(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]
