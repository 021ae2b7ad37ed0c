"""Encoders that fail inside ONNX Runtime at run time, and fixed-batch models.

A model can pass the load-time signature check ((B, 1, 80, 16) in, (B, 512)
out) and still fail when run: a Reshape to a shape that does not fit, say.
Expected: `ModelError` naming the model and ONNX Runtime's reason, from
`AveEncoder.encode`, `Pipeline.process` and `FeatureStream`; in the command
one line on stderr and exit status 2, no traceback, nothing written.

A model exported with a fixed batch size (4) is used as it is: every call
gets exactly 4 windows, the last batch padded with zero windows whose rows
are dropped. Its rows equal the dynamic-batch model's bit for bit (the
project's batch-size independence; same weights, same machine).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from synctalk_audio import load_audio
from synctalk_audio.encoders import AveEncoder
from synctalk_audio.errors import ModelError
from synctalk_audio.pipeline import Pipeline
from synctalk_audio.streaming import FeatureStreamer

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")  # 2 s: 49 frames, 48 windows


def reshape_model(path: str) -> None:
    """Passes the signature check; at run time Reshape (B, 1, 80, 16) -> (B, 512) fails."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 1, 80, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 512])
    shape = numpy_helper.from_array(np.array([0, 512], np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "bad", [x], [y], [shape]
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def fixed_batch_model(source: str, path: str, batch: int) -> None:
    """The test encoder with its batch axis fixed to ``batch``."""
    model = onnx.load(source)
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = batch
    onnx.save(model, path)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory, test_encoder) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("broken_models")
    paths = {"reshape": str(folder / "reshape.onnx"), "fixed4": str(folder / "fixed4.onnx")}
    reshape_model(paths["reshape"])
    fixed_batch_model(test_encoder.onnx, paths["fixed4"], 4)
    return paths


def windows(count: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.standard_normal((count, 1, 80, 16)).astype(np.float32)


def test_run_time_failure_is_a_model_error(broken):
    encoder = AveEncoder(broken["reshape"])  # loads: the signature is right
    with pytest.raises(ModelError) as info:
        encoder.encode(windows(3))
    message = str(info.value)
    assert broken["reshape"] in message and "failed in ONNX Runtime" in message
    assert "Reshape" in message and "\n" not in message


def test_pipeline_and_stream_raise_model_error(broken):
    with Pipeline(broken["reshape"]) as pipe, pytest.raises(ModelError, match="reshape.onnx"):
        pipe.process(SPEECH)
    stream = FeatureStreamer(broken["reshape"]).open()
    with pytest.raises(ModelError, match="reshape.onnx"):
        stream.feed(load_audio(SPEECH))


@pytest.mark.parametrize("count", [1, 3, 4, 7, 9])
def test_fixed_batch_model_equals_dynamic_model(test_encoder, broken, count):
    fixed = AveEncoder(broken["fixed4"], batch_size=32)
    assert fixed.batch_size == 4 and fixed.fixed_batch == 4
    want = AveEncoder(test_encoder.onnx).encode(windows(count))
    got = fixed.encode(windows(count))
    assert got.shape == (count, 512)
    assert got.tobytes() == want.tobytes(), "padding the last batch changed the rows"


def test_fixed_batch_model_in_pipeline_and_stream(test_encoder, broken):
    with Pipeline(test_encoder.onnx) as pipe:
        want = pipe.process(SPEECH)
    with Pipeline(broken["fixed4"]) as pipe:
        got = pipe.process(SPEECH)
    assert got.aud_ave.tobytes() == want.aud_ave.tobytes()
    stream = FeatureStreamer(broken["fixed4"]).open()
    audio = load_audio(SPEECH)
    frames = []
    for start in range(0, audio.shape[0], 1234):  # odd windows per call
        frames += stream.feed(audio[start : start + 1234])
    frames += stream.close()
    assert np.stack([f.features for f in frames]).tobytes() == want.all_frames().tobytes()


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=300,
    )


def one_error_line(done: subprocess.CompletedProcess[bytes], command: str) -> str:
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1, done.stderr.decode()
    assert lines[0].startswith(f"synctalk-audio {command}: error: "), lines[0]
    return lines[0]


def test_process_command_one_line(broken, tmp_path):
    out = tmp_path / "out"
    done = run("process", "--audio", SPEECH, "--model", broken["reshape"], "--output", str(out))
    assert done.returncode == 2
    line = one_error_line(done, "process")
    assert f"encoder model {broken['reshape']} failed in ONNX Runtime" in line
    assert "cannot be reshaped" in line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("with_output", [False, True])
def test_stream_command_one_line(broken, tmp_path, with_output):
    with open(SPEECH, "rb") as f:
        wav = f.read()
    extra = ["--output", str(tmp_path / "live")] if with_output else []
    done = run("stream", "--model", broken["reshape"], *extra, stdin=wav)
    assert done.returncode == 2
    line = one_error_line(done, "stream")
    assert f"encoder model {broken['reshape']} failed in ONNX Runtime" in line
    assert done.stdout == b""
    assert os.listdir(tmp_path) == []


def test_fixed_batch_model_in_the_command(test_encoder, broken, tmp_path):
    for name, model in (("dynamic", test_encoder.onnx), ("fixed", broken["fixed4"])):
        done = run("process", "--audio", SPEECH, "--model", model, "--output", str(tmp_path / name))
        assert done.returncode == 0, done.stderr.decode()
    a = (tmp_path / "dynamic" / "aud_ave.npy").read_bytes()
    assert (tmp_path / "fixed" / "aud_ave.npy").read_bytes() == a
