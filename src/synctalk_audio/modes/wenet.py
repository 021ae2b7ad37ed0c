"""Mode ``wenet``: Ultralight-Digital-Human's WeNet features (``aud_wenet.npy``, 20 fps).

What upstream's ``data_utils/wenet_infer.py`` computes, step by step:

- Loader: `load_first_channel_with_info` (``soundfile.read`` float64, first channel).
  Upstream ignores the sample rate; other rates are resampled to 16 kHz
  (soxr HQ on the float64 first channel): a documented fix.
- int16 conversion: ``(x.astype(float32) * 32767)``, clipped to
  [-32768, 32767] (upstream's cast is undefined beyond: a documented fix),
  then a TRUNCATING cast to int16 (a PCM16 sample v comes back as v - sign(v)).
- 32 * 160 zeros before, 35 * 160 after (`PAD_BEFORE`, `PAD_AFTER`).
- Front end: the Kaldi fbank of the C++ core (`frontends.fbank`), F frames of
  80 (float64 inside, float32 out, as the encoder takes it).
- Encoder inputs: chunk i is fbank rows ``5 i .. 5 i + 66`` zero-padded with
  0.0 past the end; K = 1 + max(0, (F - 63) // 5) chunks (`num_chunks`).
- Encoder: Ultralight's ``encoder.onnx`` (model kind ``wenet``, `encoders.WenetEncoder`): each chunk
  (1, 1, 67, 80) with ``offset`` [100] and zero ``att_cache`` / ``cnn_cache``
  (shapes read from the model), caches never carried over; ``output[0]`` is
  one (16, 512) row.
- Feature array: ``aud_wenet.npy`` (K, 16, 512), one row per 20 fps video frame.
- Frames: h = 8 (256, 16, 32) or h = 4 (128, 16, 32).
- Streaming: exact. Row i reads fbank rows 5 i .. 5 i + 66, i.e. padded samples
  [800 i, 800 i + 10960): original 16 kHz samples up to 800 i + 5840
  (`samples_needed_for_row`). Rows whose chunk reaches past the end wait for
  the end of input.
"""

from __future__ import annotations

import os
import time

import numpy as np

from ..encoders import Encoder
from ..encoders.kinds import CHUNK_FRAMES, OFFSET, WENET_ROW_SHAPE
from ..errors import ParameterError
from ..frontends.audio import (
    AudioInfo,
    AudioSource,
    StreamingResampler,
    load_first_channel_with_info,
)
from ..frontends.fbank import kaldi_fbank, online_fbank
from ..limits import check_index
from ..options import FbankOptions
from .base import BatchResult, FeatureMode, ModeSettings, Progress

__all__ = [
    "CHUNK_FRAMES",
    "CHUNK_HOP",
    "DEFAULT_MODEL",
    "OFFSET",
    "PAD_AFTER",
    "PAD_BEFORE",
    "WenetMode",
    "chunk_inputs",
    "num_chunks",
    "samples_needed_for_row",
    "to_int16_scale",
]

#: Where the encoder of ``wenet`` is looked for when no model is given.
DEFAULT_MODEL = os.path.join("models", "encoder.onnx")
#: Zeros before and after the int16 samples (upstream: 32 and 35 fbank hops).
PAD_BEFORE = 32 * 160
PAD_AFTER = 35 * 160
#: The hop between encoder chunks in fbank rows (one video frame at 20 fps);
#: CHUNK_FRAMES rows per chunk.
CHUNK_HOP = 5
#: Chunks cut and encoded per step (about 5.5 MB of chunks at a time).
CHUNKS_PER_STEP = 256

_FBANK = FbankOptions()
_FBANK_BINS = _FBANK.num_bins
_ROW_SHAPE = WENET_ROW_SHAPE


def to_int16_scale(samples: np.ndarray) -> np.ndarray:
    """Upstream's int16 conversion, as float32 values: trunc(clip(float32(x) * 32767)).

    Examples
    --------
    >>> to_int16_scale(np.array([1.0, -1.0, 0.5, 2.0, 100 / 32768]))
    array([ 32767., -32767.,  16383.,  32767.,     99.], dtype=float32)
    """
    scaled = np.asarray(samples).astype(np.float32) * np.float32(32767)
    np.clip(scaled, -32768, 32767, out=scaled)
    out: np.ndarray = scaled.astype(np.int16).astype(np.float32)
    return out


def num_chunks(frames: int) -> int:
    """K, the chunks of upstream's loop for F fbank frames: 1 + max(0, (F - 63) // 5).

    (The padding makes F at least 68; no frames would mean no chunk.)
    """
    if frames <= 0:
        return 0
    return 1 + max(0, (frames - (CHUNK_FRAMES - CHUNK_HOP + 1)) // CHUNK_HOP)


def chunk_inputs(feats: np.ndarray, first: int, count: int, offset: int = 0) -> np.ndarray:
    """Chunks ``first .. first + count - 1`` as (count, 1, 67, 80) float32.

    ``feats`` holds fbank rows from row ``offset`` on; rows past its end are
    0.0 (upstream pads the last chunks with zeros in the log domain).
    """
    out = np.zeros((count, 1, CHUNK_FRAMES, feats.shape[1]), np.float32)
    for j in range(count):
        start = CHUNK_HOP * (first + j) - offset
        rows = feats[start : start + CHUNK_FRAMES]
        out[j, 0, : rows.shape[0]] = rows
    return out


def samples_needed_for_row(index: int) -> int:
    """16 kHz input samples that must have arrived before row ``index`` is final.

    Row i reads fbank rows 5 i .. 5 i + 66; fbank row r reads padded samples
    [160 r, 160 r + 400); the padding puts 5120 zeros first. So 800 i + 10960
    padded samples, 800 i + 5840 input samples.

    Raises
    ------
    ParameterError
        If ``index`` is not an integer >= 0.

    Examples
    --------
    >>> samples_needed_for_row(0), samples_needed_for_row(10)
    (5840, 13840)
    """
    last_fbank_row = CHUNK_HOP * check_index(index) + CHUNK_FRAMES - 1
    return _FBANK.frame_shift * last_fbank_row + _FBANK.frame_length - PAD_BEFORE


class WenetMode(FeatureMode):
    """Ultralight-Digital-Human's ``wenet`` features; see the module docstring."""

    name = "wenet"
    feature_file = "aud_wenet.npy"
    row_shape = _ROW_SHAPE
    native_fps = 20.0
    frame_shapes = {8: (256, 16, 32), 4: (128, 16, 32)}
    default_model = DEFAULT_MODEL
    model_kind = "wenet"
    front_end = "fbank"
    stream_refusal = None

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
        """int16 scale, padding, fbank, chunks, encoder."""
        t = time.perf_counter()
        wave = np.concatenate(
            [
                np.zeros(PAD_BEFORE, np.float32),
                to_int16_scale(samples),
                np.zeros(PAD_AFTER, np.float32),
            ]
        )
        feats = kaldi_fbank(wave, threads=settings.threads)
        fbank_s = time.perf_counter() - t
        t = time.perf_counter()
        count = num_chunks(feats.shape[0])
        features = np.empty((count, *self.row_shape), np.float32)
        for begin in range(0, count, CHUNKS_PER_STEP):
            step = min(CHUNKS_PER_STEP, count - begin)
            features[begin : begin + step] = encoder.encode(chunk_inputs(feats, begin, step))
            if progress is not None:
                progress(begin + step, count)
        return BatchResult(
            features,
            {
                "samples_16k": int(samples.shape[0]),
                "fbank_frames": int(feats.shape[0]),
                "chunks": int(count),
            },
            {"fbank_s": fbank_s, "encode_s": time.perf_counter() - t},
        )

    def open_rows(self, settings: ModeSettings, *, sample_rate: int, channels: int) -> WenetRows:
        """The online fbank and chunk cutter of one stream."""
        self.check_streamable()
        return WenetRows(sample_rate=sample_rate, channels=channels)

    def samples_needed(self, index: int, settings: ModeSettings) -> int:
        """16 kHz samples frame ``index`` needs: those of row index + h - 1."""
        return samples_needed_for_row(index + settings.half_window - 1)


class WenetRows:
    """The streaming front end of ``wenet``: first channel, soxr stream, int16 scale,
    online fbank, chunk cutting.

    Equal to the batch path bit for bit for any chunking: soxr's streaming
    resampler in float64 with librosa's length rule applied at the end, the
    same elementwise int16 conversion, the C++ online fbank (equal to the
    offline one), and chunk i cut as soon as fbank row 5 i + 66 exists; the
    chunks reaching past the end are cut at `finish`, zero-padded.
    """

    def __init__(self, *, sample_rate: int, channels: int) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self._online = online_fbank(_FBANK)
        self._online.accept_waveform(np.zeros(PAD_BEFORE, np.float32))
        self._resampler = StreamingResampler(sample_rate, np.float64)
        self._samples_16k = 0
        self._feats = np.zeros((0, _FBANK_BINS), np.float32)
        self._feats_first = 0  # fbank row number of self._feats[0]
        self._frames = 0
        self._chunks = 0

    def counts(self) -> dict[str, int]:
        """samples_16k, fbank_frames and chunks so far."""
        return {
            "samples_16k": self._samples_16k,
            "fbank_frames": self._frames,
            "chunks": self._chunks,
        }

    def to_mono(self, data: np.ndarray) -> np.ndarray:
        """The first channel (upstream's ``[:, 0]``)."""
        if data.ndim == 1:
            return np.ascontiguousarray(data)
        return np.ascontiguousarray(data[:, 0])

    def _feed(self, samples: np.ndarray) -> None:
        if samples.shape[0]:
            self._samples_16k += samples.shape[0]
            self._online.accept_waveform(to_int16_scale(samples))

    def accept(self, mono: np.ndarray) -> np.ndarray:
        """Resample, convert and feed the online fbank; return the chunks that became final."""
        self._feed(self._resampler.push(mono))
        return self._take_chunks(final=False)

    def finish(self) -> np.ndarray:
        """The resampler's tail (with librosa's length rule), the end padding, the last chunks."""
        self._feed(self._resampler.finish())
        if self._samples_16k == 0:
            raise ParameterError("audio is empty: the stream received no samples")
        self._online.accept_waveform(np.zeros(PAD_AFTER, np.float32))
        self._online.input_finished()
        return self._take_chunks(final=True)

    def _take_chunks(self, *, final: bool) -> np.ndarray:
        new = self._online.pop_frames()
        if new.shape[0]:
            self._feats = np.concatenate([self._feats, new])
            self._frames += new.shape[0]
        if final:
            end = num_chunks(self._frames)
        else:  # chunks whose 67 rows all exist
            end = max(self._chunks, (self._frames - CHUNK_FRAMES) // CHUNK_HOP + 1)
        count = end - self._chunks
        chunks = chunk_inputs(self._feats, self._chunks, count, offset=self._feats_first)
        self._chunks = end
        keep_from = CHUNK_HOP * self._chunks
        if keep_from - self._feats_first > 256:
            self._feats = self._feats[keep_from - self._feats_first :].copy()
            self._feats_first = keep_from
        return chunks

    def rows(self, encoded: np.ndarray, *, final: bool) -> np.ndarray:
        """One aud_wenet row per chunk, as they come."""
        return encoded.astype(np.float32, copy=False)
