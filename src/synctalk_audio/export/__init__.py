"""Exporting checkpoints to ONNX, one module per kind of model.

`synctalk_audio.export.ave`: SyncTalk_2D's ``audio_visual_encoder.pth`` (the
``ave`` mode's AudioEncoder) to ONNX, checked against PyTorch; its public
names are re-exported here. `synctalk_audio.export.common`: the errors and
the optional PyTorch import every exporter shares.
"""

from __future__ import annotations

from .ave import *  # noqa: F403  (the public names of export.ave)
from .ave import __all__ as __all__
