"""The command's errors: one line on stderr, a non-zero exit, never a traceback.

Covers `stream` with standard input or output closed or unusable and a bad
--read-size, running out of memory (MemoryError from NumPy, libsndfile's
reader or ONNX Runtime, injected), and an unexpected exception: one line
naming its type, and its traceback with SYNCTALK_AUDIO_DEBUG=1 (which the
test suite sets for every other test, see conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import onnxruntime
import pytest
import soundfile as sf

import synctalk_audio.frontends.audio as audio_module
from synctalk_audio import cli

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")


def run(
    args: list[str],
    *,
    stdin: int | None = None,
    prepare: Callable[[], None] | None = None,
    code: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """The command in a child; ``prepare`` runs in the child before exec."""
    head = (
        [sys.executable, "-c", code, *args]
        if code
        else [sys.executable, "-m", "synctalk_audio.cli", *args]
    )
    return subprocess.run(
        head,
        stdin=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        preexec_fn=prepare,
    )


def one_line(text: str, command: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith(f"synctalk-audio {command}: error: "), lines[0]
    assert "Traceback" not in text
    return lines[0]


def close_fd(fd: int) -> Callable[[], None]:
    return lambda: os.close(fd)


def write_only_stdin() -> None:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 0)
    os.close(fd)


# -- stream: standard input and output ----------------------------------------


def test_stream_with_stdin_closed(test_encoder):
    done = run(["stream", "--model", test_encoder.onnx], prepare=close_fd(0))
    assert done.returncode == 2
    assert "standard input is closed" in one_line(done.stderr, "stream")


def test_stream_with_stdout_closed(test_encoder):
    with open(SPEECH, "rb") as f:
        done = run(["stream", "--model", test_encoder.onnx], stdin=f.fileno(), prepare=close_fd(1))
    assert done.returncode == 2
    line = one_line(done.stderr, "stream")
    assert "standard output is closed" in line and "--no-stdout" in line


def test_stream_with_stdout_closed_and_no_stdout_works(test_encoder, tmp_path):
    out = tmp_path / "live"
    with open(SPEECH, "rb") as f:
        done = run(
            ["stream", "--model", test_encoder.onnx, "--no-stdout", "--output", str(out), "-q"],
            stdin=f.fileno(),
            prepare=close_fd(1),
        )
    assert done.returncode == 0, done.stderr
    assert len(os.listdir(out / "frames")) == 49


@pytest.mark.parametrize("raw", [False, True])
def test_stream_with_unreadable_stdin(test_encoder, raw):
    extra = ["--raw", "s16le"] if raw else []
    done = run(["stream", "--model", test_encoder.onnx, *extra], prepare=write_only_stdin)
    assert done.returncode == 1
    assert "cannot read standard input: Bad file descriptor" in one_line(done.stderr, "stream")


def test_stream_with_unwritable_stdout(test_encoder):
    def read_only_stdout() -> None:
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 1)
        os.close(fd)

    with open(SPEECH, "rb") as f:
        done = run(
            ["stream", "--model", test_encoder.onnx], stdin=f.fileno(), prepare=read_only_stdout
        )
    assert done.returncode == 1
    assert "cannot write to standard output" in one_line(done.stderr, "stream")


@pytest.mark.parametrize("size", ["0", "-1"])
def test_stream_read_size_must_be_positive(test_encoder, size):
    with open(SPEECH, "rb") as f:
        done = run(["stream", "--model", test_encoder.onnx, "--read-size", size], stdin=f.fileno())
    assert done.returncode == 2
    line = one_line(done.stderr, "stream")
    assert f"--read-size must be at least 1 byte, got {size}" in line
    assert done.stdout == ""


# -- out of memory ---------------------------------------------------------------


def raise_memory_error(*args: object, **kwargs: object) -> None:
    raise MemoryError


class _NumpyWithoutMemory:
    """NumPy as the audio module sees it, except that allocating a block fails."""

    def __getattr__(self, name: str) -> object:
        return getattr(np, name)

    def empty(self, *args: object, **kwargs: object) -> None:
        raise MemoryError


def test_out_of_memory_in_the_encoder(test_encoder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(onnxruntime.InferenceSession, "run", raise_memory_error)
    out = tmp_path / "out"
    status = cli.main(
        ["process", "--audio", SPEECH, "--model", test_encoder.onnx, "--output", str(out)]
    )
    assert status == 1
    line = one_line(capsys.readouterr().err, "process")
    assert "out of memory while running the encoder; try a shorter input" in line
    assert os.listdir(tmp_path) == []


def test_out_of_memory_reported_by_onnx_runtime(test_encoder, tmp_path, monkeypatch, capsys):
    def cannot_allocate(*args: object, **kwargs: object) -> None:
        raise RuntimeError(
            "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for"
            " requested buffer of size 1073741824"
        )

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", cannot_allocate)
    status = cli.main(
        [
            "process",
            "--audio",
            SPEECH,
            "--model",
            test_encoder.onnx,
            "--output",
            str(tmp_path / "o"),
        ]
    )
    assert status == 1
    assert "out of memory while running the encoder" in one_line(capsys.readouterr().err, "process")


def test_out_of_memory_while_decoding(test_encoder, tmp_path, monkeypatch, capsys):
    # Both decoders: the whole-file one (SoundFile.read) and the block-by-block
    # one the command uses for a regular file (AudioBlocks).
    monkeypatch.setattr(sf.SoundFile, "read", raise_memory_error)
    monkeypatch.setattr(audio_module, "np", _NumpyWithoutMemory())
    status = cli.main(
        [
            "process",
            "--audio",
            SPEECH,
            "--model",
            test_encoder.onnx,
            "--output",
            str(tmp_path / "o"),
        ]
    )
    assert status == 1
    assert "out of memory while decoding the audio" in one_line(capsys.readouterr().err, "process")
    assert os.listdir(tmp_path) == []


def test_out_of_memory_in_stream(test_encoder):
    code = (
        "import sys, onnxruntime\n"
        "def run(*a, **k):\n"
        "    raise MemoryError\n"
        "onnxruntime.InferenceSession.run = run\n"
        "from synctalk_audio.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    with open(SPEECH, "rb") as f:
        done = run(["stream", "--model", test_encoder.onnx], stdin=f.fileno(), code=code)
    assert done.returncode == 1
    line = one_line(done.stderr, "stream")
    assert "out of memory while running the encoder; free memory" in line
    assert done.stdout == ""


# -- unexpected exceptions -------------------------------------------------------


def test_unexpected_exception_is_one_line(test_encoder, tmp_path, monkeypatch, capsys):
    from synctalk_audio.pipeline import Pipeline

    def bug(*args: object, **kwargs: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(Pipeline, "process_into", bug)
    argv = [
        "process",
        "--audio",
        SPEECH,
        "--model",
        test_encoder.onnx,
        "--output",
        str(tmp_path / "o"),
    ]
    monkeypatch.delenv("SYNCTALK_AUDIO_DEBUG")
    assert cli.main(argv) == 1
    line = one_line(capsys.readouterr().err, "process")
    assert "internal error: KeyError: 'boom'" in line
    assert "SYNCTALK_AUDIO_DEBUG=1" in line
    # The switch shows the traceback (tests run with it: bugs are not hidden).
    monkeypatch.setenv("SYNCTALK_AUDIO_DEBUG", "1")
    with pytest.raises(KeyError, match="boom"):
        cli.main(argv)


def test_anticipated_errors_stay_one_line_with_the_debug_switch(test_encoder, tmp_path):
    audio = tmp_path / "text.wav"
    audio.write_text("not audio\n" * 50)
    done = run(
        [
            "process",
            "--audio",
            str(audio),
            "--model",
            test_encoder.onnx,
            "--output",
            str(tmp_path / "o"),
        ]
    )
    assert os.environ["SYNCTALK_AUDIO_DEBUG"] == "1"
    assert done.returncode == 2
    assert "could not decode" in one_line(done.stderr, "process")


def test_multiline_messages_become_one_line(test_encoder, tmp_path, monkeypatch, capsys):
    from synctalk_audio.errors import ParameterError
    from synctalk_audio.pipeline import Pipeline

    def fails(*args: object, **kwargs: object) -> None:
        raise ParameterError("first line\nsecond line")

    monkeypatch.setattr(Pipeline, "process_into", fails)
    argv = [
        "process",
        "--audio",
        SPEECH,
        "--model",
        test_encoder.onnx,
        "--output",
        str(tmp_path / "o"),
    ]
    assert cli.main(argv) == 2
    assert "first line second line" in one_line(capsys.readouterr().err, "process")


def test_os_error_one_line_with_debug(test_encoder, tmp_path, monkeypatch, capsys):
    import synctalk_audio.outputs.sink as output

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output, "write_frame_file", disk_full)
    argv = [
        "process",
        "--audio",
        SPEECH,
        "--model",
        test_encoder.onnx,
        "--output",
        str(tmp_path / "o"),
    ]
    assert cli.main(argv) == 1
    assert "No space left on device" in one_line(capsys.readouterr().err, "process")
    assert os.listdir(tmp_path) == []
