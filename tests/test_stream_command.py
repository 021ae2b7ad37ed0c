"""``synctalk-audio stream``: how a stream ends, and WAV headers on standard input.

How it ends decides what ``--output`` becomes: at the end of its input the
output replaces ``--output``; stopped (SIGINT, SIGTERM, SIGHUP) or left by its
reader (``| head``: status 141, as SIGPIPE would end it) it keeps the frames
final so far, marked incomplete, but never in place of a complete output:
that stays as it was and the partial output goes to ``OUT.partial`` beside
it, which the summary names; a stop before any frame writes nothing.

The WAV stream parser reads what a header says as libsndfile does, so that
the stream equals ``process`` on the same file byte for byte: an RF64
stream's data size is its ``ds64`` chunk's, and chunks after the data are not
audio. Header chunks are skipped as they arrive, within a bound.

Every child process has a timeout, and is killed if a test fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest

from synctalk_audio import load_audio
from synctalk_audio.errors import AudioLoadError
from synctalk_audio.frontends.wavstream import MAX_HEADER_BYTES, read_wav_header

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORD = 4 + 8192 * 4  # one frame record of the ave mode: [uint32 count][8192 float32]
TIMEOUT = 120
FMT_16K_S16 = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
#: A WAV header as a live writer sends it: sizes unknown.
LIVE_HEADER = (
    (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + FMT_16K_S16)
    + b"data"
    + struct.pack("<I", 0xFFFFFFFF)
)


def speech_pcm(seconds: float) -> bytes:
    """Speech as 16 kHz s16le bytes."""
    wav = load_audio(os.path.join(DATA, "speech_16k_s16_loud_edges.wav"))
    reps = int(np.ceil(seconds * 16000 / wav.shape[0]))
    clip = np.tile(wav, reps)[: int(seconds * 16000)]
    return (np.clip(clip, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()


def command(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=300,
    )


@contextlib.contextmanager
def child(*args: str, stdin: int | None = subprocess.PIPE) -> Iterator[subprocess.Popen[bytes]]:
    """``synctalk-audio ARGS`` running; killed (by its own id) if the test fails."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "synctalk_audio.cli", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        bufsize=0,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=TIMEOUT)


def read_records(proc: subprocess.Popen[bytes], count: int) -> bytes:
    """Block until ``count`` whole records came out of ``proc``."""
    assert proc.stdout is not None
    got = b""
    while len(got) < count * RECORD:
        block = proc.stdout.read(count * RECORD - len(got))
        assert block, "the stream ended before its first frames"
        got += block
    return got


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def snapshot(folder: str) -> dict[str, bytes | None]:
    """Every path under ``folder``: file contents, None for directories."""
    found: dict[str, bytes | None] = {}
    for top, dirs, files in os.walk(folder):
        for name in dirs:
            found[os.path.relpath(os.path.join(top, name), folder)] = None
        for name in files:
            with open(os.path.join(top, name), "rb") as f:
                found[os.path.relpath(os.path.join(top, name), folder)] = f.read()
    return found


def metadata(folder) -> dict:
    with open(os.path.join(folder, "metadata.json"), encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


@pytest.fixture
def complete_output(test_encoder, tmp_path):
    """``tmp_path/out``: a complete stream output (2 s of speech); and its snapshot."""
    out = tmp_path / "out"
    done = command(
        "stream", "--model", test_encoder.onnx, "--output", str(out), "--no-stdout", "-q",
        stdin=LIVE_HEADER + speech_pcm(2.0),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert metadata(out)["complete"] is True
    return out, snapshot(str(out))


# ---------------------------------------------------------------------------
# item: an early end never replaces a complete output


def test_stop_before_any_audio_keeps_the_complete_output(test_encoder, tmp_path, complete_output):
    """SIGTERM while waiting for raw audio: exit 143, nothing written, OUT as it was."""
    out, before = complete_output
    with child(
        "stream", "--model", test_encoder.onnx, "--raw", "s16le", "--output", str(out)
    ) as proc:  # fmt: skip
        # The staging directory exists once the command waits for its input.
        staging = f".out.tmp-{proc.pid}-"
        wait_for(
            lambda: any(n.startswith(staging) for n in os.listdir(tmp_path)) or proc.poll(),
            "the staging directory",
        )
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "interrupted: 0 frames" in lines[0], lines
    assert f"nothing was written, {out} was left as it was" in lines[0], lines
    assert snapshot(str(out)) == before
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_stop_midway_puts_the_partial_output_beside_a_complete_one(
    test_encoder, tmp_path, complete_output
):
    """SIGTERM after some frames: OUT as it was, the frames so far in OUT.partial."""
    out, before = complete_output
    with child("stream", "--model", test_encoder.onnx, "--output", str(out)) as proc:
        assert proc.stdin is not None
        proc.stdin.write(LIVE_HEADER + speech_pcm(1.5))  # frames up to ~12 are final
        proc.stdin.flush()
        first = read_records(proc, 1)
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    count = len(first + rest) // RECORD
    assert len(first + rest) == count * RECORD, "a record was cut in half"
    partial = tmp_path / "out.partial"
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and f"interrupted: {count} frame" in lines[0], lines
    assert f"{out} holds a complete output and was left as it was" in lines[0], lines
    assert f"is in {partial}" in lines[0], lines
    assert snapshot(str(out)) == before
    meta = metadata(partial)
    assert meta["complete"] is False and meta["counts"]["frames"] == count
    frames = sorted(os.listdir(partial / "frames"))
    assert frames == [f"frame_{i:05d}.bin" for i in range(count)]
    assert b"".join((partial / "frames" / name).read_bytes() for name in frames) == first + rest
    assert sorted(os.listdir(tmp_path)) == ["out", "out.partial"]


def test_stop_midway_replaces_an_incomplete_output(test_encoder, tmp_path):
    """An incomplete output is no loss: a second stopped run writes OUT itself."""
    out = tmp_path / "out"
    counts = []
    for seconds in (1.5, 1.8):  # under 64 KiB: the write never waits on the child
        with child("stream", "--model", test_encoder.onnx, "--output", str(out)) as proc:
            assert proc.stdin is not None
            proc.stdin.write(LIVE_HEADER + speech_pcm(seconds))
            proc.stdin.flush()
            first = read_records(proc, 1)
            proc.send_signal(signal.SIGINT)
            rest, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 130, err.decode()
        counts.append(len(first + rest) // RECORD)
        assert f'"complete": false) is in {out}' in err.decode()
        assert metadata(out)["counts"]["frames"] == counts[-1]
        assert sorted(os.listdir(tmp_path)) == ["out"]


def test_stop_midway_with_a_foreign_partial_path_keeps_nothing(
    test_encoder, tmp_path, complete_output
):
    """OUT.partial holding other files is never replaced: the partial output is dropped."""
    out, before = complete_output
    partial = tmp_path / "out.partial"
    partial.mkdir()
    (partial / "notes.txt").write_text("mine")
    with child("stream", "--model", test_encoder.onnx, "--output", str(out)) as proc:
        assert proc.stdin is not None
        proc.stdin.write(LIVE_HEADER + speech_pcm(1.5))
        proc.stdin.flush()
        read_records(proc, 1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, err.decode()
    line = err.decode().strip()
    assert "the partial output was not kept" in line and "notes.txt" in line, line
    assert snapshot(str(out)) == before
    assert snapshot(str(partial)) == {"notes.txt": b"mine"}
    assert sorted(os.listdir(tmp_path)) == ["out", "out.partial"]


def test_reader_gone_ends_as_sigpipe_and_keeps_the_complete_output(
    test_encoder, tmp_path, complete_output
):
    """`stream --output OUT < speech.wav | head -c 100`: status 141, not "interrupted"."""
    out, before = complete_output
    wav = tmp_path / "in.wav"
    wav.write_bytes(LIVE_HEADER + speech_pcm(3.0))
    with open(wav, "rb") as stdin:
        with child("stream", "--model", test_encoder.onnx, "--output", str(out), stdin=stdin) as p:
            assert p.stdout is not None
            assert len(p.stdout.read(100)) == 100
            p.stdout.close()  # as `head -c 100` does
            err = p.stderr.read() if p.stderr is not None else b""
            p.wait(timeout=TIMEOUT)
    assert p.returncode == 141, err.decode()
    line = err.decode().strip()
    assert "interrupted" not in line and "standard output was closed" in line, line
    assert snapshot(str(out)) == before
    assert metadata(tmp_path / "out.partial")["complete"] is False
    os.remove(wav)
    assert sorted(os.listdir(tmp_path)) == ["out", "out.partial"]


def test_reader_gone_without_output_is_quiet(test_encoder, tmp_path):
    """Without --output a closed standard output ends the stream silently, status 141."""
    wav = tmp_path / "in.wav"
    wav.write_bytes(LIVE_HEADER + speech_pcm(3.0))
    with open(wav, "rb") as stdin:
        with child("stream", "--model", test_encoder.onnx, stdin=stdin) as p:
            assert p.stdout is not None
            assert len(p.stdout.read(100)) == 100
            p.stdout.close()
            err = p.stderr.read() if p.stderr is not None else b""
            p.wait(timeout=TIMEOUT)
    assert p.returncode == 141, err.decode()
    assert err == b""


# ---------------------------------------------------------------------------
# item: WAV headers on standard input, read as process reads the file


def rf64(pcm: bytes, *, trailing: bytes, ds64_data: int | None = None) -> bytes:
    """An RF64 file: sizes in ds64, 0xFFFFFFFF in the RIFF and data sizes."""
    data = b"data" + struct.pack("<I", 0xFFFFFFFF) + pcm
    body = FMT_16K_S16 + data + trailing
    size = len(pcm) if ds64_data is None else ds64_data
    ds64 = b"ds64" + struct.pack("<IQQQI", 28, 4 + 36 + len(body), size, size // 2, 0)
    return b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + ds64 + body


def riff(pcm: bytes, *, trailing: bytes) -> bytes:
    """A RIFF WAV file whose data chunk is followed by ``trailing``."""
    body = FMT_16K_S16 + b"data" + struct.pack("<I", len(pcm)) + pcm + trailing
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


LIST_CHUNK = b"LIST" + struct.pack("<I", 4000) + b"INFO" + b"\x7f" * 3996


@pytest.mark.parametrize("container", ["rf64", "riff"])
def test_stream_equals_process_with_chunks_after_the_data(test_encoder, tmp_path, container):
    """RF64 (size in ds64) and WAV with a LIST chunk after the audio: stream == process."""
    pcm = speech_pcm(3.0)
    make = rf64 if container == "rf64" else riff
    wav = tmp_path / "in.wav"
    wav.write_bytes(make(pcm, trailing=LIST_CHUNK))
    done = command(
        "process", "--model", test_encoder.onnx, "--audio", str(wav), "--output",
        str(tmp_path / "process"), "-q",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    streamed = command(
        "stream", "--model", test_encoder.onnx, "--output", str(tmp_path / "stream"),
        stdin=wav.read_bytes(),
    )  # fmt: skip
    assert streamed.returncode == 0, streamed.stderr.decode()
    assert "from 3.00 s of audio" in streamed.stderr.decode()
    want_frames = sorted(os.listdir(tmp_path / "process" / "frames"))
    assert sorted(os.listdir(tmp_path / "stream" / "frames")) == want_frames
    for name in want_frames:
        assert (tmp_path / "stream" / "frames" / name).read_bytes() == (
            tmp_path / "process" / "frames" / name
        ).read_bytes(), name
    assert (tmp_path / "stream" / "aud_ave.npy").read_bytes() == (
        tmp_path / "process" / "aud_ave.npy"
    ).read_bytes()
    assert streamed.stdout == b"".join(
        (tmp_path / "process" / "frames" / name).read_bytes() for name in want_frames
    )


@pytest.mark.parametrize(
    ("ds64_data", "field", "want"),
    [
        (6000, 0xFFFFFFFF, 6000),  # the ds64 size, as libsndfile reads it
        (0, 0xFFFFFFFF, None),  # a live writer's ds64: unknown, read to the end
        (0, 4000, 4000),  # no ds64 size: the data chunk's own
    ],
)
def test_rf64_data_size_comes_from_ds64(ds64_data, field, want):
    body = FMT_16K_S16 + b"data" + struct.pack("<I", field)
    ds64 = b"ds64" + struct.pack("<IQQQI", 28, 0, ds64_data, 0, 0)
    stream = io.BytesIO(b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + ds64 + body)
    fmt, size = read_wav_header(stream)
    assert (fmt.sample_rate, fmt.channels, fmt.encoding, size) == (16000, 1, "s16le", want)


@pytest.mark.parametrize(
    ("rate", "channels", "expect"),
    [
        (
            0,
            1,
            "the sample rate in the WAV header must be an integer from 1000 to 768000 Hz, got 0",
        ),
        (16000, 0, "the channel count in the WAV header must be an integer from 1 to 1024, got 0"),
    ],
)
def test_header_rate_or_channels_zero_is_named(test_encoder, rate, channels, expect):
    """A rate of 0 is an invalid rate, not an "unsupported WAV encoding"."""
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, 0, 2, 16)
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + fmt
    header += b"data" + struct.pack("<I", 0xFFFFFFFF)
    done = command("stream", "--model", test_encoder.onnx, stdin=header + b"\0" * 3200)
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2 and done.stdout == b""
    assert lines == [f"synctalk-audio stream: error: {expect}"]


class CountingReader(io.RawIOBase):
    """``head``, then up to ``zeros`` zero bytes, then the end; records each read's size."""

    def __init__(self, head: bytes, zeros: int = 1 << 20) -> None:
        self.data = memoryview(head + b"\0" * zeros)
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size >= 0, "an unbounded read"
        self.reads.append(size)
        block, self.data = self.data[:size], self.data[size:]
        return bytes(block)


def test_a_huge_header_chunk_is_refused_before_it_is_read():
    """A LIST chunk claiming 4 GB: refused at once, not buffered until stdin ends."""
    head = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + FMT_16K_S16
    reader = CountingReader(head + b"LIST" + struct.pack("<I", 0xFFFFFFF0))
    with pytest.raises(AudioLoadError, match=r"'LIST' chunk of 4294967280 bytes.*damaged"):
        read_wav_header(reader)  # type: ignore[arg-type]
    assert sum(reader.reads) == len(head) + 8  # nothing past the chunk's size field


def test_header_chunks_are_skipped_in_blocks():
    """Chunks before the data are dropped as they arrive, never read whole."""
    size = 5 << 20
    head = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + FMT_16K_S16
    head += b"LIST" + struct.pack("<I", size) + b"\0" * size
    head += b"data" + struct.pack("<I", 640)
    reader = CountingReader(head, zeros=640)
    fmt, data = read_wav_header(reader)  # type: ignore[arg-type]
    assert (fmt.sample_rate, data) == (16000, 640)
    assert max(reader.reads) <= 1 << 16 and reader.read(1000) == b"\0" * 640
    assert size < MAX_HEADER_BYTES


def test_stream_command_refuses_a_huge_header_chunk_without_waiting(test_encoder):
    """The command says so while its standard input is still open."""
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + FMT_16K_S16
    with child("stream", "--model", test_encoder.onnx) as proc:
        assert proc.stdin is not None
        proc.stdin.write(header + b"LIST" + struct.pack("<I", 0xFFFFFFF0) + b"\0" * 65536)
        proc.stdin.flush()
        proc.wait(timeout=60)  # stdin stays open: an error now, not at its end
        err = proc.stderr.read() if proc.stderr is not None else b""
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "'LIST' chunk of 4294967280 bytes" in lines[0], lines
