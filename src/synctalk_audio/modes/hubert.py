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
  1024); checked by its signature (`HubertEncoder`).
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
from typing import Any

import numpy as np

from ..encoders.onnx import Encoder, _dims, _run_error, file_sha256, open_session
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
    "HubertEncoder",
    "HubertMode",
    "hubert_frame_count",
    "normalise",
]

#: Where the HuBERT model is looked for when no model is given.
DEFAULT_MODEL = os.path.join("models", "hubert.onnx")
#: Width of ``last_hidden_state`` (hubert-large).
HIDDEN_SIZE = 1024
#: HuBERT's receptive field and stride, in 16 kHz samples.
MIN_SAMPLES = 400
STRIDE = 320
#: Upstream's chunking: a new chunk every 20 s, each 20 s + 80 samples long (1000 rows).
CHUNK_STEP = 320000
CHUNK_SAMPLES = 320080
#: Wav2Vec2FeatureExtractor's variance floor.
NORM_EPS = 1e-7

EXPORT_HINT = (
    "export your HuggingFace checkpoint directory with `synctalk-audio export --mode hubert"
    " --checkpoint DIR --output hubert.onnx`"
)


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


class HubertEncoder:
    """A HuBERT ONNX model (``synctalk-audio export --mode hubert``) on ONNX Runtime.

    ``encode`` takes ONE normalised chunk, float32 (1, length) with length
    >= 400, and returns its ``last_hidden_state`` rows, float32
    (frames, 1024) at 50 Hz.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ModelError
        If it is a directory (a checkpoint not exported yet), not loadable,
        or not a (batch, length) -> (batch, frames, 1024) float32 model.
    """

    feature_dim = HIDDEN_SIZE

    def __init__(self, model_path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        path = os.fspath(model_path)
        if os.path.isdir(path):
            raise ModelError(
                f"{path} is a directory; --mode hubert runs an ONNX file: {EXPORT_HINT}"
            )
        # No pre-packed copy of the weights: 1.8 GiB peak instead of 2.5 GiB
        # for hubert-large on 60 s of speech, at the same speed.
        self._session = open_session(
            path, threads=threads, missing_hint=EXPORT_HINT.capitalize(), prepack=False
        )
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        self._check_signature(path, inputs, outputs)
        self.model_path = path
        self.input_name: str = inputs[0].name
        self.output_name: str = outputs[0].name
        self.threads = threads
        self._sha256: str | None = None

    @staticmethod
    def _check_signature(path: str, inputs: list[Any], outputs: list[Any]) -> None:
        def shown(arg: Any) -> str:
            return f"'{arg.name}' {arg.type} {list(arg.shape)}"

        problem = None
        if len(inputs) != 1 or not outputs:
            names = ", ".join(shown(a) for a in inputs)
            problem = f"{len(inputs)} inputs ({names})"
        elif inputs[0].type != "tensor(float)" or len(_dims(inputs[0].shape)) != 2:
            problem = f"input {shown(inputs[0])}"
        elif (
            outputs[0].type != "tensor(float)"
            or len(_dims(outputs[0].shape)) != 3
            or _dims(outputs[0].shape)[2] not in (None, HIDDEN_SIZE)
        ):
            problem = f"output {shown(outputs[0])}"
        if problem is not None:
            raise ModelError(
                f"{path} is not a HuBERT model: mode 'hubert' expects one float32 input"
                f" (batch, length) of 16 kHz samples and a float32 (batch, frames, {HIDDEN_SIZE})"
                f" last_hidden_state output, got {problem}; {EXPORT_HINT}"
            )

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """One normalised chunk (1, length) -> its rows (frames, 1024), float32, finite."""
        if windows.ndim != 2 or windows.shape[0] != 1 or windows.shape[1] < MIN_SAMPLES:
            raise ParameterError(
                f"a HuBERT chunk must have shape (1, length >= {MIN_SAMPLES}), got {windows.shape}"
            )
        chunk = np.ascontiguousarray(windows, dtype=np.float32)
        try:
            out = self._session.run([self.output_name], {self.input_name: chunk})[0]
        except MemoryError:
            raise
        except Exception as exc:  # ONNX Runtime raises its own exception types
            raise _run_error(self.model_path, 1, exc) from exc
        frames = (chunk.shape[1] - MIN_SAMPLES) // STRIDE + 1
        if out.shape != (1, frames, HIDDEN_SIZE) or out.dtype != np.float32:
            raise ModelError(
                f"{self.model_path} returned {out.dtype} {out.shape} for {chunk.shape[1]}"
                f" samples; a HuBERT model returns float32 (1, {frames}, {HIDDEN_SIZE})"
            )
        if not np.isfinite(out).all():
            raise ModelError(f"model {self.model_path} produced NaN/inf: not a usable HuBERT")
        return np.asarray(out[0])

    @property
    def sha256(self) -> str:
        """SHA-256 of the model file (computed once, on first use)."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self.model_path)
        return self._sha256

    def describe(self) -> dict[str, Any]:
        """Backend, model path and checksum, names and settings, for metadata.json."""
        import onnxruntime as ort

        return {
            "backend": "onnxruntime",
            "onnxruntime": ort.__version__,
            "path": os.path.abspath(self.model_path),
            "sha256": self.sha256,
            "input": self.input_name,
            "output": self.output_name,
            "batch_size": 1,
            "threads": self.threads,
        }


class HubertMode(FeatureMode):
    """Ultralight-Digital-Human's ``hubert`` features; see the module docstring."""

    name = "hubert"
    feature_file = "aud_hu.npy"
    row_shape = (2, HIDDEN_SIZE)
    native_fps = 25.0
    frame_shapes = {8: (32, 32, 32), 4: (16, 32, 32)}
    default_model = DEFAULT_MODEL
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

    def open_model_file(
        self, path: str | os.PathLike[str], *, batch_size: int | None, threads: int | None
    ) -> Encoder:
        """`HubertEncoder`, checked by its signature (``batch_size`` unused: one chunk per run)."""
        return HubertEncoder(path, threads=threads)

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
