"""SyncTalk_2D audio features with a C++ core.

Speech in; per-video-frame audio features out, numerically the same as the
Python code the SyncTalk_2D avatar model was trained with.

The public API:

- `load_audio` — read any file libsndfile decodes, equal to ``librosa.load(path, sr=16000)``.
- `melspectrogram`, `melspectrogram_many` — the wav2lip mel spectrogram (80, T) in C++.
- `MelOptions` — its parameters, mirroring the C++ options struct.
- `num_windows`, `window_starts`, `encoder_windows` — the 16-frame encoder windows.
- `ParameterError`, `AudioLoadError` — what bad input raises.
- `synctalk_audio.pipeline.Pipeline`, `synctalk_audio.streaming.FeatureStreamer` — the engines.
- `run_job` — many inputs to one output directory each, resumable (`synctalk_audio.jobs`).

The package by role: ``frontends`` (audio loading, the mel spectrogram, WAV
streams, encoder windows), ``modes`` (the feature modes and their registry),
``encoders`` (model kinds and backends: ONNX Runtime, OpenVINO), ``engines`` (batch,
streaming, block by block),
``outputs`` (output directories, files, metadata.json, comparison),
``commands`` (the ``synctalk-audio`` command), ``export`` (checkpoint to ONNX);
``errors``, ``limits`` and ``options`` at the top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__
from .errors import AudioLoadError, ParameterError
from .frontends.audio import AudioInfo, load_audio, load_audio_with_info
from .frontends.mel import melspectrogram, melspectrogram_many
from .frontends.windows import encoder_windows, min_samples, num_windows, window_starts
from .options import MelOptions

if TYPE_CHECKING:
    from .jobs import run_job

__all__ = [
    "AudioInfo",
    "AudioLoadError",
    "MelOptions",
    "ParameterError",
    "__version__",
    "encoder_windows",
    "load_audio",
    "load_audio_with_info",
    "melspectrogram",
    "melspectrogram_many",
    "min_samples",
    "num_windows",
    "run_job",
    "window_starts",
]


def __getattr__(name: str) -> object:
    # run_job is imported on first use: the job layer pulls in the modes and
    # multiprocessing, which `import synctalk_audio` alone does not need.
    if name == "run_job":
        from .jobs import run_job

        return run_job
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
