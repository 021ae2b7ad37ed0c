"""Exact streaming: audio chunks in, U-Net frames out as soon as they are final.

One `FeatureStreamer` holds the encoder (the ONNX session) and a feature
mode, and opens many cheap `FeatureStream` objects. A stream accepts samples
in chunks of any size and returns each video frame's U-Net input the moment
no future audio can change it; `FeatureStream.close` computes the tail
exactly as the batch pipeline does. The frames are byte-for-byte those of
`Pipeline.process` on the whole input, for any chunking
(tests/test_streaming.py proves it).

The engine here is the same for every mode that streams: it checks and
converts the chunks, asks the mode's `RowStream` for the encoder inputs that
became final, runs the encoder, stores the feature rows the mode returns and
cuts frames: frame i (rows i - h .. i + h - 1) is final once row i + h - 1
is known. When that is, in samples, is the mode's lookahead rule
(`FeatureMode.samples_needed`; for ``ave``, `samples_needed_for_frame`:
640 i + 7240 16 kHz samples at most at 25 fps). Input at another rate adds
the resampler's own delay.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from ..encoders.onnx import Encoder
from ..errors import ParameterError
from ..frontends.audio import TARGET_RATE
from ..frontends.wavstream import PcmDecoder
from ..limits import check_channels, check_duration, check_max_duration, check_sample_rate
from ..modes import DEFAULT_HALF_WINDOW, FeatureMode, RowStream, configure
from ..modes.ave import samples_needed_for_frame

__all__ = [
    "FeatureStream",
    "FeatureStreamer",
    "StreamFrame",
    "feed_pcm",
    "samples_needed_for_frame",
]


@dataclasses.dataclass(frozen=True)
class StreamFrame:
    """One final video frame of a stream.

    Attributes
    ----------
    index : int
        Video frame number, from 0.
    features : numpy.ndarray
        float32, the mode's frame shape (32, 16, 16 for ``ave``): the U-Net
        audio input of this frame.
    row : numpy.ndarray
        float32, the mode's row shape ((512,) for ``ave``): row ``index`` of
        the feature array.
    """

    index: int
    features: np.ndarray
    row: np.ndarray

    @property
    def aud_ave_row(self) -> np.ndarray:
        """`row` under ``ave``'s name."""
        return self.row


class FeatureStreamer:
    """The shared half of streaming: one encoder for many streams.

    Parameters
    ----------
    model : str, os.PathLike or Encoder, optional
        The mode's model (its ``default_model``, ``models/audio_encoder.onnx``
        for ``ave``, when None) or any `Encoder`.
    fps : float, optional
        Video frame rate; the mode's own rate (25 for ``ave``) when None.
    mode : str or FeatureMode
        A registered mode that streams (``ave``).
    half_window : int
        h: frame i is rows i - h .. i + h - 1 (8, SyncTalk_2D; the mode
        says which it has).
    pad_mode : {"constant", "reflect"}
        STFT padding, as for `Pipeline`.
    options : Mapping, optional
        The mode's own options, as for `Pipeline`.
    batch_size, threads : int, optional
        Encoder settings, as for `Pipeline`.
    max_duration : float or None
        Longest input a stream accepts, in seconds; `FeatureStream.feed`
        raises `ParameterError` once a stream would pass it. None (the
        default) for no limit: a live stream may run for days.

    Raises
    ------
    ParameterError
        For an unknown mode, one that cannot stream (the reason), or a
        setting the mode does not accept.

    Examples
    --------
    >>> streamer = FeatureStreamer("models/audio_encoder.onnx")  # doctest: +SKIP
    >>> stream = streamer.open(sample_rate=16000)  # doctest: +SKIP
    >>> frames = stream.feed(chunk) + stream.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Encoder | None = None,
        *,
        fps: float | None = None,
        mode: str | FeatureMode = "ave",
        half_window: int = DEFAULT_HALF_WINDOW,
        pad_mode: str = "constant",
        options: Mapping[str, object] | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
        max_duration: float | None = None,
    ) -> None:
        self.max_duration = check_max_duration(max_duration)
        self.mode, self.settings, self.encoder = configure(
            mode,
            model,
            fps=fps,
            half_window=half_window,
            pad_mode=pad_mode,
            batch_size=batch_size,
            threads=threads,
            options=options,
            stream=True,
        )
        self.fps = self.settings.fps
        self.half_window = self.settings.half_window

    def samples_needed(self, index: int) -> int:
        """Front-end samples that must have arrived before frame ``index`` is final."""
        return self.mode.samples_needed(index, self.settings)

    def open(self, *, sample_rate: int = TARGET_RATE, channels: int = 1) -> FeatureStream:
        """Open a new stream of audio at ``sample_rate`` Hz with ``channels`` channels.

        Raises
        ------
        ParameterError
            If ``sample_rate`` is not an integer from 1000 to 768000 Hz or
            ``channels`` not an integer from 1 to 1024.
        """
        return FeatureStream(self, sample_rate=sample_rate, channels=channels)

    def _encode(self, inputs: np.ndarray) -> np.ndarray:
        if inputs.shape[0] == 0:
            return np.zeros((0, *self.mode.row_shape), np.float32)
        return np.asarray(self.encoder.encode(inputs), np.float32)

    def feed_many(
        self, items: Iterable[tuple[FeatureStream, np.ndarray]]
    ) -> dict[FeatureStream, list[StreamFrame]]:
        """Feed chunks to several streams and encode their inputs in one batch.

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
                inputs = [w for _, w in prepared if w.shape[0]]
                encoded = self._encode(
                    np.concatenate(inputs)
                    if inputs
                    else np.empty((0, *self.mode.row_shape), np.float32)
                )
                result: dict[FeatureStream, list[StreamFrame]] = {}
                offset = 0
                for stream, w in prepared:
                    rows = encoded[offset : offset + w.shape[0]]
                    offset += w.shape[0]
                    result.setdefault(stream, []).extend(stream._complete(rows, final=False))
            except BaseException as exc:
                for stream, _ in prepared:  # their inputs were taken but not stored
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
        self._reset()

    # -- state -------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything; the stream can be fed from scratch."""
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        streamer = self.streamer
        self._front: RowStream = streamer.mode.open_rows(
            streamer.settings, sample_rate=self.sample_rate, channels=self.channels
        )
        self._input_samples = 0
        h = streamer.settings.half_window
        # Feature rows from row self._rows_first - h, led by h zero rows.
        self._rows = np.zeros((h, *streamer.mode.row_shape), np.float32)
        self._rows_first = 0
        self._rows_total = 0  # feature rows known
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
    def counts(self) -> dict[str, int]:
        """The mode's counts so far (all of them after `close`), as in metadata.json."""
        return self._front.counts()

    @property
    def samples_16k(self) -> int:
        """16 kHz samples given to the front end so far (all of them after `close`)."""
        return self.counts["samples_16k"]

    @property
    def mel_frames(self) -> int:
        """Front-end frames computed so far (mel frames for ``ave``)."""
        return self.counts.get("mel_frames", 0)

    @property
    def windows_cut(self) -> int:
        """Encoder inputs cut so far (all of them after `close`)."""
        return self.counts.get("windows", 0)

    # -- input ---------------------------------------------------------------
    def _as_float32(self, samples: np.ndarray) -> np.ndarray:
        """A chunk as float32: 1-D for a mono stream, (frames, channels) otherwise."""
        if not isinstance(samples, np.ndarray):
            raise TypeError(f"samples must be a NumPy array, got {type(samples).__name__}")
        data: np.ndarray
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
            return data
        if data.ndim != 2 or data.shape[1] != self.channels:
            raise ParameterError(
                f"a {self.channels}-channel stream takes (frames, {self.channels}) samples,"
                f" got shape {samples.shape}"
            )
        return data

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
        """A chunk as the mode's 1-D samples, checked; the stream does not change."""
        self._check_usable()
        mono = self._front.to_mono(self._as_float32(samples))
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

    def _accept(self, mono: np.ndarray) -> np.ndarray:
        """Take a checked chunk; return the encoder inputs that became final.

        The caller holds ``self._lock`` until `_complete` has stored their
        rows: the inputs of one call and their rows must not interleave with
        another call's.
        """
        self._input_samples += mono.shape[0]
        return self._front.accept(mono)

    def _complete(self, encoded: np.ndarray, *, final: bool) -> list[StreamFrame]:
        """Store the mode's feature rows for ``encoded``; return the frames that became final.

        ``self._rows`` holds feature rows ``self._rows_first - h`` onwards with
        the zero padding in place, so frame i's window is one slice of it:
        rows i - h .. i + h - 1. At the end h - 1 zero rows follow the last row.
        """
        with self._lock:
            h = self.streamer.settings.half_window
            new_rows = [self._front.rows(encoded, final=final)]
            self._rows_total += new_rows[0].shape[0]
            if final:
                new_rows.append(np.zeros((h - 1, *self._rows.shape[1:]), np.float32))
            self._rows = np.concatenate([self._rows, *new_rows])
            # Frame i needs rows up to i + h - 1; at the end every frame is ready.
            last_frame = self._rows_total - 1 if final else self._rows_total - h
            shape = self.streamer.mode.frame_shape(h)
            frames = []
            while self._frames_emitted <= last_frame:
                i = self._frames_emitted
                at = i - self._rows_first  # index of row i - h in self._rows
                window = self._rows[at : at + 2 * h]
                frames.append(
                    StreamFrame(i, window.reshape(shape).copy(), self._rows[at + h].copy())
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
                return self._complete(self.streamer._encode(self._accept(mono)), final=False)
            except BaseException as exc:
                self._fail(exc)
                raise

    def close(self) -> list[StreamFrame]:
        """End of input: compute and return the remaining frames.

        Raises
        ------
        ParameterError
            If the stream held too little audio for one frame (``ave``: less
            than 0.1875 s, 16 mel frames).
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
        """`close` with the lock held: the front end's tail, end padding, last frames."""
        inputs = self._front.finish()
        self._closed = True
        return self._complete(self.streamer._encode(inputs), final=True)


def feed_pcm(
    stream: FeatureStream,
    read: Callable[[int], bytes],
    decoder: PcmDecoder,
    *,
    read_size: int = 4096,
    remaining: int | None = None,
) -> Iterator[StreamFrame]:
    """Feed PCM bytes to ``stream`` until their end; yield each frame the moment it is final.

    What ``synctalk-audio stream`` runs on its standard input.

    Parameters
    ----------
    stream : FeatureStream
        An open stream at the PCM's rate and channel count.
    read : callable
        ``read(size)`` returns up to ``size`` bytes, ``b""`` at the end of input.
    decoder : PcmDecoder
        Turns the bytes into samples (partial samples wait for the next read).
    read_size : int
        Bytes asked of ``read`` at a time.
    remaining : int, optional
        Bytes of PCM to read at most (a WAV header's data size); all of them when None.

    Yields
    ------
    StreamFrame
        Every frame in order: those final after each read as soon as they are,
        then the tail `FeatureStream.close` computes.
    """
    while remaining is None or remaining > 0:
        block = read(read_size if remaining is None else min(read_size, remaining))
        if not block:
            break
        if remaining is not None:
            remaining -= len(block)
        yield from stream.feed(decoder.decode(block))
    yield from stream.close()
