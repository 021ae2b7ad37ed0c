"""The output seam: `Layout` and `FeatureSink`, a toy output format through the
command, and ``validate`` on every mode's files naming the row and frame that differ.

A new output format is one class and one registry line
(`synctalk_audio.outputs.sink.OUTPUT_FORMATS`); the toy format below is
registered from this test and run by ``synctalk-audio process`` and
``synctalk-audio stream`` like the standard one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any, ClassVar

import numpy as np
import pytest

from synctalk_audio import cli
from synctalk_audio.modes import get_mode
from synctalk_audio.outputs import sink as sinks
from synctalk_audio.outputs.files import read_frame_file, write_frame_file, write_metadata
from synctalk_audio.outputs.layout import Layout
from synctalk_audio.pipeline import Pipeline

DATA = os.path.join(os.path.dirname(__file__), "data")
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")
SHORT = os.path.join(DATA, "speech_16k_0p25s.wav")


class RowsText:
    """A toy output format: every row as one line of text, and metadata.json."""

    name: ClassVar[str] = "rows-text"

    def __init__(self, directory: str, layout: Layout, *, frames: bool) -> None:
        self.directory = directory
        self._file = open(os.path.join(directory, "rows.txt"), "w", encoding="utf-8")  # noqa: SIM115
        self._rows = 0

    @property
    def rows(self) -> int:
        return self._rows

    def append(self, rows: np.ndarray, frames: Any = None, first: int = 0) -> None:
        for row in rows:
            self._file.write(" ".join(f"{v:.9g}" for v in np.ravel(row)) + "\n")
        self._rows += rows.shape[0]

    def finish(self, metadata: dict[str, Any]) -> dict[str, Any]:
        self._file.close()
        return write_metadata(self.directory, metadata)

    def close(self) -> None:
        self._file.close()

    @classmethod
    def owns(cls, name: str, is_dir: bool) -> bool:
        return not is_dir and name == "rows.txt"


@pytest.fixture
def toy_format(monkeypatch: pytest.MonkeyPatch) -> type[RowsText]:
    monkeypatch.setitem(sinks.OUTPUT_FORMATS, RowsText.name, RowsText)  # the one registry line
    return RowsText


def test_a_toy_output_format_runs_through_process(test_encoder, toy_format, tmp_path):
    """--output-format rows-text: the command writes what the registered class writes."""
    want, got = str(tmp_path / "want"), str(tmp_path / "got")
    base = ["process", "--audio", SPEECH, "--model", test_encoder.onnx, "-q"]
    assert cli.main([*base, "--output", want]) == 0
    assert cli.main([*base, "--output", got, "--output-format", "rows-text"]) == 0
    assert sorted(os.listdir(got)) == ["metadata.json", "rows.txt"]
    rows = np.loadtxt(os.path.join(got, "rows.txt"), dtype=np.float32, ndmin=2)
    np.testing.assert_array_equal(rows, np.load(os.path.join(want, "aud_ave.npy")))
    with open(os.path.join(got, "metadata.json"), encoding="utf-8") as f:
        assert json.load(f)["settings"]["output_format"] == "rows-text"
    # Its own files mark it as an output of this tool: a rerun may replace it.
    assert cli.main([*base, "--output", got, "--output-format", "rows-text"]) == 0


def test_a_toy_output_format_runs_through_stream(test_encoder, toy_format, tmp_path):
    """The stream command writes through the same sink: rows as they become final."""
    import subprocess

    want = str(tmp_path / "want")
    assert cli.main(["process", "--audio", SPEECH, "--model", test_encoder.onnx, "-q",
                     "--output", want]) == 0  # fmt: skip
    script = (
        "import sys; from synctalk_audio import cli;"
        "from synctalk_audio.outputs import sink;"
        "sys.path.insert(0, sys.argv[1]); import test_output_seams as t;"
        "sink.OUTPUT_FORMATS[t.RowsText.name] = t.RowsText;"
        "sys.exit(cli.main(sys.argv[2:]))"
    )
    out = str(tmp_path / "got")
    with open(SPEECH, "rb") as audio:
        done = subprocess.run(
            [sys.executable, "-c", script, os.path.dirname(__file__), "stream", "--model",
             test_encoder.onnx, "--output", out, "--no-stdout", "--output-format", "rows-text",
             "-q"],
            stdin=audio, capture_output=True, timeout=300, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    rows = np.loadtxt(os.path.join(out, "rows.txt"), dtype=np.float32, ndmin=2)
    np.testing.assert_array_equal(rows, np.load(os.path.join(want, "aud_ave.npy")))


def test_an_unknown_output_format_names_the_option(test_encoder, tmp_path, capsys):
    argv = ["process", "--audio", SPEECH, "--model", test_encoder.onnx,
            "--output", str(tmp_path / "o"), "--output-format", "nope"]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert "--output-format" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")


def test_the_standard_sink_equals_np_save(tmp_path):
    """Rows appended in pieces give np.save's bytes; frames go where the layout says."""
    layout = Layout.of(get_mode("ave"), 8)
    rows = np.random.default_rng(0).standard_normal((7, 512)).astype(np.float32)
    frames = [np.full((32, 16, 16), i, np.float32) for i in range(7)]
    out = sinks.open_sink("npy", str(tmp_path), layout, frames=True)
    out.append(rows[:3], frames[:3], 0)
    out.append(rows[3:], frames[3:], 3)
    out.finish({"counts": {"frames": out.rows}})
    np.save(tmp_path / "want.npy", rows)
    assert (tmp_path / "aud_ave.npy").read_bytes() == (tmp_path / "want.npy").read_bytes()
    assert sorted(os.listdir(tmp_path / "frames")) == [f"frame_{i:05d}.bin" for i in range(7)]
    np.testing.assert_array_equal(read_frame_file(layout.frame_path(str(tmp_path), 5)), 5)


def _perturbed(reference: str, folder: str, feature_file: str, row: int, frame: int) -> None:
    """A copy of ``reference`` with one element of ``row`` and of frame ``frame`` moved."""
    shutil.copytree(reference, folder)
    path = os.path.join(folder, feature_file)
    array = np.load(path)
    array[(row, *(s // 2 for s in array.shape[1:]))] += 0.5
    np.save(path, array)
    frame_path = os.path.join(folder, "frames", f"frame_{frame:05d}.bin")
    values = read_frame_file(frame_path)
    values[values.size // 3] -= 0.25
    write_frame_file(frame_path, values)


@pytest.mark.parametrize("mode", ["hubert", "wenet", "ave"])
def test_validate_names_the_row_and_frame_that_differ(mode, mode_models, tmp_path, capsys) -> None:
    """One perturbed row of a 3-D hubert/wenet feature array (or 2-D ave) and one frame file."""
    model = mode_models[mode]
    reference = str(tmp_path / "ref")
    with Pipeline(model, mode=mode) as pipe:
        pipe.process_to(SPEECH, reference)
    feature_file = get_mode(mode).feature_file
    rows = np.load(os.path.join(reference, feature_file)).shape[0]
    row, frame = rows // 2 + 1, rows // 3
    candidate = str(tmp_path / "cand")
    _perturbed(reference, candidate, feature_file, row, frame)

    assert cli.main(["validate", reference, candidate, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["feature_files"] == [feature_file, feature_file]
    assert report["features_worst_row"] == row
    assert report["features_max_abs"] == pytest.approx(0.5, rel=1e-6)
    assert report["frames_worst_file"] == os.path.join("frames", f"frame_{frame:05d}.bin")
    assert report["frames_max_abs"] == pytest.approx(0.25, rel=1e-6)
    # A whole row moved the same way in every element keeps its direction:
    # the per-row cosine covers the row's whole shape.
    assert report["features_min_cosine"] < 1.0

    assert cli.main(["validate", reference, candidate]) == 1
    text = capsys.readouterr().out
    assert f"(row {row})" in text and f"frame_{frame:05d}.bin" in text

    assert cli.main(["validate", reference, reference, "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["features_worst_row"] is None and same["frames_worst_file"] is None


def test_a_fifo_named_metadata_json_is_not_read(tmp_path):
    """Resume and the replace check read metadata.json only if it is a regular file."""
    import threading

    from synctalk_audio.outputs.directory import is_marked

    fifo = tmp_path / "metadata.json"
    os.mkfifo(fifo)
    answer: list[bool] = []
    reader = threading.Thread(target=lambda: answer.append(is_marked(str(fifo))), daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # blocked opening the FIFO: unblock it, then fail
        with open(fifo, "w"):
            pass
        reader.join(5)
        raise AssertionError("is_marked blocked on a FIFO")
    assert answer == [False]


class _StalledSink:
    """A `RowSink` whose first append waits for ``release`` (a stalled disk)."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()
        self.writing = threading.Event()
        self.appended = 0
        self.closed = 0

    def append(self, rows: np.ndarray, frames: Any = None, first: int = 0) -> None:
        self.writing.set()
        self.release.wait(30)
        self.appended += 1

    def finish(self, metadata: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("not finished in this test")

    def close(self) -> None:
        self.closed += 1


def test_a_close_that_gives_up_on_a_stalled_write_still_closes_the_sink(monkeypatch):
    """close() returns after CLOSE_WAIT_S; the write ending later closes the sink once."""
    import time

    monkeypatch.setattr(sinks, "CLOSE_WAIT_S", 0.2)
    inner = _StalledSink()
    sink = sinks.BackgroundSink(inner)
    sink.append(np.zeros((1, 4), np.float32))
    sink.append(np.zeros((1, 4), np.float32))  # waiting: dropped by close
    assert inner.writing.wait(10)
    start = time.monotonic()
    sink.close()
    assert time.monotonic() - start < 5
    assert inner.closed == 0  # the write is still in progress
    inner.release.set()
    sink._thread.join(10)
    assert not sink._thread.is_alive()
    assert (inner.appended, inner.closed) == (1, 1)


def test_a_close_after_the_writes_ended_closes_the_sink_in_the_caller():
    inner = _StalledSink()
    inner.release.set()
    sink = sinks.BackgroundSink(inner)
    sink.append(np.zeros((1, 4), np.float32))
    assert inner.writing.wait(10)
    sink.close()
    assert not sink._thread.is_alive()
    assert (inner.appended, inner.closed) == (1, 1)


def test_a_close_after_a_stop_in_finish_waits_for_the_write_in_progress():
    """A stop signal while finish waits for the writer, then close (what a stopped run
    does): close waits for the write in progress and closes the sink before it returns,
    so the staging directory is not removed under a writer still writing into it."""
    import signal
    import threading

    inner = _StalledSink()
    sink = sinks.BackgroundSink(inner)
    sink.append(np.zeros((1, 4), np.float32))
    assert inner.writing.wait(10)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(KeyboardInterrupt):
            sink.finish({})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    threading.Timer(0.3, inner.release.set).start()
    sink.close()
    assert (inner.appended, inner.closed) == (1, 1)
