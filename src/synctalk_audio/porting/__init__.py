"""The port kit: staged reference vectors of every mode and a checker for ports.

`synctalk_audio.porting.reference`: each mode's path as upstream computes it
(librosa, NumPy float64, ONNX Runtime), stage by stage, written as ``.npy``
files plus ``index.json`` (``synctalk-audio vectors``).
`synctalk_audio.porting.conform`: a port's dumps compared stage by stage with
such a directory, each stage held to its tolerance (``synctalk-audio conform``).
"""

from __future__ import annotations

from .conform import ConformError, ConformResult, StageVerdict, conform
from .reference import (
    INDEX_FILE,
    VECTORS_FORMAT,
    Stage,
    Tolerance,
    reference_stages,
    write_vectors,
)

__all__ = [
    "INDEX_FILE",
    "VECTORS_FORMAT",
    "ConformError",
    "ConformResult",
    "Stage",
    "StageVerdict",
    "Tolerance",
    "conform",
    "reference_stages",
    "write_vectors",
]
