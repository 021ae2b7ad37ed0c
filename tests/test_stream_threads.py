"""One stream fed from several threads: every frame still equals the batch frame.

Tolerance: none (the project's streaming == batch promise, on one machine).
A `FeatureStream` serialises its calls: each `feed` takes its chunk whole and
returns the frames that chunk made final, in the order the calls took the
stream. Which thread's chunk goes first is up to the scheduler, so the tests
either record the order the stream accepted chunks in, or feed chunks that
are all equal (any order then gives the same input).
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

import numpy as np
import pytest

from synctalk_audio import load_audio
from synctalk_audio.pipeline import Pipeline
from synctalk_audio.streaming import FeatureStream, FeatureStreamer, StreamFrame

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
THREADS = 4
JOIN_TIMEOUT_S = 120  # a deadlock fails the test instead of hanging the suite


def speech(seconds: float) -> np.ndarray:
    wav = load_audio(os.path.join(DATA, "speech_16k_s16_loud_edges.wav"))
    reps = int(np.ceil(seconds * 16000 / wav.shape[0]))
    return np.tile(wav, reps)[: int(seconds * 16000)]


def batch_frames(model: str, audio: np.ndarray) -> list[bytes]:
    with Pipeline(model) as pipe:
        feats = pipe.process(audio)
    return [frame.tobytes() for frame in feats.all_frames()]


def wrong_frames(frames: dict[int, StreamFrame], want: list[bytes]) -> list[int]:
    assert sorted(frames) == list(range(len(want))), "frames missing or duplicated"
    return [i for i in range(len(want)) if frames[i].features.tobytes() != want[i]]


def run_threads(work: Any, count: int = THREADS) -> None:
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001  (re-raised in the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=guarded, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "threads still running: a deadlock"
    if errors:
        raise errors[0]


class RecordingOnlineMel:
    """Stands in for a stream's online mel: records the chunks it accepts, in order."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.accepted: list[np.ndarray] = []

    def accept_waveform(self, samples: np.ndarray) -> None:
        self.accepted.append(np.array(samples, copy=True))
        self._inner.accept_waveform(samples)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def collect(frames: dict[int, StreamFrame], lock: threading.Lock, new: list[StreamFrame]) -> None:
    with lock:
        for frame in new:
            assert frame.index not in frames, f"frame {frame.index} returned twice"
            frames[frame.index] = frame


def test_one_stream_fed_from_four_threads_equals_batch(test_encoder):
    """4 threads take chunks from one queue and feed one stream: exact frames."""
    audio = speech(12.0)
    chunks: queue.Queue[np.ndarray] = queue.Queue()
    for start in range(0, audio.shape[0], 1000):
        chunks.put(audio[start : start + 1000])
    stream = FeatureStreamer(test_encoder.onnx).open()
    front = stream._front  # the ave front end: its online mel is recorded
    recorder = RecordingOnlineMel(front._online)  # type: ignore[attr-defined]
    front._online = recorder  # type: ignore[attr-defined]
    frames: dict[int, StreamFrame] = {}
    lock = threading.Lock()

    def work() -> None:
        while True:
            try:
                chunk = chunks.get_nowait()
            except queue.Empty:
                return
            collect(frames, lock, stream.feed(chunk))

    run_threads(work)
    collect(frames, lock, stream.close())
    fed = np.concatenate(recorder.accepted)
    assert sorted(c.tobytes() for c in recorder.accepted) == sorted(
        audio[s : s + 1000].tobytes() for s in range(0, audio.shape[0], 1000)
    ), "the stream did not take each chunk exactly once, whole"
    want = batch_frames(test_encoder.onnx, fed)
    wrong = wrong_frames(frames, want)
    assert not wrong, f"{len(wrong)} of {len(want)} frames differ from batch, first {wrong[:5]}"


def test_equal_chunks_from_four_threads_equal_batch(test_encoder):
    """Without looking inside: equal chunks make the input the same in any order."""
    chunk = speech(0.0625 * 7)[:1111]  # 1111 samples: windows fall at every offset
    count = 180
    stream = FeatureStreamer(test_encoder.onnx).open()
    tickets = iter(range(count))
    ticket_lock = threading.Lock()
    frames: dict[int, StreamFrame] = {}
    lock = threading.Lock()

    def work() -> None:
        while True:
            with ticket_lock:
                if next(tickets, None) is None:
                    return
            collect(frames, lock, stream.feed(chunk))

    run_threads(work)
    collect(frames, lock, stream.close())
    want = batch_frames(test_encoder.onnx, np.tile(chunk, count))
    wrong = wrong_frames(frames, want)
    assert not wrong, f"{len(wrong)} of {len(want)} frames differ from batch, first {wrong[:5]}"


@pytest.mark.slow
def test_feed_many_and_feed_from_threads_on_shared_streams(test_encoder):
    """feed_many over overlapping streams in opposite orders, and feed, at once.

    Each stream gets equal chunks, so its input is known whatever the order;
    every stream's frames equal the batch frames, and nothing deadlocks.
    """
    streamer = FeatureStreamer(test_encoder.onnx)
    chunks = [speech(1.0)[k * 700 : k * 700 + 900 + 37 * k] for k in range(3)]
    streams = [streamer.open() for _ in chunks]
    fed = [0, 0, 0]
    fed_lock = threading.Lock()
    frames: list[dict[int, StreamFrame]] = [{}, {}, {}]
    lock = threading.Lock()
    rounds = 40

    def feed_many(order: list[int]) -> None:
        for _ in range(rounds):
            got = streamer.feed_many([(streams[k], chunks[k]) for k in order])
            with fed_lock:
                for k in order:
                    fed[k] += 1
            for k in order:
                collect(frames[k], lock, got.get(streams[k], []))

    def feed_one(k: int) -> None:
        for _ in range(rounds):
            new = streams[k].feed(chunks[k])
            with fed_lock:
                fed[k] += 1
            collect(frames[k], lock, new)

    jobs = iter(
        [
            lambda: feed_many([0, 1, 2]),
            lambda: feed_many([2, 1, 0]),
            lambda: feed_many([1, 0]),
            lambda: feed_one(0),
            lambda: feed_one(2),
        ]
    )
    jobs_lock = threading.Lock()

    def work() -> None:
        with jobs_lock:
            job = next(jobs)
        job()

    run_threads(work, count=5)
    for k, stream in enumerate(streams):
        collect(frames[k], lock, stream.close())
        want = batch_frames(test_encoder.onnx, np.tile(chunks[k], fed[k]))
        wrong = wrong_frames(frames[k], want)
        assert not wrong, f"stream {k}: {len(wrong)} of {len(want)} frames differ from batch"


def test_feed_many_with_a_stream_twice(test_encoder):
    """The same stream twice in one feed_many: its chunks are taken in list order."""
    streamer = FeatureStreamer(test_encoder.onnx)
    audio = speech(2.0)
    stream = streamer.open()
    got: list[StreamFrame] = []
    for start in range(0, audio.shape[0], 2000):
        out = streamer.feed_many(
            [(stream, audio[start : start + 1000]), (stream, audio[start + 1000 : start + 2000])]
        )
        got += out.get(stream, [])
    got += stream.close()
    want = batch_frames(test_encoder.onnx, audio)
    assert [f.features.tobytes() for f in got] == want


def test_a_failed_encoder_call_leaves_the_stream_refusing(test_encoder):
    """After the encoder fails mid-feed the stream says so instead of going on wrong."""

    class FailOnce:
        def __init__(self) -> None:
            from synctalk_audio.encoders import AveEncoder

            self.inner = AveEncoder(test_encoder.onnx)
            self.calls = 0

        def encode(self, windows: np.ndarray) -> np.ndarray:
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("encoder failed")
            return self.inner.encode(windows)

        def describe(self) -> dict[str, Any]:
            return {}

    stream: FeatureStream = FeatureStreamer(FailOnce()).open()
    audio = speech(2.0)
    with pytest.raises(RuntimeError, match="encoder failed"):
        for start in range(0, audio.shape[0], 1600):
            stream.feed(audio[start : start + 1600])
    from synctalk_audio import ParameterError

    with pytest.raises(ParameterError, match="reset"):
        stream.feed(audio[:1600])
    with pytest.raises(ParameterError, match="reset"):
        stream.close()
    stream.reset()
    got = stream.feed(audio) + stream.close()
    assert [f.features.tobytes() for f in got] == batch_frames(test_encoder.onnx, audio)
