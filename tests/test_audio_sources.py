"""Audio paths that are not plain readable files, and the messages for them.

- A FIFO or a ``<(command)`` path (/dev/fd/N) is read through: the samples
  equal those of the file itself, bit for bit (same decoder on the same
  bytes). An empty one is called empty.
- A truncated MP3 is "truncated or corrupt", not "does not exist".
- An unreadable file (mode 000) is a PermissionError saying so, not
  libsndfile's "System error". Root reads any file, so as root the check runs
  in a child without the DAC override capabilities.
- `stream` names the format of a FLAC/OGG/MP3 stream and an empty stdin.
- A stream is read no further than ``max_duration`` allows (its format,
  recognised from its first bytes, gives the most bytes that duration can
  take); a device such as /dev/zero, in which no format is recognised, is
  refused after 64 KiB to 16 MiB; a full temporary folder is named. Whatever
  could run away on a regression runs under a deadline, and commands in a
  child with memory and file-size limits.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest
from procs import command_bounded, deadline

from synctalk_audio import AudioLoadError, load_audio, load_audio_with_info
from synctalk_audio.errors import ParameterError

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")


def feed_fifo(path: str, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(path, "wb") as f:  # blocks until the reader opens the FIFO
            f.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("name", ["speech_16k_s16_mono.wav", "speech_24k.mp3", "speech_16k.flac"])
def test_fifo_is_read_through(tmp_path, name):
    source = os.path.join(DATA, name)
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    with open(source, "rb") as f:
        writer = feed_fifo(fifo, f.read())
    samples, info = load_audio_with_info(fifo)
    writer.join(30)
    want, want_info = load_audio_with_info(source)
    assert samples.tobytes() == want.tobytes()
    assert info.source == fifo and info.sample_rate == want_info.sample_rate


def test_empty_fifo_is_called_empty(tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    writer = feed_fifo(fifo, b"")
    with pytest.raises(AudioLoadError, match="empty"):
        load_audio(fifo)
    writer.join(30)


def test_process_substitution_path_in_the_command(test_encoder, tmp_path):
    """``--audio <(cat file)``: the child reads /dev/fd/N, a pipe the test fills."""
    read_end, write_end = os.pipe()

    def fill() -> None:
        with open(SPEECH, "rb") as f, os.fdopen(write_end, "wb") as pipe:
            pipe.write(f.read())

    filler = threading.Thread(target=fill, daemon=True)
    filler.start()
    piped, direct = tmp_path / "piped", tmp_path / "direct"
    done = subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", "process", "--audio", f"/dev/fd/{read_end}"]
        + ["--model", test_encoder.onnx, "--output", str(piped), "-q"],
        pass_fds=(read_end,),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    os.close(read_end)
    filler.join(30)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", "process", "--audio", SPEECH]
        + ["--model", test_encoder.onnx, "--output", str(direct), "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (piped / "aud_ave.npy").read_bytes() == (direct / "aud_ave.npy").read_bytes()


@pytest.mark.parametrize("size", [1, 40, 300, 690])
def test_truncated_mp3_is_called_truncated(tmp_path, size):
    with open(os.path.join(DATA, "speech_24k.mp3"), "rb") as f:
        head = f.read(size)
    path = tmp_path / "cut.mp3"
    path.write_bytes(head)
    for source in (str(path), io.BytesIO(head)):
        with pytest.raises(AudioLoadError) as info:
            load_audio(source)  # type: ignore[arg-type]
        message = str(info.value)
        assert "does not exist" not in message and "not a regular file" not in message, message
        assert "could not decode" in message
        if size >= 40:  # enough of a frame header to tell MP3
            assert "MP3 data is truncated or corrupt" in message, message


def drop_file_read_override() -> None:
    """In the child: lose CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (root obeys modes)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unreadable_file_is_permission_denied(test_encoder, tmp_path):
    path = tmp_path / "locked.wav"
    with open(SPEECH, "rb") as f:
        path.write_bytes(f.read())
    path.chmod(0)
    try:
        api = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from synctalk_audio import load_audio; load_audio(sys.argv[1])",
                str(path),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
            preexec_fn=drop_file_read_override,
        )
        command = subprocess.run(
            [sys.executable, "-m", "synctalk_audio.cli", "process", "--audio", str(path)]
            + ["--model", test_encoder.onnx, "--output", str(tmp_path / "out")],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
            preexec_fn=drop_file_read_override,
        )
    finally:
        path.chmod(0o644)
    want = f"permission denied: cannot read audio file {path}"
    assert f"PermissionError: {want}" in api.stderr, api.stderr
    assert command.returncode == 2
    lines = command.stderr.strip().splitlines()
    assert len(lines) == 1 and want in lines[0], command.stderr
    assert "System error" not in command.stderr


def run_stream(model: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", "stream", "--model", model],
        input=data,
        capture_output=True,
        cwd=ROOT,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [("speech_16k.flac", "FLAC"), ("speech_22k05_vorbis.ogg", "OGG"), ("speech_24k.mp3", "MP3")],
)
def test_stream_names_a_compressed_format(test_encoder, name, kind):
    with open(os.path.join(DATA, name), "rb") as f:
        done = run_stream(test_encoder.onnx, f.read())
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and f"standard input looks like {kind}, not a WAV stream" in lines[0]


def test_stream_says_empty_input_is_empty(test_encoder):
    done = run_stream(test_encoder.onnx, b"")
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "standard input is empty" in lines[0], lines


# -- streams: read no further than the duration limit allows ------------------------------


def run_limited(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``synctalk-audio ARGS`` bounded, with files of at most 256 MiB (the spool included)."""
    return command_bounded(*args, timeout=timeout, file_bytes=256 << 20)


def wav_header(rate: int = 16000, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV header of unknown size (0xFFFFFFFF), as ``ffmpeg -f wav -`` streams."""
    block = 2 * channels
    return (
        b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
        + b"data" + struct.pack("<I", 0xFFFFFFFF)
    )  # fmt: skip


class EndlessWriter(threading.Thread):
    """Writes a WAV header, then up to ``total`` bytes of samples, into a FIFO; counts them."""

    def __init__(self, path: str, total: int = 256 << 20) -> None:
        super().__init__(daemon=True)
        self.path, self.total, self.written = path, total, 0
        self.start()

    def run(self) -> None:
        chunk = np.full(32768, 1000, np.int16).tobytes()
        with contextlib.suppress(BrokenPipeError), open(self.path, "wb") as f:
            f.write(wav_header())
            while self.written < self.total:
                f.write(chunk)
                self.written += len(chunk)


def test_an_endless_stream_stops_at_the_duration_limit(tmp_path):
    """The whole stream was copied first and --max-duration applied after the copy."""
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    writer = EndlessWriter(fifo)
    with deadline(60), pytest.raises(ParameterError) as err:
        load_audio_with_info(fifo, max_duration=5)
    writer.join(30)
    # The 64 KiB read to recognise the format, 5 s of 16 kHz mono PCM_16 (160,000
    # bytes) and an eighth more, 1 MiB of slack: 1.3 MB; a pipe buffer and a chunk more.
    assert writer.written < 2 << 20, writer.written
    assert str(err.value) == (
        f"{fifo} holds more than 5 s of audio: it goes on past 1294112 bytes, the most 5 s of"
        " WAV/PCM_16 at 16000 Hz x 1 channel(s) can take; the limit is 5 s: pass a larger"
        " --max-duration (max_duration in Python) to allow it"
    )


def test_the_command_stops_an_endless_stream_at_max_duration(test_encoder, tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    writer = EndlessWriter(fifo)
    out = tmp_path / "out"
    done = run_limited("process", "--model", test_encoder.onnx, "--audio", fifo, "--output",
                       str(out), "--max-duration", "5")  # fmt: skip
    writer.join(30)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"synctalk-audio process: error: {fifo} holds more than 5 s")
    assert len(done.stderr.splitlines()) == 1 and not out.exists()
    assert writer.written < 2 << 20, writer.written


def test_a_stream_within_the_limit_is_read_whole(tmp_path):
    """A stream longer than the probe, shorter than the limit: every sample, as from the file."""
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    samples = np.random.default_rng(3).integers(-3000, 3000, 16000 * 40, dtype=np.int16)
    body = samples.tobytes()
    data = wav_header()[:-4] + struct.pack("<I", len(body)) + body
    data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
    writer = feed_fifo(fifo, data)
    with deadline(60):
        got, info = load_audio_with_info(fifo, max_duration=41)
    writer.join(30)
    assert info.frames == samples.size
    assert np.array_equal(got, samples.astype(np.float32) / 32768)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_given_alone_is_refused_at_once(test_encoder, tmp_path, device):
    """It was copied into a temporary file at 360 MB/s, forever."""
    link = tmp_path / "z.wav"
    os.symlink(device, link)
    out = tmp_path / "out"
    done = run_limited("process", "--model", test_encoder.onnx, "--audio", str(link),
                       "--output", str(out))  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        f"synctalk-audio process: error: could not decode {link}: Format not recognised."
    ), done.stderr
    assert len(done.stderr.splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("how", ["tmpfs", "simulated"])
def test_no_room_for_the_copy_of_a_stream_names_the_folder(tmp_path, monkeypatch, request, how):
    """A stream's copy goes to TMPDIR past 64 KiB here: a full TMPDIR is one clear line."""
    import tempfile

    from synctalk_audio.frontends import audio

    if how == "tmpfs":
        folder = request.getfixturevalue("small_tmpfs")
    else:  # ENOSPC where the copy moves from memory to a file
        folder = str(tmp_path / "tmp")
        os.mkdir(folder)

        def rollover(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", rollover)
    monkeypatch.setattr(tempfile, "tempdir", folder)
    monkeypatch.setattr(audio, "_SPOOL_IN_MEMORY", 64 << 10)
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    writer = EndlessWriter(fifo, total=4 << 20)  # 131 s of audio, more than the 1 MiB tmpfs
    with deadline(60), pytest.raises(OSError) as err:
        load_audio_with_info(fifo, max_duration=None)
    writer.join(30)
    assert str(err.value) == (
        f"no space left in {folder} for the copy of {fifo} that decoding needs (No space left on"
        " device); free space there or set TMPDIR to a folder with room"
    )
    assert err.value.errno == errno.ENOSPC
    assert os.listdir(folder) == []
