"""Exact streaming: audio chunks in, U-Net frames out as soon as they are final.

One `FeatureStreamer` holds the encoder (the ONNX session) and opens many
cheap `FeatureStream` objects. A stream accepts samples in chunks of any size
and returns each video frame's U-Net input the moment no future audio can
change it; `FeatureStream.close` computes the tail (end padding, the
last-window clamp, the duplicated last row) exactly as the batch pipeline
does. The frames are byte-for-byte those of `Pipeline.process` on the whole
input, for any chunking (tests/test_streaming.py proves it).

When is frame i final? Its window of aud_ave rows i-8 .. i+7 needs encoder
windows 0 .. i+6; window w needs mel frames s_w .. s_w+15 with
s_w = int(80 * (w / fps)); mel frame k needs samples up to 200 k + 399. So at
16 kHz frame i needs ``200 * (int(80 * (i + 6) / fps) + 15) + 400`` samples:
640 i + 7240 at most for 25 fps (`samples_needed_for_frame`). Input at another
rate adds the resampler's own delay.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterable

import numpy as np
import soxr

from . import _core
from .encoder import Encoder, open_encoder
from .errors import ParameterError
from .features import CONTEXT_AFTER, CONTEXT_BEFORE, FRAME_SHAPES, WINDOW_ROWS
from .limits import (
    check_channels,
    check_duration,
    check_fps,
    check_max_duration,
    check_sample_rate,
)
from .mel import mel_processor
from .options import MelOptions
from .pipeline import DEFAULT_MODEL, check_mode, check_pad_mode
from .windows import MEL_FRAMES_PER_SECOND, WINDOW_MEL_FRAMES, num_windows, require_min_samples

__all__ = ["FeatureStream", "FeatureStreamer", "StreamFrame", "samples_needed_for_frame"]

TARGET_RATE = 16000


def samples_needed_for_frame(index: int, fps: float = 25.0) -> int:
    """16 kHz samples that must have arrived before frame ``index`` is final.

    ``200 * (int(80 * ((index + 6) / fps)) + 15) + 400`` (hop 200, n_fft 800):
    640 * index + 7240 at most at 25 fps. Frames near the end of the input
    wait for `FeatureStream.close`.

    Examples
    --------
    >>> samples_needed_for_frame(0), samples_needed_for_frame(10)
    (7200, 13600)
    """
    window = index + CONTEXT_AFTER - 1  # the last encoder window frame `index` reads
    start = int(MEL_FRAMES_PER_SECOND * (window / check_fps(fps)))
    last_mel = start + WINDOW_MEL_FRAMES - 1
    return 200 * last_mel + 400


@dataclasses.dataclass(frozen=True)
class StreamFrame:
    """One final video frame of a stream.

    Attributes
    ----------
    index : int
        Video frame number, from 0.
    features : numpy.ndarray
        float32 (32, 16, 16): the U-Net audio input of this frame.
    aud_ave_row : numpy.ndarray
        float32 (512,): row ``index`` of aud_ave.
    """

    index: int
    features: np.ndarray
    aud_ave_row: np.ndarray


class FeatureStreamer:
    """The shared half of streaming: one encoder for many streams.

    Parameters
    ----------
    model : str, os.PathLike or Encoder
        The ONNX encoder (``models/audio_encoder.onnx`` by default) or any
        `Encoder`.
    fps : float
        Video frame rate, from 1 to below 80.
    pad_mode : {"constant", "reflect"}
        STFT padding, as for `Pipeline`.
    batch_size, threads : int, optional
        Encoder settings, as for `Pipeline`.
    max_duration : float or None
        Longest input a stream accepts, in seconds; `FeatureStream.feed`
        raises `ParameterError` once a stream would pass it. None (the
        default) for no limit: a live stream may run for days.

    Examples
    --------
    >>> streamer = FeatureStreamer("models/audio_encoder.onnx")  # doctest: +SKIP
    >>> stream = streamer.open(sample_rate=16000)  # doctest: +SKIP
    >>> frames = stream.feed(chunk) + stream.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Encoder = DEFAULT_MODEL,
        *,
        fps: float = 25.0,
        mode: str = "ave",
        pad_mode: str = "constant",
        batch_size: int | None = None,
        threads: int | None = None,
        max_duration: float | None = None,
    ) -> None:
        self.mode = check_mode(mode)
        self.fps = check_fps(fps)
        self.max_duration = check_max_duration(max_duration)
        self.options = MelOptions(pad_mode=check_pad_mode(pad_mode))
        self.processor = mel_processor(self.options)
        self.encoder: Encoder = open_encoder(model, batch_size=batch_size, threads=threads)

    def open(self, *, sample_rate: int = TARGET_RATE, channels: int = 1) -> FeatureStream:
        """Open a new stream of audio at ``sample_rate`` Hz with ``channels`` channels.

        Raises
        ------
        ParameterError
            If ``sample_rate`` is not an integer from 1000 to 768000 Hz or
            ``channels`` not an integer from 1 to 1024.
        """
        return FeatureStream(self, sample_rate=sample_rate, channels=channels)

    def feed_many(
        self, items: Iterable[tuple[FeatureStream, np.ndarray]]
    ) -> dict[FeatureStream, list[StreamFrame]]:
        """Feed chunks to several streams and encode their windows in one batch.

        Equivalent to calling ``stream.feed(chunk)`` for each pair in order
        (the frames are identical), but one encoder call serves all streams,
        which is cheaper when many streams are live. The streams' locks are
        held for the whole call, taken in one global order (no deadlock with
        other `feed_many` or `FeatureStream.feed` calls on other threads).
        """
        pairs = list(items)
        streams = sorted({id(stream): stream for stream, _ in pairs}.values(), key=id)
        with contextlib.ExitStack() as held:
            for stream in streams:
                held.enter_context(stream._lock)
            # Check every chunk before any stream changes.
            checked = [(stream, stream._checked_mono(chunk)) for stream, chunk in pairs]
            prepared: list[tuple[FeatureStream, np.ndarray]] = []
            try:
                for stream, mono in checked:
                    prepared.append((stream, stream._accept(mono)))
                windows = [w for _, w in prepared if w.shape[0]]
                encoded = (
                    self.encoder.encode(np.concatenate(windows))
                    if windows
                    else np.empty((0, self.encoder.feature_dim), np.float32)
                )
                result: dict[FeatureStream, list[StreamFrame]] = {}
                offset = 0
                for stream, w in prepared:
                    rows = encoded[offset : offset + w.shape[0]]
                    offset += w.shape[0]
                    result.setdefault(stream, []).extend(stream._complete(rows, final=False))
            except BaseException as exc:
                for stream, _ in prepared:  # their windows were taken but not stored
                    stream._fail(exc)
                raise
            return result


class FeatureStream:
    """One live audio stream; see `FeatureStreamer.open`.

    Safe to feed from several threads: `feed`, `close` and `reset` each hold
    the stream's lock from start to end, so calls take effect whole, one
    after another, in the order they take the lock (the stream's input is
    the chunks in that order; order the calls yourself if it matters).
    Different streams run in parallel on different threads. If the encoder
    fails during a call, the stream refuses further input until `reset`.
    """

    def __init__(self, streamer: FeatureStreamer, *, sample_rate: int, channels: int) -> None:
        self.streamer = streamer
        self.sample_rate = check_sample_rate(sample_rate)
        self.channels = check_channels(channels)
        # Held by each public call from start to end; re-entrant because the
        # steps it calls take it too.
        self._lock = threading.RLock()
        self._online = _core.OnlineMel(streamer.processor)
        self._reset()

    # -- state -------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything; the stream can be fed from scratch."""
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self._online.reset()
        self._resampler = (
            soxr.ResampleStream(self.sample_rate, TARGET_RATE, 1, dtype="float32", quality="HQ")
            if self.sample_rate != TARGET_RATE
            else None
        )
        self._held: np.ndarray = np.zeros(0, np.float32)  # resampled, not yet fed
        self._input_samples = 0
        self._mel = np.zeros((0, self.streamer.options.n_mels), np.float32)
        self._mel_first = 0  # mel frame number of self._mel[0]
        self._mel_count = 0
        self._windows_done = 0
        # aud_ave rows from row self._rows_first - 8, led by 8 zero rows.
        self._rows = np.zeros((CONTEXT_BEFORE, self.streamer.encoder.feature_dim), np.float32)
        self._rows_first = 0
        self._windows_encoded = 0
        self._frames_emitted = 0
        self._closed = False
        self._failed: str | None = None  # why an earlier call left the stream unusable

    @property
    def frames_emitted(self) -> int:
        """Video frames returned so far."""
        return self._frames_emitted

    @property
    def samples_received(self) -> int:
        """Input samples (per channel, at the stream's rate) fed so far."""
        return self._input_samples

    @property
    def samples_16k(self) -> int:
        """16 kHz samples given to the mel spectrogram so far (all of them after `close`)."""
        return int(self._online.num_samples_received)

    @property
    def mel_frames(self) -> int:
        """Mel frames computed so far (all of them after `close`)."""
        return self._mel_count

    @property
    def windows_cut(self) -> int:
        """Encoder windows cut so far (all N of them after `close`)."""
        return self._windows_done

    # -- input ---------------------------------------------------------------
    def _as_mono_float32(self, samples: np.ndarray) -> np.ndarray:
        if not isinstance(samples, np.ndarray):
            raise TypeError(f"samples must be a NumPy array, got {type(samples).__name__}")
        if samples.dtype == np.int16:
            data = samples.astype(np.float32) / np.float32(32768.0)
        elif samples.dtype == np.float32:
            data = samples
        elif samples.dtype == np.float64:
            data = samples.astype(np.float32)
        else:
            raise TypeError(f"samples must be int16, float32 or float64, got {samples.dtype}")
        if self.channels == 1 and data.ndim == 2 and data.shape[1] == 1:
            data = data[:, 0]
        if self.channels == 1:
            if data.ndim != 1:
                raise ParameterError(f"a mono stream takes 1-D samples, got shape {samples.shape}")
            return np.ascontiguousarray(data)
        if data.ndim != 2 or data.shape[1] != self.channels:
            raise ParameterError(
                f"a {self.channels}-channel stream takes (frames, {self.channels}) samples,"
                f" got shape {samples.shape}"
            )
        # librosa.to_mono on soundfile's (channels, frames) view: a float32 mean.
        return np.ascontiguousarray(np.mean(data.T, axis=0))

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise ParameterError(
                f"stream is unusable after an earlier error ({self._failed}):"
                " call reset() to start again"
            )
        if self._closed:
            raise ParameterError("stream is closed: call reset() to reuse it")

    def _fail(self, exc: BaseException) -> None:
        """Mark the stream unusable: ``exc`` interrupted a call that had changed it."""
        self._failed = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    def _checked_mono(self, samples: np.ndarray) -> np.ndarray:
        """A chunk as mono float32, checked; the stream does not change."""
        self._check_usable()
        mono = self._as_mono_float32(samples)
        if not np.all(np.isfinite(mono)):
            raise ParameterError("samples hold NaN or infinite values")
        check_duration(
            self._input_samples + mono.shape[0],
            self.sample_rate,
            self.streamer.max_duration,
            source="the stream",
            verb="reached",
        )
        return mono

    def _prepare(self, samples: np.ndarray) -> np.ndarray:
        """Check and take a chunk; return the encoder windows that became final."""
        with self._lock:
            return self._accept(self._checked_mono(samples))

    def _accept(self, mono: np.ndarray) -> np.ndarray:
        """Take a checked chunk; return the encoder windows that became final.

        The caller holds ``self._lock`` until `_complete` has stored the
        windows' rows: the windows (B, 1, 80, 16) of one call and their rows
        must not interleave with another call's.
        """
        self._input_samples += mono.shape[0]
        if self._resampler is not None:
            out = self._resampler.resample_chunk(mono, last=False)
            # Hold back one sample so the length rule can still trim at close.
            pending = np.concatenate([self._held, out])
            mono, self._held = pending[:-1], pending[-1:]
        if mono.shape[0]:
            self._online.accept_waveform(np.ascontiguousarray(mono, dtype=np.float32))
        return self._take_windows(final=False)

    def _take_windows(self, *, final: bool) -> np.ndarray:
        new_mel = self._online.pop_frames()
        if new_mel.shape[0]:
            self._mel = np.concatenate([self._mel, new_mel])
            self._mel_count += new_mel.shape[0]
        fps = self.streamer.fps
        starts = []
        if final:
            total = num_windows(self._mel_count, fps)
            last_start = self._mel_count - WINDOW_MEL_FRAMES
            for w in range(self._windows_done, total):
                starts.append(min(int(MEL_FRAMES_PER_SECOND * (w / fps)), last_start))
        else:
            w = self._windows_done
            while True:
                start = int(MEL_FRAMES_PER_SECOND * (w / fps))
                if start + WINDOW_MEL_FRAMES > self._mel_count:
                    break
                starts.append(start)
                w += 1
        windows = np.empty(
            (len(starts), 1, self.streamer.options.n_mels, WINDOW_MEL_FRAMES), np.float32
        )
        for j, start in enumerate(starts):
            rows = self._mel[start - self._mel_first : start - self._mel_first + WINDOW_MEL_FRAMES]
            windows[j, 0] = rows.T
        self._windows_done += len(starts)
        # Keep the mel frames later windows may read (the end clamp may reach
        # up to 16 frames back from the next window's start).
        next_start = int(MEL_FRAMES_PER_SECOND * (self._windows_done / fps))
        keep_from = max(self._mel_first, next_start - WINDOW_MEL_FRAMES)
        if keep_from - self._mel_first > 256:
            self._mel = self._mel[keep_from - self._mel_first :].copy()
            self._mel_first = keep_from
        return windows

    def _complete(self, encoded: np.ndarray, *, final: bool) -> list[StreamFrame]:
        """Store encoder rows as aud_ave rows; return the frames that became final.

        ``self._rows`` holds aud_ave rows ``self._rows_first - 8`` onwards with
        the zero padding in place, so frame i's window is one slice of it:
        rows i-8 .. i+7. aud_ave row 0 is o[0], row r is o[r-1], and at the
        end row N+1 repeats o[N-1] and seven zero rows follow.
        """
        with self._lock:
            new_rows = [encoded.astype(np.float32, copy=False)]
            if encoded.shape[0] and self._windows_encoded == 0:
                new_rows.insert(0, encoded[:1])  # row 0 duplicates o[0]
            self._windows_encoded += encoded.shape[0]
            if final:
                last = self._rows[-1:] if not encoded.shape[0] else encoded[-1:]
                zeros = np.zeros((CONTEXT_AFTER, self._rows.shape[1]), np.float32)
                new_rows += [last, zeros]  # row N+1 duplicates o[N-1]; then padding
            self._rows = np.concatenate([self._rows, *new_rows])
            # Frame i needs rows up to i+7; at the end every frame up to N+1 is ready.
            rows_known = self._rows_first + self._rows.shape[0] - CONTEXT_BEFORE
            last_frame = self._windows_encoded + 1 if final else rows_known - CONTEXT_AFTER - 1
            shape = FRAME_SHAPES[self.streamer.mode]
            frames = []
            while self._frames_emitted <= last_frame:
                i = self._frames_emitted
                at = i - self._rows_first  # index of row i-8 in self._rows
                window = self._rows[at : at + WINDOW_ROWS]
                frames.append(
                    StreamFrame(
                        i, window.reshape(shape).copy(), self._rows[at + CONTEXT_BEFORE].copy()
                    )
                )
                self._frames_emitted += 1
            # Rows before the next frame's window are no longer needed.
            drop = self._frames_emitted - self._rows_first
            if drop > 64:
                self._rows = self._rows[drop:].copy()
                self._rows_first += drop
            return frames

    # -- public --------------------------------------------------------------
    def feed(self, samples: np.ndarray) -> list[StreamFrame]:
        """Feed a chunk of any size; return the frames that became final.

        Parameters
        ----------
        samples : numpy.ndarray
            int16 (scaled by 1/32768), float32 or float64 (rounded to float32)
            samples at the stream's rate: 1-D for mono, (frames, channels)
            interleaved otherwise. May be empty.

        Returns
        -------
        list of StreamFrame
            In order; possibly empty.
        """
        with self._lock:
            mono = self._checked_mono(samples)
            try:
                return self._complete(self._encode(self._accept(mono)), final=False)
            except BaseException as exc:
                self._fail(exc)
                raise

    def _encode(self, windows: np.ndarray) -> np.ndarray:
        if windows.shape[0] == 0:
            return np.zeros((0, self.streamer.encoder.feature_dim), np.float32)
        return np.asarray(self.streamer.encoder.encode(windows), np.float32)

    def close(self) -> list[StreamFrame]:
        """End of input: compute and return the remaining frames.

        Raises
        ------
        ParameterError
            If the stream held less than 0.1875 s of audio (16 mel frames).
        """
        with self._lock:
            if self._failed is None and self._closed:
                return []
            self._check_usable()
            try:
                return self._finish()
            except BaseException as exc:
                self._fail(exc)
                raise

    def _finish(self) -> list[StreamFrame]:
        """`close` with the lock held: the resampler's tail, end padding, last frames."""
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            pending = np.concatenate([self._held, tail])
            # librosa.resample's length rule: ceil(n * 16000 / sr), cut or zero-padded.
            want = int(np.ceil(self._input_samples * (float(TARGET_RATE) / self.sample_rate)))
            have = self._online.num_samples_received + pending.shape[0]
            if have > want:
                pending = pending[: max(0, pending.shape[0] - (have - want))]
            elif have < want:
                pending = np.concatenate([pending, np.zeros(want - have, np.float32)])
            self._held = np.zeros(0, np.float32)
            if pending.shape[0]:
                self._online.accept_waveform(np.ascontiguousarray(pending, dtype=np.float32))
        require_min_samples(self._online.num_samples_received)
        self._online.input_finished()
        windows = self._take_windows(final=True)
        self._closed = True
        return self._complete(self._encode(windows), final=True)
