"""Audio paths that are not plain readable files, and the messages for them.

- A FIFO or a ``<(command)`` path (/dev/fd/N) is read through: the samples
  equal those of the file itself, bit for bit (same decoder on the same
  bytes). An empty one is called empty.
- A truncated MP3 is "truncated or corrupt", not "does not exist".
- An unreadable file (mode 000) is a PermissionError saying so, not
  libsndfile's "System error". Root reads any file, so as root the check runs
  in a child without the DAC override capabilities.
- `stream` names the format of a FLAC/OGG/MP3 stream and an empty stdin.
"""

from __future__ import annotations

import ctypes
import io
import os
import subprocess
import sys
import threading

import pytest

from synctalk_audio import AudioLoadError, load_audio, load_audio_with_info

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
