"""Bad numbers are never written as good ones.

An encoder whose output is NaN or infinite, or not float32, is refused with a
`ModelError` naming the model (process, stream and `Pipeline` alike), and
`synctalk-audio validate` fails on NaN or infinity in either directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from tiny_models import make_tiny_encoder

from synctalk_audio.encoders import AveEncoder, check_features
from synctalk_audio.errors import ModelError
from synctalk_audio.outputs.files import FRAME_HEADER, read_frame_file
from synctalk_audio.pipeline import Pipeline
from synctalk_audio.streaming import FeatureStreamer

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tiny_models")
    return {
        kind: make_tiny_encoder(folder / f"{kind}.onnx", kind)
        for kind in ("good", "nan", "inf", "float64", "int64")
    }


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
        cwd=ROOT,
    )


# -- the check itself ------------------------------------------------------------


def test_check_features_names_the_model_and_the_windows():
    features = np.zeros((10, 512), np.float32)
    check_features("m.onnx", features)
    features[3, 7] = np.nan
    features[6, 0] = -np.inf
    with pytest.raises(ModelError) as caught:
        check_features("m.onnx", features, first=32)
    assert str(caught.value) == (
        "model m.onnx produced NaN/inf for windows 35..38 (2 windows); it is not a usable encoder"
    )
    for dtype in (np.float64, np.int64, np.float16):
        with pytest.raises(ModelError, match=f"model m.onnx returned {np.dtype(dtype).name}"):
            check_features("m.onnx", np.zeros((2, 512), dtype))


@pytest.mark.parametrize("kind, shown", [("float64", "tensor(double)"), ("int64", "tensor(int64)")])
def test_non_float32_output_is_refused_at_load(models, kind, shown):
    with pytest.raises(ModelError) as caught:
        AveEncoder(models[kind])
    message = str(caught.value)
    assert models[kind] in message and shown in message and "float32" in message


# -- every path goes through it ------------------------------------------------------


@pytest.mark.parametrize("kind", ["nan", "inf"])
def test_pipeline_refuses_nonfinite_output(models, kind):
    with Pipeline(models[kind]) as pipe, pytest.raises(ModelError) as caught:
        pipe.process(SPEECH)
    assert f"model {models[kind]} produced NaN/inf for windows 0.." in str(caught.value)
    assert "not a usable encoder" in str(caught.value)


@pytest.mark.parametrize("kind", ["nan", "inf"])
def test_stream_refuses_nonfinite_output(models, kind):
    audio = np.zeros(32000, np.float32)
    stream = FeatureStreamer(models[kind]).open(sample_rate=16000)
    with pytest.raises(ModelError, match="produced NaN/inf"):
        stream.feed(audio)
    streamer = FeatureStreamer(models[kind])
    with pytest.raises(ModelError, match="produced NaN/inf"):
        streamer.feed_many([(streamer.open(), audio)])


def test_the_good_model_passes(models):
    with Pipeline(models["good"]) as pipe:
        features = pipe.process(SPEECH)
    assert features.aud_ave.dtype == np.float32 and np.isfinite(features.aud_ave).all()


@pytest.mark.parametrize("kind", ["nan", "inf", "float64", "int64"])
def test_process_command_fails_with_one_line_and_writes_nothing(tmp_path, models, kind):
    out = tmp_path / "out"
    done = run_cli("process", "--audio", SPEECH, "--model", models[kind], "--output", str(out))
    err = done.stderr.decode()
    assert done.returncode != 0
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert models[kind] in err
    assert not out.exists()


@pytest.mark.parametrize("kind", ["nan", "float64"])
def test_stream_command_fails_with_one_line(models, kind):
    with open(SPEECH, "rb") as f:
        wav = f.read()
    done = run_cli("stream", "--model", models[kind], stdin=wav)
    err = done.stderr.decode()
    assert done.returncode != 0
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert models[kind] in err
    assert done.stdout == b""


# -- validate ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_output(tmp_path_factory: pytest.TempPathFactory, models: dict[str, str]) -> str:
    out = str(tmp_path_factory.mktemp("validate") / "good")
    done = run_cli("process", "--audio", SPEECH, "--model", models["good"], "--output", out, "-q")
    assert done.returncode == 0, done.stderr.decode()
    return out


def poison_frame(path: str, index: int, value: float) -> None:
    frame = read_frame_file(path)
    frame[index] = value
    with open(path, "wb") as f:
        f.write(FRAME_HEADER.pack(frame.size) + frame.astype("<f4").tobytes())


def poison_aud_ave(path: str, value: float) -> None:
    rows = np.load(path)
    rows[5, 9] = value
    np.save(path, rows)


def test_validate_passes_identical_outputs(tmp_path, good_output):
    copy = tmp_path / "copy"
    shutil.copytree(good_output, copy)
    done = run_cli("validate", good_output, str(copy))
    assert done.returncode == 0, done.stdout.decode()
    assert done.stdout.decode().strip().splitlines()[-1].startswith("OK")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["frame", "aud_ave"])
@pytest.mark.parametrize("side", ["candidate", "reference", "both"])
def test_validate_fails_on_nonfinite_values(tmp_path, good_output, value, where, side):
    dirs = {"reference": tmp_path / "ref", "candidate": tmp_path / "cand"}
    for path in dirs.values():
        shutil.copytree(good_output, path)
    poisoned = [dirs[side]] if side != "both" else list(dirs.values())
    for path in poisoned:
        if where == "frame":
            poison_frame(str(path / "frames" / "frame_00007.bin"), 100, value)
        else:
            poison_aud_ave(str(path / "aud_ave.npy"), value)
    done = run_cli("validate", str(dirs["reference"]), str(dirs["candidate"]))
    out = done.stdout.decode()
    assert done.returncode == 1, out
    last = out.strip().splitlines()[-1]
    assert last.startswith("FAIL: ") and "NaN/inf" in last, out
    name = "frame_00007.bin" if where == "frame" else "aud_ave.npy"
    assert name in last and str(poisoned[0]) in last
    done = run_cli("validate", "--json", str(dirs["reference"]), str(dirs["candidate"]))
    assert done.returncode == 1
    assert b'"match": false' in done.stdout
