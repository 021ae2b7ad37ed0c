"""``synctalk-audio stream``: WAV headers on standard input.

The WAV stream parser reads what a header says as libsndfile does, so that
the stream equals ``process`` on the same file byte for byte: an RF64
stream's data size is its ``ds64`` chunk's, and chunks after the data are not
audio. Header chunks are skipped as they arrive, within a bound.

Every child process has a timeout, and is killed if a test fails.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from synctalk_audio import load_audio
from synctalk_audio.errors import AudioLoadError
from synctalk_audio.frontends.wavstream import MAX_HEADER_BYTES, read_wav_header

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 120
FMT_16K_S16 = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)


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
