"""The streaming API's edges: big chunks in bounded blocks, light frames, bad arguments.

Tolerance: none. A chunk of any size gives the batch frames byte for byte
while the front end sees blocks of at most FEED_BLOCK_VALUES samples and the
encoder about ENCODE_BATCH_BYTES of inputs per call; frames are read-only
views of the rows computed, not copies of their windows (a tracemalloc peak
on 20 s of wenet, with a generous bound, and the views themselves).
"""

from __future__ import annotations

import os
import tracemalloc
import warnings
from typing import Any

import numpy as np
import pytest

from synctalk_audio import ParameterError, load_audio
from synctalk_audio.modes.ave import samples_needed_for_frame
from synctalk_audio.modes.wenet import samples_needed_for_row
from synctalk_audio.pipeline import Pipeline
from synctalk_audio.streaming import FeatureStreamer

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def speech(seconds: float) -> np.ndarray:
    wav = load_audio(os.path.join(DATA, "speech_16k_s16_loud_edges.wav"))
    reps = int(np.ceil(seconds * 16000 / wav.shape[0]))
    return np.tile(wav, reps)[: int(seconds * 16000)]


class RecordingEncoder:
    """An `Encoder` that records the bytes of every batch it is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def encode(self, windows: np.ndarray) -> np.ndarray:
        self.batches.append(windows.nbytes)
        return self.inner.encode(windows)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()


@pytest.fixture(scope="module")
def models(test_encoder, wenet_model):
    return {"ave": test_encoder.onnx, "wenet": wenet_model}


@pytest.fixture(scope="module")
def streamers(models):
    return {mode: FeatureStreamer(path, mode=mode) for mode, path in models.items()}


@pytest.mark.parametrize("mode", ["ave", "wenet"])
def test_a_big_chunk_is_fed_in_bounded_blocks(models, streamers, mode):
    """60 s in one chunk: blocks of at most FEED_BLOCK_VALUES samples, bounded encoder
    calls, and the batch frames byte for byte."""
    from synctalk_audio.streaming import ENCODE_BATCH_BYTES, FEED_BLOCK_VALUES

    audio = speech(60.0)
    assert audio.shape[0] > 3 * FEED_BLOCK_VALUES
    encoder = RecordingEncoder(streamers[mode].encoder)
    streamer = FeatureStreamer(encoder, mode=mode)
    stream = streamer.open()
    accepted: list[int] = []
    accept = stream._front.accept

    def recording_accept(mono: np.ndarray) -> np.ndarray:
        accepted.append(mono.shape[0])
        return accept(mono)

    stream._front.accept = recording_accept  # type: ignore[method-assign]
    frames = stream.feed(audio) + stream.close()
    assert sum(accepted) == audio.shape[0]
    assert len(accepted) >= 3 and max(accepted) <= FEED_BLOCK_VALUES, accepted
    # One call gets what had gathered plus one block's inputs at most: an input
    # per 640 samples at most (ave at 25 fps; wenet: 800), of 21440 bytes at most
    # (wenet's 67 x 80 float32; ave's 80 x 16).
    one_block_inputs = (FEED_BLOCK_VALUES // 640 + 2) * 67 * 80 * 4
    assert max(encoder.batches) <= ENCODE_BATCH_BYTES + one_block_inputs, encoder.batches
    with Pipeline(models[mode], mode=mode) as pipe:
        feats = pipe.process(audio)
    assert [f.index for f in frames] == list(range(len(feats)))
    for frame in frames:
        assert frame.features.tobytes() == feats.frame(frame.index).tobytes(), frame.index
        assert frame.row.tobytes() == feats.array[frame.index].tobytes(), frame.index


def test_frames_are_read_only_views_not_copies(streamers):
    stream = streamers["ave"].open()
    frames = stream.feed(speech(3.0))
    assert len(frames) > 20
    for a, b in zip(frames, frames[1:], strict=False):
        assert np.shares_memory(a.features, b.features)  # overlapping windows, one array
    for frame in frames[:3]:
        assert not frame.features.flags.writeable and not frame.row.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            frame.features[0, 0, 0] = 1.0
    copy = np.array(frames[0].features)
    copy[0, 0, 0] = 1.0  # a copy of one's own is writable


def test_small_chunks_do_not_make_rows_keep_their_windows(streamers):
    """A caller keeping only rows (as the stream command does) keeps about the rows."""
    stream = streamers["ave"].open()
    rows = []
    for start in range(0, 16000 * 3, 640):
        rows += [frame.row for frame in stream.feed(speech(3.0)[start : start + 640])]
    assert len(rows) > 20
    kept = {id(row.base): row.base.nbytes for row in rows if row.base is not None}
    assert sum(kept.values()) <= 2 * sum(row.nbytes for row in rows)


def test_feeding_one_big_chunk_keeps_memory_to_the_rows(streamers):
    """20 s of wenet in one chunk: the frames' windows (400 x 512 KB) are not copied.

    tracemalloc sees NumPy's allocations (not ONNX Runtime's); the rows
    returned are 400 x 32 KB = 13 MB, the windows would be 210 MB.
    """
    audio = speech(20.0)
    stream = streamers["wenet"].open()
    tracemalloc.start()
    try:
        frames = stream.feed(audio)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    window_bytes = sum(f.features.nbytes for f in frames)
    assert window_bytes > 150e6
    assert peak < 64e6, (peak, window_bytes)


@pytest.mark.parametrize("index", [-1, -100, 1.5, True, None, "3"])
def test_samples_needed_takes_frame_numbers_only(streamers, index):
    for streamer in streamers.values():
        with pytest.raises(ParameterError, match="index must be a frame number, an integer >= 0"):
            streamer.samples_needed(index)
    with pytest.raises(ParameterError, match="index must be a frame number"):
        samples_needed_for_frame(index)
    with pytest.raises(ParameterError, match="index must be a frame number"):
        samples_needed_for_row(index)
    assert streamers["ave"].samples_needed(np.int64(0)) == 7200


def test_feed_many_names_a_bad_item(streamers):
    streamer = streamers["ave"]
    good = streamer.open()
    chunk = np.zeros(1600, np.float32)
    with pytest.raises(TypeError, match=r"items\[0\] must be a \(FeatureStream, samples\) pair"):
        streamer.feed_many([("x", chunk)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"items\[1\] must be a \(FeatureStream, samples\) pair"):
        streamer.feed_many([(good, chunk), (good,)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="items must be an iterable of"):
        streamer.feed_many(5)  # type: ignore[arg-type]
    other = streamers["wenet"].open()
    with pytest.raises(ParameterError, match=r"items\[1\]: the stream was opened by another"):
        streamer.feed_many([(good, chunk), (other, chunk)])
    with pytest.raises(TypeError, match=r"items\[1\]: samples must be int16, float32 or float64"):
        streamer.feed_many([(good, chunk), (good, chunk.astype(np.int32))])
    with pytest.raises(ParameterError, match=r"items\[1\]: samples hold NaN"):
        streamer.feed_many([(good, chunk), (streamer.open(), np.full(4, np.nan))])
    assert good.samples_received == 0  # nothing was taken
    assert other.samples_received == 0


def test_feed_many_checks_the_duration_of_a_stream_given_twice(test_encoder):
    streamer = FeatureStreamer(test_encoder.onnx, max_duration=1.0)
    stream = streamer.open()
    half = speech(0.6)
    with pytest.raises(ParameterError, match=r"items\[1\]: the stream reached 1\.2 s"):
        streamer.feed_many([(stream, half), (stream, half)])
    assert stream.samples_received == 0


@pytest.mark.parametrize("dtype", [">i2", ">f4", ">f8"])
@pytest.mark.parametrize("channels", [1, 2])
def test_either_byte_order_is_taken_by_value(streamers, dtype, channels):
    audio = speech(1.0)
    if channels == 2:
        audio = np.stack([audio, audio[::-1]], axis=1)
    native = np.dtype(dtype).newbyteorder("=")
    values = (audio * 32767).astype(native) if native.kind == "i" else audio.astype(native)
    swapped = values.astype(dtype)
    assert swapped.dtype.byteorder == ">" and swapped.tobytes() != values.tobytes()
    streamer = streamers["ave"]
    got = [streamer.open(channels=channels) for _ in range(2)]
    a = got[0].feed(values) + got[0].close()
    b = got[1].feed(swapped) + got[1].close()
    assert (
        np.stack([f.features for f in a]).tobytes() == np.stack([f.features for f in b]).tobytes()
    )


@pytest.mark.parametrize(
    ("chunk", "channels", "message"),
    [
        (np.array([0.0, 1e300]), 1, "too large for float32 \\(largest magnitude 1e\\+300\\)"),
        (np.array([0.0, -1e39]), 1, "too large for float32"),
        (np.array([0.0, np.inf]), 1, "NaN or infinite"),
        (np.array([[3e38, 3e38]], np.float32), 2, "channels' mean is not finite"),
    ],
)
def test_values_beyond_float32_raise_without_a_warning(streamers, chunk, channels, message):
    stream = streamers["ave"].open(channels=channels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ParameterError, match=message):
            stream.feed(chunk)
    assert stream.samples_received == 0
    ok = np.zeros(1600, np.float32) if channels == 1 else np.zeros((1600, channels), np.float32)
    assert stream.feed(ok) == [] and stream.samples_received == 1600  # still usable
