"""Exporting checkpoints to ONNX, one module per kind of model.

`synctalk_audio.export.ave`: SyncTalk_2D's ``audio_visual_encoder.pth`` (the
``ave`` mode's AudioEncoder) to ONNX, checked against PyTorch; its public
names are re-exported here. `synctalk_audio.export.common`: the errors and
the optional PyTorch import every exporter shares.
"""

from __future__ import annotations

from .ave import (
    CHECK_BATCH_SIZES,
    ENCODER_BLOCKS,
    ENCODER_PREFIX,
    INPUT_NAME,
    OUTPUT_NAME,
    ExportCheckError,
    ExportError,
    ExportReport,
    MissingDependencyError,
    build_audio_encoder,
    check_windows,
    encoder_parameter_count,
    encoder_state_shapes,
    export_onnx,
    load_audio_encoder,
    load_encoder_state_dict,
    normalise_encoder_state_dict,
)

__all__ = [
    "CHECK_BATCH_SIZES",
    "ENCODER_BLOCKS",
    "ENCODER_PREFIX",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "ExportCheckError",
    "ExportError",
    "ExportReport",
    "MissingDependencyError",
    "build_audio_encoder",
    "check_windows",
    "encoder_parameter_count",
    "encoder_state_shapes",
    "export_onnx",
    "load_audio_encoder",
    "load_encoder_state_dict",
    "normalise_encoder_state_dict",
]
