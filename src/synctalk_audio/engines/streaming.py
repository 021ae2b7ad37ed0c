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

Memory does not grow with a chunk: `FeatureStream.feed` takes a chunk of any
size in blocks of at most `FEED_BLOCK_VALUES` input values, runs the encoder
on at most about `ENCODE_BATCH_BYTES` of inputs at a time, and returns frames
that are read-only views of the rows computed (no copy per frame).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from ..encoders import Backend, Encoder
from ..errors import ParameterError
from ..frontends.audio import TARGET_RATE
from ..frontends.wavstream import PcmDecoder
from ..limits import (
    check_channels,
    check_duration,
    check_index,
    check_sample_rate,
)
from ..modes import DEFAULT_HALF_WINDOW, FeatureMode, RowStream
from ..spec import RunSpec

__all__ = [
    "ENCODE_BATCH_BYTES",
    "FEED_BLOCK_VALUES",
    "FeatureStream",
    "FeatureStreamer",
    "StreamFrame",
    "feed_pcm",
]

#: Input values (frames x channels) a chunk is taken in at a time: each block
#: is converted, checked and fed to the front end on its own (16.4 s of 16 kHz
#: mono; 1 MiB as float32), so a chunk of any size needs no more.
FEED_BLOCK_VALUES = 1 << 18
#: Encoder inputs gathered before one encoder call, in bytes: a call runs once
#: this much is waiting (and at the end of `FeatureStream.feed` /
#: `FeatureStreamer.feed_many`), so one call gets at most this plus one block's inputs.
ENCODE_BATCH_BYTES = 1 << 23
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class StreamFrame:
    """One final video frame of a stream.

    The arrays are read-only views of the feature rows the call computed,
    shared by the frames of that call (frame i's window overlaps frame i + 1's),
    so a frame costs no copy of its window: ``np.array(frame.features)`` gives
    a writable copy of your own. A frame kept alive keeps the rows of its
    call alive (at most one block's, `FEED_BLOCK_VALUES`).

    Attributes
    ----------
    index : int
        Video frame number, from 0.
    features : numpy.ndarray
        float32, the mode's frame shape (32, 16, 16 for ``ave``): the U-Net
        audio input of this frame. Read-only.
    row : numpy.ndarray
        float32, the mode's row shape ((512,) for ``ave``): row ``index`` of
        the feature array. Read-only.
    """

    index: int
    features: np.ndarray
    row: np.ndarray


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
    backend : str or Backend, optional
        The encoder's runtime, as for `Pipeline`.
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
        backend: str | Backend | None = None,
        max_duration: float | None = None,
    ) -> None:
        spec = RunSpec.create(
            mode,
            model,
            fps=fps,
            half_window=half_window,
            pad_mode=pad_mode,
            options=options,
            batch_size=batch_size,
            threads=threads,
            max_duration=max_duration,
            backend=backend,
            stream=True,
        )
        self._start(spec, spec.open_encoder())

    @classmethod
    def from_spec(cls, spec: RunSpec, encoder: Encoder | None = None) -> FeatureStreamer:
        """A streamer for a `RunSpec` already built; ``encoder`` overrides the spec's model.

        Raises
        ------
        ParameterError
            If the spec's mode cannot stream.
        """
        spec.mode.check_streamable()
        streamer = cls.__new__(cls)
        streamer._start(spec, spec.open_encoder() if encoder is None else encoder)
        return streamer

    def _start(self, spec: RunSpec, encoder: Encoder) -> None:
        #: The run's settings (`RunSpec`), validated once.
        self.spec = spec
        self.mode = spec.mode
        self.settings = spec.settings
        self.max_duration = spec.max_duration
        self.encoder = encoder
        self.fps = self.settings.fps
        self.half_window = self.settings.half_window

    def samples_needed(self, index: int) -> int:
        """Front-end samples that must have arrived before frame ``index`` is final.

        Raises
        ------
        ParameterError
            If ``index`` is not a frame number (an integer >= 0).
        """
        return self.mode.samples_needed(check_index(index), self.settings)

    def open(self, *, sample_rate: int = TARGET_RATE, channels: int = 1) -> FeatureStream:
        """Open a new stream of audio at ``sample_rate`` Hz with ``channels`` channels.

        Raises
        ------
        ParameterError
            If ``sample_rate`` is not an integer from 1000 to 768000 Hz or
            ``channels`` not an integer from 1 to 1024.
        """
        return FeatureStream(self, sample_rate=sample_rate, channels=channels)

    def _encode(self, inputs: np.ndarray | None) -> np.ndarray:
        """The encoder's rows for ``inputs`` (B, ...); None or B = 0 gives no rows."""
        if inputs is None or inputs.shape[0] == 0:
            return np.zeros((0, *self.mode.row_shape), np.float32)
        return np.asarray(self.encoder.encode(inputs), np.float32)

    def feed_many(
        self, items: Iterable[tuple[FeatureStream, np.ndarray]]
    ) -> dict[FeatureStream, list[StreamFrame]]:
        """Feed chunks to several streams and encode their inputs together.

        Equivalent to calling ``stream.feed(chunk)`` for each pair in order
        (the frames are identical), but one encoder call serves all streams,
        which is cheaper when many streams are live. The streams' locks are
        held for the whole call, taken in one global order (no deadlock with
        other `feed_many` or `FeatureStream.feed` calls on other threads).
        Every chunk is checked before any stream changes.

        Parameters
        ----------
        items : iterable of (FeatureStream, numpy.ndarray)
            Streams opened by this streamer and their chunks, as `FeatureStream.feed` takes them.

        Returns
        -------
        dict
            Each stream given -> the frames that became final, in order.

        Raises
        ------
        TypeError
            If ``items`` is not an iterable of (FeatureStream, array) pairs, or
            a chunk is not an array of a dtype `FeatureStream.feed` takes; the
            message names the item (``items[2]``).
        ParameterError
            If a stream was opened by another streamer or a chunk is refused
            (shape, NaN, duration; closed or failed stream), naming the item.
        """
        pairs = self._pairs(items)
        streams = sorted({id(stream): stream for stream, _ in pairs}.values(), key=id)
        with contextlib.ExitStack() as held:
            for stream in streams:
                held.enter_context(stream._lock)
            # Check every chunk before any stream changes.
            checked: list[tuple[FeatureStream, np.ndarray]] = []
            given: dict[FeatureStream, int] = {}
            for k, (stream, chunk) in enumerate(pairs):
                try:
                    data = stream._check_chunk(chunk, before=given.get(stream, 0))
                except (TypeError, ParameterError) as exc:
                    raise type(exc)(f"items[{k}]: {exc}") from exc
                given[stream] = given.get(stream, 0) + data.shape[0]
                checked.append((stream, data))
            return self._feed_checked(checked)

    def _pairs(self, items: object) -> list[tuple[FeatureStream, np.ndarray]]:
        """``items`` of `feed_many` as a list, each a stream of this streamer and its chunk."""
        try:
            listed = list(items)  # type: ignore[call-overload]
        except TypeError:
            raise TypeError(
                "items must be an iterable of (FeatureStream, samples) pairs,"
                f" got {type(items).__name__}"
            ) from None
        pairs = []
        for k, item in enumerate(listed):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise TypeError(
                    f"items[{k}] must be a (FeatureStream, samples) pair, got"
                    f" {type(item).__name__}"
                    + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else "")
                )
            stream, chunk = item
            if not isinstance(stream, FeatureStream):
                raise TypeError(
                    f"items[{k}] must be a (FeatureStream, samples) pair, got"
                    f" ({type(stream).__name__}, {type(chunk).__name__}): open streams with"
                    " FeatureStreamer.open"
                )
            if stream.streamer is not self:
                raise ParameterError(
                    f"items[{k}]: the stream was opened by another FeatureStreamer (another"
                    " model or settings); feed it through its own: stream.streamer.feed_many"
                )
            pairs.append((stream, chunk))
        return pairs

    def _feed_checked(
        self, checked: list[tuple[FeatureStream, np.ndarray]]
    ) -> dict[FeatureStream, list[StreamFrame]]:
        """Feed checked chunks (`FeatureStream._check_chunk`) in order, block by block.

        The caller holds the streams' locks. Each chunk goes to its stream's
        front end in blocks (`FeatureStream._blocks`); the encoder inputs
        that become final wait until about `ENCODE_BATCH_BYTES` have gathered
        (or the end), are encoded in one call, and each stream stores its
        rows in the order it took the blocks. If anything fails, every
        stream that took a block refuses further input until `reset`.
        """
        result: dict[FeatureStream, list[StreamFrame]] = {stream: [] for stream, _ in checked}
        waiting: list[tuple[FeatureStream, np.ndarray]] = []
        touched: dict[FeatureStream, None] = {}

        def encode_waiting() -> None:
            inputs = [w for _, w in waiting if w.shape[0]]
            encoded = self._encode(
                None if not inputs else inputs[0] if len(inputs) == 1 else np.concatenate(inputs)
            )
            offset = 0
            for stream, w in waiting:
                rows = encoded[offset : offset + w.shape[0]]
                offset += w.shape[0]
                result[stream].extend(stream._complete(rows, final=False))
            waiting.clear()

        try:
            size = 0
            for stream, data in checked:
                for block in stream._blocks(data):
                    touched[stream] = None
                    inputs = stream._accept(block)
                    waiting.append((stream, inputs))
                    size += inputs.nbytes
                    if size >= ENCODE_BATCH_BYTES:
                        encode_waiting()
                        size = 0
            if waiting:
                encode_waiting()
        except BaseException as exc:
            for stream in touched:  # their inputs were taken, perhaps not stored
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

    # -- input ---------------------------------------------------------------
    def _shaped(self, samples: np.ndarray) -> np.ndarray:
        """A chunk checked for type, dtype and shape: 1-D for a mono stream,
        (frames, channels) otherwise; not converted."""
        if not isinstance(samples, np.ndarray):
            raise TypeError(f"samples must be a NumPy array, got {type(samples).__name__}")
        if (samples.dtype.kind, samples.dtype.itemsize) not in (("i", 2), ("f", 4), ("f", 8)):
            raise TypeError(
                f"samples must be int16, float32 or float64, got {samples.dtype}: convert them"
                " first (e.g. int32 PCM: samples.astype(np.float32) / 2**31)"
            )
        data = samples
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

    @staticmethod
    def _as_float32(data: np.ndarray) -> np.ndarray:
        """Checked samples (`_shaped`, `_check_values`) as native float32, by value.

        int16 / 32768 and float32 are exact; float64 is rounded. Either byte
        order is taken by its values, as `Pipeline.process` takes arrays.
        """
        if data.dtype.kind == "i":
            converted: np.ndarray = data.astype(np.float32) / np.float32(32768.0)
            return converted
        return data.astype(np.float32, copy=False)

    def _check_values(self, block: np.ndarray) -> None:
        """`ParameterError` if a block of `_shaped` samples holds NaN, infinity, or values
        beyond float32 (or whose channel mean is); no NumPy warning either way."""
        if block.dtype.kind == "f" and block.size:
            with np.errstate(invalid="ignore"):
                peak = float(np.max(np.abs(block)))
            if not math.isfinite(peak):
                raise ParameterError("samples hold NaN or infinite values")
            if peak > _FLOAT32_MAX:
                raise ParameterError(
                    f"samples hold values too large for float32 (largest magnitude {peak:.3g});"
                    " audio samples are nominally in [-1, 1]: scale them first"
                )
        if self.channels > 1 and block.dtype.kind == "f" and block.size:
            with np.errstate(over="ignore", invalid="ignore"):
                mono = self._front.to_mono(self._as_float32(block))
            if not np.all(np.isfinite(mono)):
                raise ParameterError(
                    "samples are too large: their channels' mean is not finite in float32;"
                    " audio samples are nominally in [-1, 1]: scale them first"
                )

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

    def _blocks(self, data: np.ndarray) -> Iterator[np.ndarray]:
        """``data`` (`_shaped`) in blocks of at most `FEED_BLOCK_VALUES` values."""
        step = max(1, FEED_BLOCK_VALUES // self.channels)
        for begin in range(0, data.shape[0], step):
            yield data[begin : begin + step]

    def _check_chunk(self, samples: np.ndarray, *, before: int = 0) -> np.ndarray:
        """A chunk checked whole (`_shaped`, the duration limit with ``before``
        samples already given in the same call, `_check_values` block by
        block); the stream does not change."""
        self._check_usable()
        data = self._shaped(samples)
        check_duration(
            self._input_samples + before + data.shape[0],
            self.sample_rate,
            self.streamer.max_duration,
            source="the stream",
            verb="reached",
        )
        for block in self._blocks(data):
            self._check_values(block)
        return data

    def _accept(self, block: np.ndarray) -> np.ndarray:
        """Take a block of a checked chunk; return the encoder inputs that became final.

        The caller holds ``self._lock`` until `_complete` has stored their
        rows: the inputs of one call and their rows must not interleave with
        another call's.
        """
        mono = self._front.to_mono(self._as_float32(block))
        self._input_samples += mono.shape[0]
        return self._front.accept(mono)

    def _complete(self, encoded: np.ndarray, *, final: bool) -> list[StreamFrame]:
        """Store the mode's feature rows for ``encoded``; return the frames that became final.

        ``self._rows`` holds feature rows ``self._rows_first - h`` onwards with
        the zero padding in place, so frame i's window is one slice of it:
        rows i - h .. i + h - 1. At the end h - 1 zero rows follow the last row.
        The rows are never written once stored: each call makes a new
        read-only array of the rows still needed and the new ones, and the
        frames are views of it.
        """
        with self._lock:
            h = self.streamer.settings.half_window
            new_rows = [self._front.rows(encoded, final=final)]
            if new_rows[0].shape[0] == 0 and not final:
                return []
            self._rows_total += new_rows[0].shape[0]
            if final:
                new_rows.append(np.zeros((h - 1, *self._rows.shape[1:]), np.float32))
            rows = np.concatenate([self._rows, *new_rows])
            rows.flags.writeable = False
            # Frame i needs rows up to i + h - 1; at the end every frame is ready.
            last_frame = self._rows_total - 1 if final else self._rows_total - h
            first = self._frames_emitted
            count = max(0, last_frame + 1 - first)
            at = first - self._rows_first  # index of row first - h in rows
            own = rows[at + h : at + h + count]
            if count < 2 * h - 1:
                # `rows` is more than twice these: copy them, so that a caller
                # keeping only rows (not windows) does not keep `rows` alive.
                own = own.copy()
                own.flags.writeable = False
            shape = self.streamer.mode.frame_shape(h)
            frames = [
                StreamFrame(first + j, rows[at + j : at + j + 2 * h].reshape(shape), own[j])
                for j in range(count)
            ]
            self._frames_emitted += count
            # Rows before the next frame's window are no longer needed.
            drop = self._frames_emitted - self._rows_first
            self._rows = rows[drop:]
            self._rows_first += drop
            return frames

    # -- public --------------------------------------------------------------
    def feed(self, samples: np.ndarray) -> list[StreamFrame]:
        """Feed a chunk of any size; return the frames that became final.

        A chunk is checked whole before the stream changes, then taken in
        blocks of at most `FEED_BLOCK_VALUES` values, so memory does not grow
        with its size beyond the frames returned (read-only views of the rows
        computed; see `StreamFrame`).

        Parameters
        ----------
        samples : numpy.ndarray
            int16 (scaled by 1/32768), float32 or float64 (rounded to float32)
            samples at the stream's rate: 1-D for mono, (frames, channels)
            interleaved otherwise. Either byte order (taken by value, as
            `Pipeline.process` takes arrays). May be empty.

        Returns
        -------
        list of StreamFrame
            In order; possibly empty.

        Raises
        ------
        TypeError
            If ``samples`` is not a NumPy array of one of those dtypes.
        ParameterError
            For another shape, NaN or infinite values, float64 values beyond
            float32's range, a stream past its ``max_duration``, or a closed
            or failed stream. Nothing changes then.
        """
        with self._lock:
            return self.streamer._feed_checked([(self, self._check_chunk(samples))])[self]

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
