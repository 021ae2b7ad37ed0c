"""Exporting checkpoints to ONNX, one module per kind of model.

`synctalk_audio.export.ave`: SyncTalk_2D's ``audio_visual_encoder.pth`` (the
``ave`` mode's AudioEncoder) to ONNX, checked against PyTorch; its public
names are re-exported here. `synctalk_audio.export.hubert`: a HuggingFace
HuBERT checkpoint directory (the ``hubert`` mode's model) to ONNX, checked
against a freshly loaded PyTorch model. `synctalk_audio.export.common`: the
errors and the optional PyTorch import every exporter shares.

`EXPORTERS` maps a mode's name to the function exporting its checkpoint
(``synctalk-audio export --mode``); each is called as
``f(checkpoint, output, opset=..., tolerance=...)`` and returns a report
whose ``str()`` is a readable summary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .ave import *  # noqa: F403  (the public names of export.ave)
from .ave import __all__ as _ave_all
from .ave import export_onnx
from .hubert import HubertExportReport, export_hubert

__all__ = [*_ave_all, "EXPORTERS", "HubertExportReport", "export_hubert"]

#: --mode -> (exporter, what it takes as --checkpoint).
EXPORTERS: dict[str, tuple[Callable[..., Any], str]] = {
    "ave": (export_onnx, "audio_visual_encoder.pth (keys with or without 'audio_encoder.')"),
    "hubert": (
        export_hubert,
        "a HuggingFace HuBERT checkpoint directory (config.json + model.safetensors or"
        " pytorch_model.bin), e.g. facebook/hubert-large-ls960-ft from your HuggingFace cache",
    ),
}
