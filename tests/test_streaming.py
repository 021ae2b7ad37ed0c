"""Streaming equals batch, byte for byte, and frames come out as soon as final.

Tolerance: none. Every frame a stream returns must have exactly the bytes of
the same frame from `Pipeline.process` on the whole input, for every
chunking, both pad modes, several frame rates and short clips; resampled
input too (soxr's streamed output equals its one-shot output).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synctalk_audio import ParameterError, load_audio
from synctalk_audio.pipeline import Pipeline
from synctalk_audio.streaming import FeatureStreamer, samples_needed_for_frame

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def speech(seconds: float = 2.0) -> np.ndarray:
    wav = load_audio(os.path.join(DATA, "speech_16k_s16_loud_edges.wav"))
    reps = int(np.ceil(seconds * 16000 / wav.shape[0]))
    return np.tile(wav, reps)[: int(seconds * 16000)]


def batch_frames(model: str, audio: np.ndarray, **kw: object) -> tuple[bytes, bytes]:
    with Pipeline(model, **kw) as pipe:  # type: ignore[arg-type]
        feats = pipe.process(audio)
    return feats.all_frames().tobytes(), feats.aud_ave.tobytes()


def stream_frames(
    streamer: FeatureStreamer, audio: np.ndarray, sizes: list[int], **open_kw: object
) -> tuple[bytes, bytes, int]:
    stream = streamer.open(**open_kw)  # type: ignore[arg-type]
    frames, position, i = [], 0, 0
    while position < audio.shape[0]:
        size = sizes[i % len(sizes)]
        frames += stream.feed(audio[position : position + size])
        position += size
        i += 1
    early = len(frames)
    frames += stream.close()
    assert [f.index for f in frames] == list(range(len(frames)))
    return (
        np.stack([f.features for f in frames]).tobytes(),
        np.stack([f.row for f in frames]).tobytes(),
        early,
    )


@pytest.fixture(scope="module")
def streamers(test_encoder):
    made: dict[tuple[float, str], FeatureStreamer] = {}

    def get(fps: float = 25.0, pad_mode: str = "constant") -> FeatureStreamer:
        if (fps, pad_mode) not in made:
            made[(fps, pad_mode)] = FeatureStreamer(test_encoder.onnx, fps=fps, pad_mode=pad_mode)
        return made[(fps, pad_mode)]

    return get


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
@pytest.mark.parametrize("fps", [25.0, 30.0, 29.97])
@pytest.mark.parametrize("chunking", ["one_chunk", "20ms", "ragged"])
def test_stream_equals_batch(test_encoder, streamers, pad_mode, fps, chunking):
    audio = speech(2.0)
    want_frames, want_rows = batch_frames(test_encoder.onnx, audio, fps=fps, pad_mode=pad_mode)
    sizes = {"one_chunk": [audio.shape[0]], "20ms": [320], "ragged": [1, 7, 333, 4000, 2, 919]}
    got_frames, got_rows, early = stream_frames(streamers(fps, pad_mode), audio, sizes[chunking])
    assert got_frames == want_frames, "streamed frames differ from batch (exact bytes required)"
    assert got_rows == want_rows, "streamed aud_ave rows differ from batch"
    if chunking != "one_chunk":
        assert early > 0, "no frame came out before the end of input"


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=12),
    seconds=st.sampled_from([0.1875, 0.25, 0.6, 1.3]),
    pad_mode=st.sampled_from(["constant", "reflect"]),
)
def test_stream_equals_batch_random_chunks(test_encoder, streamers, sizes, seconds, pad_mode):
    """Property: any chunking of any (long enough) clip gives the batch bytes."""
    audio = speech(seconds)
    want_frames, want_rows = batch_frames(test_encoder.onnx, audio, pad_mode=pad_mode)
    got_frames, got_rows, _ = stream_frames(streamers(25.0, pad_mode), audio, sizes)
    assert got_frames == want_frames
    assert got_rows == want_rows


def test_single_sample_chunks_short_clip(test_encoder, streamers):
    audio = speech(0.25)
    want = batch_frames(test_encoder.onnx, audio)
    got = stream_frames(streamers(), audio, [1])
    assert got[:2] == want


def test_frames_come_out_when_their_audio_arrives(streamers):
    """Frame i is returned by the feed that delivers sample samples_needed_for_frame(i) - 1."""
    audio = speech(2.0)
    stream = streamers().open()
    emitted_at = {}
    for n in range(0, audio.shape[0], 40):
        for frame in stream.feed(audio[n : n + 40]):
            emitted_at[frame.index] = n + 40
    assert emitted_at, "nothing emitted before close"
    for index, received in emitted_at.items():
        need = samples_needed_for_frame(index)
        assert need <= received < need + 40, (index, need, received)
    assert samples_needed_for_frame(0) == 7200
    assert all(samples_needed_for_frame(i) <= 640 * i + 7240 for i in range(2000))


@pytest.mark.parametrize(
    "name",
    ["speech_44k1_stereo_s24.wav", "speech_8k_u8.wav", "speech_22k05_stereo_extensible_chunks.wav"],
)
def test_resampled_stream_equals_batch(test_encoder, streamers, name):
    """Other rates are resampled incrementally by soxr; the result is still exact."""
    path = os.path.join(DATA, name)
    raw, rate = sf.read(path, dtype="float32", always_2d=True)
    with Pipeline(test_encoder.onnx) as pipe:
        feats = pipe.process(path)
    got_frames, got_rows, _ = stream_frames(
        streamers(),
        raw if raw.shape[1] > 1 else raw[:, 0],
        [441, 17, 1000],
        sample_rate=rate,
        channels=raw.shape[1],
    )
    assert got_frames == feats.all_frames().tobytes()
    assert got_rows == feats.aud_ave.tobytes()


def test_int16_input_equals_scaled_float(streamers):
    pcm = (speech(1.0) * 32767).astype(np.int16)
    a = stream_frames(streamers(), pcm, [500])
    b = stream_frames(streamers(), pcm.astype(np.float32) / 32768, [500])
    assert a == b


def test_feed_many_equals_separate_feeds(streamers):
    streamer = streamers()
    clips = [speech(1.0), speech(1.3)[::-1].copy(), speech(0.7) * 0.5]
    separate = [stream_frames(streamer, c, [320]) for c in clips]
    streams = [streamer.open() for _ in clips]
    out: list[list] = [[] for _ in clips]
    for start in range(0, max(c.shape[0] for c in clips), 320):
        got = streamer.feed_many(
            [(s, c[start : start + 320]) for s, c in zip(streams, clips, strict=False)]
        )
        for k, s in enumerate(streams):
            out[k] += got.get(s, [])
    for k, s in enumerate(streams):
        out[k] += s.close()
        assert np.stack([f.features for f in out[k]]).tobytes() == separate[k][0]


def test_reset_and_reuse(streamers):
    audio = speech(1.0)
    stream = streamers().open()
    first = stream.feed(audio) + stream.close()
    with pytest.raises(ParameterError, match="closed"):
        stream.feed(audio)
    stream.reset()
    second = stream.feed(audio) + stream.close()
    assert (
        np.stack([f.features for f in first]).tobytes()
        == np.stack([f.features for f in second]).tobytes()
    )


def test_many_streams_on_threads(streamers):
    streamer = streamers()
    clips = [speech(1.0 + 0.1 * k) for k in range(6)]
    want = [stream_frames(streamer, c, [640]) for c in clips]
    results: dict[int, tuple] = {}

    def work(k: int) -> None:
        results[k] = stream_frames(streamer, clips[k], [321])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(clips))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[k] for k in range(len(clips))] == want


def test_too_short_stream_raises(streamers):
    stream = streamers().open()
    stream.feed(np.zeros(2999, np.float32))
    with pytest.raises(ParameterError, match=r"too short: need at least 0\.1875 s"):
        stream.close()


def test_bad_chunks_raise(streamers):
    stream = streamers().open()
    with pytest.raises(TypeError):
        stream.feed(np.zeros(10, np.int32))
    with pytest.raises(ParameterError):
        stream.feed(np.zeros((10, 2), np.float32))
    with pytest.raises(ParameterError, match="NaN"):
        stream.feed(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ParameterError, match="fps"):
        FeatureStreamer(streamers().encoder, fps=0)


# -- the stream command --------------------------------------------------------


def run_stream(args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", "stream", *args],
        input=data,
        capture_output=True,
        cwd=ROOT,
        timeout=300,
    )


def records(blob: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(blob):
        count = int.from_bytes(blob[pos : pos + 4], "little")
        out.append(blob[pos + 4 : pos + 4 + 4 * count])
        pos += 4 + 4 * count
    return out


def test_stream_command_wav_with_unknown_size(test_encoder, tmp_path):
    path = os.path.join(DATA, "speech_16k_stream_size_ffffffff.wav")
    with Pipeline(test_encoder.onnx) as pipe:
        feats = pipe.process(path)
    with open(path, "rb") as f:
        data = f.read()
    out_dir = tmp_path / "live"
    done = run_stream(["--model", test_encoder.onnx, "--output", str(out_dir), "-q"], data)
    assert done.returncode == 0, done.stderr.decode()
    got = records(done.stdout)
    assert len(got) == len(feats)
    assert b"".join(got) == feats.all_frames().astype("<f4").tobytes()
    assert np.load(out_dir / "aud_ave.npy").tobytes() == feats.aud_ave.tobytes()
    assert len(os.listdir(out_dir / "frames")) == len(feats)


def test_stream_command_raw_pcm(test_encoder):
    pcm = (speech(1.5) * 32767).astype("<i2")
    with Pipeline(test_encoder.onnx) as pipe:
        feats = pipe.process(pcm.astype(np.float32) / np.float32(32768))
    done = run_stream(
        ["--model", test_encoder.onnx, "--raw", "s16le", "--rate", "16000", "-q"], pcm.tobytes()
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"".join(records(done.stdout)) == feats.all_frames().tobytes()


def test_stream_command_rejects_garbage(test_encoder, tmp_path):
    done = run_stream(["--model", test_encoder.onnx, "--output", str(tmp_path / "o")], b"hello")
    assert done.returncode == 2
    assert b"not a WAV stream" in done.stderr
    assert not (tmp_path / "o").exists()
    assert os.listdir(tmp_path) == []


def test_stream_command_from_soundfile_buffer(test_encoder):
    """A 48 kHz float WAV piped in gives the same frames as process() on the file."""
    path = os.path.join(DATA, "speech_48k_float32.wav")
    with Pipeline(test_encoder.onnx) as pipe:
        feats = pipe.process(path)
    with open(path, "rb") as f:
        data = f.read()
    done = run_stream(["--model", test_encoder.onnx, "-q"], data)
    assert done.returncode == 0, done.stderr.decode()
    assert b"".join(records(done.stdout)) == feats.all_frames().tobytes()


def test_docs_example_streams_a_wav(test_encoder):
    """docs/examples/stream_wav.py runs and finds the stream equal to the batch result."""
    done = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "docs", "examples", "stream_wav.py"),
            os.path.join(DATA, "speech_44k1_stereo_s24.wav"),
            "--model",
            test_encoder.onnx,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "identical to the batch result: True" in done.stdout
    assert "final after" in done.stdout


def test_stream_command_sigint_flushes_what_is_final(test_encoder, tmp_path):
    """Ctrl-C mid-stream: exit 130, whole records only, output dir marked incomplete."""
    import json
    import signal
    import struct

    pcm = (speech(3.0) * 32767).astype("<i2")
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    header += b"data" + struct.pack("<I", 0xFFFFFFFF)
    out_dir = tmp_path / "live"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "synctalk_audio.cli",
            "stream",
            "--model",
            test_encoder.onnx,
            "--output",
            str(out_dir),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        bufsize=0,  # unbuffered: nothing read ahead that communicate() would miss
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(header + pcm[:24000].tobytes())  # 1.5 s: frames up to ~12 are final
    child.stdin.flush()
    record = 4 + 8192 * 4
    first = b""
    while len(first) < record:  # blocks until the first frame is out
        block = child.stdout.read(record - len(first))
        assert block, "the stream command ended before its first frame"
        first += block
    child.send_signal(signal.SIGINT)
    rest, err = child.communicate(timeout=120)
    assert child.returncode == 130, err.decode()
    blob = first + rest
    assert len(blob) % record == 0, "a record was cut in half"
    count = len(blob) // record
    meta = json.loads((out_dir / "metadata.json").read_text())
    assert meta["complete"] is False and meta["counts"]["frames"] == count
    assert len(os.listdir(out_dir / "frames")) == count
    assert np.load(out_dir / "aud_ave.npy").shape == (count, 512)
    assert os.listdir(tmp_path) == ["live"]


@pytest.mark.parametrize(("read_size", "remaining"), [(1, None), (777, None), (4096, 2 * 24000)])
def test_feed_pcm_equals_batch_and_stops_at_remaining(test_encoder, read_size, remaining):
    """`feed_pcm` (the stream command's loop) reads, decodes and feeds: frames as in batch."""
    import io

    from synctalk_audio.frontends.wavstream import PcmDecoder, PcmFormat
    from synctalk_audio.streaming import feed_pcm

    pcm = (speech(1.5) * 32767).astype("<i2")
    data = pcm.tobytes() + b"trailing bytes past the declared size"
    used = pcm[: remaining // 2] if remaining is not None else pcm
    want, _ = batch_frames(test_encoder.onnx, used.astype(np.float32) / 32768)
    stream = FeatureStreamer(test_encoder.onnx).open()
    source = io.BytesIO(data if remaining is not None else pcm.tobytes())
    frames = list(
        feed_pcm(
            stream,
            source.read,
            PcmDecoder(PcmFormat(16000, 1, "s16le")),
            read_size=read_size,
            remaining=remaining,
        )
    )
    assert np.stack([f.features for f in frames]).tobytes() == want
