"""Mode ``ave``: SyncTalk_2D's own features (mel -> 16-frame windows -> AudioEncoder).

- Loader: `load_audio_with_info`, equal to ``librosa.load(path, sr=16000)``.
- Front end: the wav2lip mel spectrogram of the C++ core (80 frames a second).
- Encoder inputs: window i is mel frames ``s_i .. s_i + 15`` with
  ``s_i = int(80 * (i / fps))`` (`windows.window_start`), clamped to the
  end; any fps from 1 to below 80.
- Encoder: the exported AVE ``AudioEncoder`` (B, 1, 80, 16) -> (B, 512),
  checked by its signature (model kind ``ave``, `encoders.AveEncoder`).
- Feature array: ``aud_ave.npy``, the N encoder rows with the first and the
  last duplicated (N + 2 rows of 512).
- Frames: h = 8 only, (16, 512) -> (32, 16, 16).
- Streaming: exact; frame i is final once ``samples_needed_for_frame(i)``
  16 kHz samples have arrived (640 i + 7240 at most at 25 fps).
"""

from __future__ import annotations

import os

import numpy as np

from .. import _core
from ..encoders import Encoder
from ..frontends.audio import AudioInfo, AudioSource, StreamingResampler, load_audio_with_info
from ..frontends.mel import mel_processor, melspectrogram
from ..frontends.windows import (
    WINDOW_MEL_FRAMES,
    cut_windows,
    num_windows,
    require_min_samples,
    window_start,
    window_starts,
)
from ..limits import check_fps, check_index
from ..options import MelOptions
from .base import BatchResult, FeatureMode, ModeSettings, Progress

__all__ = ["DEFAULT_MODEL", "AveMode", "samples_needed_for_frame"]

#: Where the encoder of ``ave`` is looked for when no model is given.
DEFAULT_MODEL = os.path.join("models", "audio_encoder.onnx")

#: Windows cut and encoded per step (about 2.6 MB of windows at a time).
WINDOWS_PER_STEP = 512


def samples_needed_for_frame(index: int, fps: float = 25.0, half_window: int = 8) -> int:
    """16 kHz samples that must have arrived before frame ``index`` is final.

    Frame i reads aud_ave rows up to i + h - 1, i.e. encoder windows up to
    w = i + h - 2; window w ends at mel frame ``s_w + 15``; mel frame k needs
    samples up to ``200 k + 399``. So ``200 * (int(80 * ((index + 6) / fps))
    + 15) + 400`` for h = 8: 640 * index + 7240 at most at 25 fps. Frames
    near the end of the input wait for `FeatureStream.close`.

    Raises
    ------
    ParameterError
        If ``index`` is not an integer >= 0 or ``fps`` is out of range.

    Examples
    --------
    >>> samples_needed_for_frame(0), samples_needed_for_frame(10)
    (7200, 13600)
    """
    start = window_start(check_index(index) + half_window - 2, check_fps(fps))
    last_mel = start + WINDOW_MEL_FRAMES - 1
    return 200 * last_mel + 400


class AveMode(FeatureMode):
    """SyncTalk_2D's ``ave`` features; see the module docstring."""

    name = "ave"
    feature_file = "aud_ave.npy"
    row_shape = (512,)
    native_fps = 25.0
    frame_shapes = {8: (32, 16, 16)}
    default_model = DEFAULT_MODEL
    model_kind = "ave"
    front_end = "mel"
    stream_refusal = None
    exporter = "synctalk_audio.export.ave:export_onnx"
    checkpoint_help = "audio_visual_encoder.pth (keys with or without 'audio_encoder.')"

    def check_fps(self, fps: object, *, name: str = "fps") -> float:
        """Any rate from 1 to below 80 (the mel frame rate)."""
        return check_fps(fps, name=name)

    def load_file(
        self, source: AudioSource, *, max_duration: float | None
    ) -> tuple[np.ndarray, AudioInfo]:
        """``librosa.load(path, sr=16000)``."""
        return load_audio_with_info(source, max_duration=max_duration)

    def compute(
        self,
        samples: np.ndarray,
        encoder: Encoder,
        settings: ModeSettings,
        *,
        progress: Progress | None = None,
    ) -> BatchResult:
        """Mel, windows, encoder, and the duplicated end rows."""
        import time

        require_min_samples(samples.shape[0])
        t = time.perf_counter()
        mel = melspectrogram(
            samples, options=MelOptions(pad_mode=settings.pad_mode), threads=settings.threads
        )
        mel_s = time.perf_counter() - t
        t = time.perf_counter()
        starts = window_starts(mel.shape[1], settings.fps)
        count = starts.shape[0]
        # Windows are cut WINDOWS_PER_STEP at a time, so memory does not grow
        # with N x 5 KiB of windows; the encoder's rows do not depend on how
        # the windows are grouped (tests/test_pipeline.py checks it).
        aud_ave = np.empty((count + 2, *self.row_shape), dtype=np.float32)
        for begin in range(0, count, WINDOWS_PER_STEP):
            batch = cut_windows(mel, starts[begin : begin + WINDOWS_PER_STEP])
            aud_ave[1 + begin : 1 + begin + batch.shape[0]] = encoder.encode(batch)
            if progress is not None:
                progress(min(begin + WINDOWS_PER_STEP, count), count)
        # SyncTalk_2D saves [o[0], o[0..N-1], o[N-1]]: the end rows duplicated.
        aud_ave[0] = aud_ave[1]
        aud_ave[-1] = aud_ave[-2]
        return BatchResult(
            aud_ave,
            {
                "samples_16k": int(samples.shape[0]),
                "mel_frames": int(mel.shape[1]),
                "windows": int(count),
            },
            {"mel_s": mel_s, "encode_s": time.perf_counter() - t},
        )

    def open_rows(self, settings: ModeSettings, *, sample_rate: int, channels: int) -> AveRows:
        """The online mel and window cutter of one stream."""
        return AveRows(settings, sample_rate=sample_rate, channels=channels)

    def samples_needed(self, index: int, settings: ModeSettings) -> int:
        """`samples_needed_for_frame` at the settings' fps and h."""
        return samples_needed_for_frame(index, settings.fps, settings.half_window)


class AveRows:
    """The streaming front end of ``ave``: soxr stream, online mel, window cutting.

    Equal to the batch path bit for bit for any chunking: soxr's streaming
    resampler with librosa's length rule applied at the end, the C++ online
    mel (equal to the offline one), and the windows' start formula and end
    clamp of `window_starts`.
    """

    def __init__(self, settings: ModeSettings, *, sample_rate: int, channels: int) -> None:
        self.settings = settings
        self.sample_rate = sample_rate
        self.channels = channels
        self.options = MelOptions(pad_mode=settings.pad_mode)
        self._online = _core.OnlineMel(mel_processor(self.options), settings.threads)
        self._resampler = StreamingResampler(sample_rate, np.float32)
        self._mel = np.zeros((0, self.options.n_mels), np.float32)
        self._mel_first = 0  # mel frame number of self._mel[0]
        self._mel_count = 0
        self._windows_done = 0
        self._windows_encoded = 0
        self._last_row: np.ndarray | None = None

    def counts(self) -> dict[str, int]:
        """samples_16k, mel_frames and windows so far."""
        return {
            "samples_16k": int(self._online.num_samples_received),
            "mel_frames": self._mel_count,
            "windows": self._windows_done,
        }

    def to_mono(self, data: np.ndarray) -> np.ndarray:
        """librosa.to_mono on soundfile's (channels, frames) view: a float32 mean."""
        if data.ndim == 1:
            return np.ascontiguousarray(data)
        return np.ascontiguousarray(np.mean(data.T, axis=0))

    def accept(self, mono: np.ndarray) -> np.ndarray:
        """Resample and feed the online mel; return the windows that became final."""
        self._feed(self._resampler.push(mono))
        return self._take_windows(final=False)

    def finish(self) -> np.ndarray:
        """The resampler's tail (with librosa's length rule), the last windows."""
        self._feed(self._resampler.finish())
        require_min_samples(self._online.num_samples_received)
        self._online.input_finished()
        return self._take_windows(final=True)

    def _feed(self, samples: np.ndarray) -> None:
        if samples.shape[0]:
            self._online.accept_waveform(np.ascontiguousarray(samples, dtype=np.float32))

    def _take_windows(self, *, final: bool) -> np.ndarray:
        new_mel = self._online.pop_frames()
        if new_mel.shape[0]:
            self._mel = np.concatenate([self._mel, new_mel])
            self._mel_count += new_mel.shape[0]
        fps = self.settings.fps
        starts = []
        if final:
            total = num_windows(self._mel_count, fps)
            last_start = self._mel_count - WINDOW_MEL_FRAMES
            for w in range(self._windows_done, total):
                starts.append(min(window_start(w, fps), last_start))
        else:
            w = self._windows_done
            while True:
                start = window_start(w, fps)
                if start + WINDOW_MEL_FRAMES > self._mel_count:
                    break
                starts.append(start)
                w += 1
        windows = np.empty((len(starts), 1, self.options.n_mels, WINDOW_MEL_FRAMES), np.float32)
        for j, start in enumerate(starts):
            rows = self._mel[start - self._mel_first : start - self._mel_first + WINDOW_MEL_FRAMES]
            windows[j, 0] = rows.T
        self._windows_done += len(starts)
        # Keep the mel frames later windows may read (the end clamp may reach
        # up to 16 frames back from the next window's start).
        next_start = window_start(self._windows_done, fps)
        keep_from = max(self._mel_first, next_start - WINDOW_MEL_FRAMES)
        if keep_from - self._mel_first > 256:
            self._mel = self._mel[keep_from - self._mel_first :].copy()
            self._mel_first = keep_from
        return windows

    def rows(self, encoded: np.ndarray, *, final: bool) -> np.ndarray:
        """aud_ave rows: row 0 duplicates o[0]; at the end row N + 1 duplicates o[N - 1]."""
        new_rows = [encoded.astype(np.float32, copy=False)]
        if encoded.shape[0] and self._windows_encoded == 0:
            new_rows.insert(0, encoded[:1])
        self._windows_encoded += encoded.shape[0]
        if encoded.shape[0]:
            self._last_row = encoded[-1:]
        if final and self._last_row is not None:
            new_rows.append(self._last_row)
        return np.concatenate(new_rows)
