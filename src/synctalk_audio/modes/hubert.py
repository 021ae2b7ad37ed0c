"""Mode ``hubert``: HuBERT ``last_hidden_state`` pairs, as Ultralight-Digital-Human computes them.

The features SyncTalk_2D trains on by default (``aud_hu.npy``) come from
Ultralight-Digital-Human's ``data_utils/hubert.py`` with
``facebook/hubert-large-ls960-ft``; this mode does what it does:

- Loader: `load_first_channel_with_info`: ``soundfile.read`` in float64,
  the FIRST channel, then soxr HQ to 16 kHz on float64 with librosa's length
  rule ``ceil(n * 16000 / rate)`` (unchanged at 16 kHz). The channel is
  taken before resampling (upstream resamples across the channels of a
  stereo file: a documented fix). An array is taken as 16 kHz mono.
- Front end: ``Wav2Vec2FeatureExtractor``'s normalisation: cast to float32,
  then ``(x - mean) / sqrt(var + 1e-7)`` over the WHOLE clip, in float32.
- Encoder: HuBERT exported to ONNX (``synctalk-audio export --mode hubert``),
  input ``(1, length)`` float32, output ``last_hidden_state`` (1, frames,
  1024); checked by its signature (model kind ``hubert``, `encoders.HubertEncoder`).
- Chunks (upstream's, for memory): chunk i < ``L // 320000`` is samples
  ``[320000 i, 320000 i + 320080)`` (1000 rows), then the remainder from
  ``320000 * (L // 320000)`` if it has at least 400 samples. The rows are
  concatenated and cut or zero-padded to ``T = (L - 80) // 320``.
- Odd T (option ``odd_frames``): ``pad`` appends a zero row (current
  upstream, default), ``drop`` drops the last row (upstream up to mid-2025).
- Feature array: ``aud_hu.npy`` (T / 2, 2, 1024), one row per 25 fps video
  frame (row i covers samples [640 i, 640 i + 720)).
- Frames: h = 8 -> (32, 32, 32), h = 4 -> (16, 32, 32).
- Not streamable exactly: the normalisation needs the whole clip and the
  attention spans a whole 20 s chunk.
- Shortest input: 400 samples at 16 kHz (one HuBERT frame).
"""

from __future__ import annotations

import os
import time

import numpy as np

from ..encoders import Encoder
from ..encoders.kinds import HIDDEN_SIZE, MIN_SAMPLES, STRIDE
from ..errors import ModelError, ParameterError
from ..frontends.audio import (
    TARGET_RATE,
    AudioInfo,
    AudioSource,
    load_first_channel_with_info,
)
from .base import BatchResult, FeatureMode, ModeOption, ModeSettings, Progress

__all__ = [
    "CHUNK_SAMPLES",
    "CHUNK_STEP",
    "DEFAULT_MODEL",
    "HIDDEN_SIZE",
    "MIN_SAMPLES",
    "HubertMode",
    "hubert_frame_count",
    "normalise",
]

#: Where the HuBERT model is looked for when no model is given.
DEFAULT_MODEL = os.path.join("models", "hubert.onnx")
#: Upstream's chunking: a new chunk every 20 s, each 20 s + 80 samples long (1000 rows).
CHUNK_STEP = 320000
CHUNK_SAMPLES = 320080
#: Wav2Vec2FeatureExtractor's variance floor.
NORM_EPS = 1e-7


def hubert_frame_count(samples: int) -> int:
    """T = (L - 80) // 320: the rows upstream keeps for L samples at 16 kHz.

    Examples
    --------
    >>> hubert_frame_count(400), hubert_frame_count(32000), hubert_frame_count(341520)
    (1, 99, 1067)
    """
    return (samples - (MIN_SAMPLES - STRIDE)) // STRIDE


def normalise(samples: np.ndarray) -> np.ndarray:
    """``Wav2Vec2FeatureExtractor``'s zero-mean unit-variance normalisation, bit for bit.

    It casts float64 input to float32 first, then computes
    ``(x - x.mean()) / np.sqrt(x.var() + 1e-7)`` on the float32 array
    (NumPy's float32 mean and variance).
    """
    x = np.asarray(samples, dtype=np.float32)
    return np.asarray((x - x.mean()) / np.sqrt(x.var() + NORM_EPS), dtype=np.float32)


def require_hubert_samples(samples: int) -> None:
    """`ParameterError` if ``samples`` (16 kHz) is shorter than one HuBERT frame."""
    if samples < MIN_SAMPLES:
        raise ParameterError(
            f"audio too short for mode 'hubert': need at least {MIN_SAMPLES} samples at 16 kHz"
            f" ({MIN_SAMPLES / TARGET_RATE:.4g} s, one HuBERT frame), got {samples}"
        )


class HubertMode(FeatureMode):
    """Ultralight-Digital-Human's ``hubert`` features; see the module docstring."""

    name = "hubert"
    feature_file = "aud_hu.npy"
    row_shape = (2, HIDDEN_SIZE)
    native_fps = 25.0
    frame_shapes = {8: (32, 32, 32), 4: (16, 32, 32)}
    default_model = DEFAULT_MODEL
    model_kind = "hubert"
    front_end = "normalise"
    stream_refusal = (
        "its input is normalised with the whole clip's mean and variance and its attention"
        " spans 20 s chunks, so no frame is exact before the input ends; use process"
    )
    options = (
        ModeOption(
            "odd_frames",
            ("pad", "drop"),
            "pad",
            "hubert: an odd number of 50 Hz rows gets a zero row appended (pad, current"
            " Ultralight-Digital-Human) or loses its last row (drop, its version up to mid-2025)",
        ),
    )
    exporter = "synctalk_audio.export.hubert:export_hubert"
    checkpoint_help = (
        "a HuggingFace HuBERT checkpoint directory (config.json + model.safetensors or"
        " pytorch_model.bin), e.g. facebook/hubert-large-ls960-ft from your HuggingFace cache"
    )

    def load_file(
        self, source: AudioSource, *, max_duration: float | None
    ) -> tuple[np.ndarray, AudioInfo]:
        """Float64 first channel at 16 kHz (`load_first_channel_with_info`)."""
        return load_first_channel_with_info(source, max_duration=max_duration)

    def compute(
        self,
        samples: np.ndarray,
        encoder: Encoder,
        settings: ModeSettings,
        *,
        progress: Progress | None = None,
    ) -> BatchResult:
        """Normalise, encode chunk by chunk, cut to T rows, pad or drop odd T, pair."""
        length = int(samples.shape[0])
        require_hubert_samples(length)
        t = time.perf_counter()
        values = normalise(samples)
        normalise_s = time.perf_counter() - t
        t = time.perf_counter()
        full = length // CHUNK_STEP
        bounds = [(CHUNK_STEP * i, CHUNK_STEP * i + CHUNK_SAMPLES) for i in range(full)]
        if length - CHUNK_STEP * full >= MIN_SAMPLES:
            bounds.append((CHUNK_STEP * full, length))
        pieces = []
        for done, (begin, end) in enumerate(bounds, 1):
            pieces.append(encoder.encode(values[None, begin:end]))
            if progress is not None:
                progress(done, len(bounds))
        hidden = np.concatenate(pieces)
        count = hubert_frame_count(length)
        if abs(hidden.shape[0] - count) > 1:
            raise ModelError(
                f"the HuBERT model gave {hidden.shape[0]} rows for {length} samples;"
                f" (L - 80) // 320 = {count} expected"
            )
        rows = np.zeros((count + count % 2, HIDDEN_SIZE), np.float32)
        rows[: min(count, hidden.shape[0])] = hidden[:count]
        if count % 2 and settings.option("odd_frames") == "drop":
            rows = rows[: count - 1]
        if rows.shape[0] == 0:
            raise ParameterError(
                f"audio too short for mode 'hubert' with odd_frames 'drop': {length} samples give"
                " one HuBERT row, which drop removes; at least 720 samples at 16 kHz give a frame"
            )
        return BatchResult(
            rows.reshape(-1, *self.row_shape),
            {"samples_16k": length, "hubert_frames": count, "chunks": len(bounds)},
            {"normalise_s": normalise_s, "encode_s": time.perf_counter() - t},
        )
