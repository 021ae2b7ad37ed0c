"""Mode ``hubert``: the exporter, the features against upstream's logic, the command, the errors.

The tiny random HuBERT checkpoint is made once per session by
models/make_test_hubert.py (seed 0, the checkpoint the goldens of
tests/golden/modes were made with: its SHA-256 is checked against the
manifest) and exported with `export_hubert`, which itself checks ONNX Runtime
against a fresh PyTorch model.

Tolerance against the goldens (Ultralight-Digital-Human's hubert.py logic:
transformers HubertModel on PyTorch CPU, float32): 1e-4, the issue's. Measured
max abs differences on this machine (ONNX Runtime 1.32 vs PyTorch 2.13, tiny
model, feature std ~1): 5.5e-6 to 9.7e-6 over every case (8.7e-6 on the 21 s
clip of two chunks), so 1e-4 leaves a factor of 10 for other CPUs' kernels.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import reference_data
import soundfile as sf
from reference import ultralight

from synctalk_audio import modes
from synctalk_audio.encoders import HubertEncoder
from synctalk_audio.engines.pipeline import Pipeline
from synctalk_audio.engines.streaming import FeatureStreamer
from synctalk_audio.errors import ModelError, ParameterError
from synctalk_audio.export.common import ExportError
from synctalk_audio.export.hubert import CHECK_LENGTHS, export_hubert
from synctalk_audio.modes.hubert import (
    HubertMode,
    hubert_frame_count,
    normalise,
)

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
GOLDEN = os.path.join(TESTS, "golden", "modes")
with open(os.path.join(GOLDEN, "manifest.json"), encoding="utf-8") as _f:
    MANIFEST = json.load(_f)
CASES = sorted(MANIFEST["cases"])
SPEECH = os.path.join(TESTS, "data", "speech_16k_s16_mono.wav")  # T = 99, odd

#: Max abs difference allowed against the upstream logic (module docstring).
TOLERANCE = 1e-4


def run(*args: str, cwd: str = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def pipe(hubert_onnx: str):
    with Pipeline(hubert_onnx, mode="hubert") as p:
        yield p


def golden(name: str) -> tuple[dict, np.ndarray]:
    return MANIFEST["cases"][name], reference_data.load_npz(os.path.join(GOLDEN, name + ".npz"))[
        "hubert"
    ]


def max_diff(ours: np.ndarray, want: np.ndarray, stride: int) -> float:
    return float(np.max(np.abs(ours[..., ::stride].astype(np.float64) - want)))


# ----------------------------------------------------------------------------
# export


@pytest.mark.slow
def test_export_checks_against_a_fresh_pytorch_model(hubert_checkpoint, tmp_path):
    import onnx

    target = tmp_path / "h.onnx"
    report = export_hubert(hubert_checkpoint, str(target))
    assert sorted(report.max_abs_diff) == sorted(CHECK_LENGTHS)
    assert max(report.max_abs_diff.values()) < 1e-4
    assert report.hidden_size == 1024 and report.layers == 1
    assert report.sha256 == _sha256(str(target))
    graph = onnx.load(str(target), load_external_data=False).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert [graph.input[0].name, *dims] == ["input_values", "batch", "length"]
    assert "checked within 0.0001: OK" in str(report)


def test_export_fails_if_the_model_is_left_in_train_mode(hubert_checkpoint, tmp_path, monkeypatch):
    """The trap of the spec: a wrapper in train mode puts the whole model in train mode."""
    from synctalk_audio.export import hubert as export_module

    build = export_module._LastHiddenState.build
    monkeypatch.setattr(
        export_module._LastHiddenState, "build", staticmethod(lambda m: build(m).train())
    )
    with pytest.raises(ExportError):
        export_hubert(hubert_checkpoint, str(tmp_path / "h.onnx"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("case", ["missing", "file", "no_config", "wav2vec2", "bad_weights"])
def test_export_refuses_what_is_not_a_hubert_checkpoint(case, hubert_checkpoint, tmp_path):
    import shutil

    src = tmp_path / "ckpt"
    if case == "file":
        src.write_text("x")
    elif case != "missing":
        shutil.copytree(hubert_checkpoint, src)
        config = json.loads((src / "config.json").read_text())
        if case == "no_config":
            (src / "config.json").unlink()
        elif case == "wav2vec2":
            config["model_type"] = "wav2vec2"
            (src / "config.json").write_text(json.dumps(config))
        elif case == "bad_weights":
            config["hidden_size"] = 512  # weights are 1024 wide
            config["num_attention_heads"] = 8
            (src / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    out.mkdir()
    expected = FileNotFoundError if case == "missing" else ModelError
    with pytest.raises(expected) as info:
        export_hubert(str(src), str(out / "h.onnx"))
    message = str(info.value)
    if case == "wav2vec2":
        assert "holds a 'wav2vec2' model; --mode hubert expects a HuBERT checkpoint" in message
    assert os.listdir(out) == []


@pytest.mark.slow
def test_export_command(hubert_checkpoint, tmp_path):
    target = tmp_path / "h.onnx"
    done = run(
        "export", "--mode", "hubert", "--checkpoint", hubert_checkpoint, "--output", str(target)
    )
    assert done.returncode == 0, done.stderr
    assert "ONNX Runtime vs a fresh PyTorch HubertModel" in done.stdout
    assert target.is_file()
    bad = run("export", "--mode", "hubert", "--checkpoint", str(tmp_path), "--output", "x.onnx")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "has no config.json" in bad.stderr, bad.stderr


# ----------------------------------------------------------------------------
# features against the upstream logic


def test_normalisation_is_wav2vec2_feature_extractors(hubert_checkpoint):
    from transformers import Wav2Vec2FeatureExtractor

    extractor = Wav2Vec2FeatureExtractor.from_pretrained(hubert_checkpoint)
    rng = np.random.default_rng(3)
    for x in (sf.read(SPEECH)[0], rng.standard_normal(341520) * 0.05 + 0.01):
        want = extractor(x, sampling_rate=16000, return_tensors="np").input_values[0]
        ours = normalise(x)
        assert ours.dtype == want.dtype == np.float32
        # Equal: the same NumPy float32 operations on the same values, in one process
        # (the float64 arithmetic, rounded to float32, differs by 1 ulp in ~40 % of
        # the samples, so a tolerance would not tell the two apart).
        np.testing.assert_array_equal(ours, want)


@pytest.mark.numeric
@pytest.mark.parametrize("name", CASES)
def test_features_match_upstream(name, pipe):
    facts, want = golden(name)
    feats = pipe.process(os.path.join(TESTS, facts["file"]))
    assert feats.array.shape == tuple(facts["hubert_shape"])
    assert feats.array.dtype == np.float32
    assert max_diff(feats.array, want, facts["hubert_column_stride"]) <= TOLERANCE
    counts = feats.metadata["counts"]
    assert counts["hubert_frames"] == facts["hubert_T"] == hubert_frame_count(facts["samples_16k"])
    assert counts["chunks"] == (2 if facts["samples_16k"] > 320000 else 1)
    if facts["hubert_T"] % 2:  # pad: the added row is zero
        assert not feats.array[-1, 1].any()


@pytest.mark.numeric
@pytest.mark.parametrize(
    "name",
    [n for n in CASES if MANIFEST["cases"][n]["hubert_T"] % 2 and n != "speech_16k_400samples"],
)
def test_drop_option_drops_the_odd_row(name, hubert_onnx):
    facts, want = golden(name)
    with Pipeline(hubert_onnx, mode="hubert", options={"odd_frames": "drop"}) as p:
        feats = p.process(os.path.join(TESTS, facts["file"]))
    t = facts["hubert_T"]
    assert feats.array.shape == (t // 2, 2, 1024)
    assert max_diff(feats.array, want[: t // 2], facts["hubert_column_stride"]) <= TOLERANCE
    assert feats.metadata["settings"]["odd_frames"] == "drop"


def test_drop_option_on_a_single_row_is_a_clear_error(hubert_onnx):
    path = os.path.join(TESTS, "data", "modes", "speech_16k_400samples.wav")
    with (
        Pipeline(hubert_onnx, mode="hubert", options={"odd_frames": "drop"}) as p,
        pytest.raises(ParameterError, match="which drop removes"),
    ):
        p.process(path)


def test_first_channel_of_a_16k_stereo_file(pipe, tmp_path):
    """Channel 0 is used, not the mean: a second channel of noise changes nothing."""
    speech = sf.read(SPEECH, dtype="int16")[0]
    noise = np.random.default_rng(5).integers(-20000, 20000, speech.shape[0]).astype(np.int16)
    path = str(tmp_path / "stereo.wav")
    sf.write(path, np.stack([speech, noise], axis=1), 16000, subtype="PCM_16")
    np.testing.assert_array_equal(pipe.process(path).array, pipe.process(SPEECH).array)


def test_remainder_under_400_samples_is_left_out(pipe, hubert_checkpoint):
    """20 s + 200 samples: the 200-sample remainder is no chunk (upstream: >= 400 only)."""
    x = np.random.default_rng(7).standard_normal(320200) * 0.1
    feats = pipe.process(x)
    assert feats.metadata["counts"]["chunks"] == 1
    model, extractor = ultralight.load_hubert(hubert_checkpoint)
    want = ultralight.hubert_hidden(x, model, extractor).reshape(-1, 2, 1024)
    assert feats.array.shape == want.shape == (500, 2, 1024)
    assert max_diff(feats.array, want, 1) <= TOLERANCE


def test_too_short_audio_is_a_clear_error(pipe):
    with pytest.raises(ParameterError, match="need at least 400 samples at 16 kHz"):
        pipe.process(np.zeros(399, np.float32))
    assert pipe.process(np.zeros(400, np.float32) + 0.1).array.shape == (1, 2, 1024)


# ----------------------------------------------------------------------------
# settings and models


def test_mode_facts():
    mode = modes.get_mode("hubert")
    assert isinstance(mode, HubertMode)
    assert (mode.feature_file, mode.row_shape, mode.native_fps) == ("aud_hu.npy", (2, 1024), 25)
    assert mode.frame_shape(8) == (32, 32, 32) and mode.frame_shape(4) == (16, 32, 32)
    assert mode.settings().option("odd_frames") == "pad"


def test_session_keeps_one_copy_of_the_weights(hubert_onnx):
    # Pre-packing would keep a second copy of every matrix's weights: 2.5 GiB
    # instead of 1.8 GiB peak for hubert-large (docs/BENCHMARKS.md).
    encoder = HubertEncoder(hubert_onnx)
    entry = encoder._session.session.get_session_options().get_session_config_entry(
        "session.disable_prepacking"
    )
    assert entry == "1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fps": 30}, "fps 30 is not possible with mode 'hubert': its features come at 25 fps"),
        ({"half_window": 6}, "half_window 6 is not possible with mode 'hubert': expected 8 or 4"),
        ({"options": {"odd_frames": "trim"}}, "odd_frames 'trim' is not possible with mode"),
        ({"options": {"odd": "pad"}}, "odd does not apply to mode 'hubert'"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        modes.get_mode("hubert").settings(**kwargs)


def test_options_of_another_mode_are_refused():
    with pytest.raises(ParameterError, match="odd_frames does not apply to mode 'ave'"):
        modes.get_mode("ave").settings(options={"odd_frames": "pad"})


def test_ave_encoder_is_not_a_hubert_model(test_encoder):
    with pytest.raises(ModelError, match="is not a HuBERT model: mode 'hubert' expects"):
        Pipeline(test_encoder.onnx, mode="hubert")


def test_wenet_model_is_not_a_hubert_model(wenet_model):
    with pytest.raises(ModelError, match=r"is not a HuBERT model.*got 4 inputs"):
        Pipeline(wenet_model, mode="hubert")


def test_checkpoint_directory_given_as_model(hubert_checkpoint):
    with pytest.raises(ModelError, match="is a directory; --mode hubert runs an ONNX file"):
        Pipeline(hubert_checkpoint, mode="hubert")


def test_hubert_model_is_not_an_ave_encoder(hubert_onnx):
    with pytest.raises(ModelError, match="is not a SyncTalk_2D AVE audio encoder"):
        Pipeline(hubert_onnx, mode="ave")


def test_streaming_is_refused(hubert_onnx):
    with pytest.raises(ParameterError, match="mode 'hubert' cannot stream: its input is normal"):
        FeatureStreamer(hubert_onnx, mode="hubert")


# ----------------------------------------------------------------------------
# the command


def _read_frame(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        data = f.read()
    (count,) = struct.unpack("<I", data[:4])
    assert len(data) == 4 + 4 * count
    return np.frombuffer(data[4:], "<f4")


@pytest.mark.numeric
@pytest.mark.parametrize("h", [8, 4])
def test_process_command_writes_the_layout(h, hubert_onnx, tmp_path):
    out = tmp_path / "out"
    args = ["--audio", SPEECH, "--mode", "hubert", "--model", hubert_onnx, "--output", str(out)]
    done = run("process", *args, "--half-window", str(h))
    assert done.returncode == 0, done.stderr
    assert "-> 50 frames (99 hubert frames, 1 chunk)" in done.stdout
    aud = np.load(out / "aud_hu.npy")
    assert aud.shape == (50, 2, 1024) and aud.dtype == np.float32
    facts, want = golden("speech_16k_s16_mono")
    assert max_diff(aud, want, 1) <= TOLERANCE
    names = sorted(os.listdir(out / "frames"))
    assert names == [f"frame_{i:05d}.bin" for i in range(50)]
    shape = HubertMode.frame_shapes[h]
    for i in (0, 7, 49):
        frame = _read_frame(str(out / "frames" / names[i]))
        assert frame.size == int(np.prod(shape)) == {8: 32768, 4: 16384}[h]
        want_frame = ultralight.frame_window(aud, i, h, "hubert")
        np.testing.assert_array_equal(frame.reshape(shape), want_frame)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["settings"]["mode"] == "hubert" and meta["settings"]["odd_frames"] == "pad"
    assert meta["settings"]["frame_shape"] == list(shape)
    assert meta["counts"]["frames"] == 50 and meta["counts"]["hubert_frames"] == 99


def test_process_command_drop_option(hubert_onnx, tmp_path):
    out = tmp_path / "out"
    args = ["--audio", SPEECH, "--mode", "hubert", "--model", hubert_onnx, "--output", str(out)]
    done = run("process", *args, "--odd-frames", "drop", "--no-frames")
    assert done.returncode == 0, done.stderr
    assert np.load(out / "aud_hu.npy").shape == (49, 2, 1024)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fps", "30"], "--fps 30 is not possible with mode 'hubert'"),
        (["--odd-frames", "trim"], "--odd-frames 'trim' is not possible with mode 'hubert'"),
        (["--half-window", "5"], "--half-window 5 is not possible with mode 'hubert'"),
        (["--short"], "need at least 400 samples at 16 kHz"),
        (["--ave-model"], "is not a HuBERT model: mode 'hubert' expects one float32 input"),
    ],
)
def test_process_command_errors(extra, message, hubert_onnx, test_encoder, tmp_path):
    audio, model = SPEECH, hubert_onnx
    if extra == ["--short"]:
        audio, extra = str(tmp_path / "short.wav"), []
        sf.write(audio, np.full(399, 0.1, np.float32), 16000)
    elif extra == ["--ave-model"]:
        model, extra = test_encoder.onnx, []
    out = tmp_path / "out"
    done = run(
        "process",
        "--audio",
        audio,
        "--mode",
        "hubert",
        "--model",
        model,
        "--output",
        str(out),
        *extra,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not out.exists()


def test_odd_frames_with_mode_ave_is_refused(test_encoder, tmp_path):
    out = tmp_path / "out"
    done = run(
        "process",
        "--audio",
        SPEECH,
        "--model",
        test_encoder.onnx,
        "--output",
        str(out),
        "--odd-frames",
        "pad",
    )
    assert done.returncode == 2
    assert "--odd-frames does not apply to mode 'ave' (its options: none)" in done.stderr
    assert done.stderr.count("\n") == 1 and not out.exists()


def test_stream_command_refuses_hubert(hubert_onnx):
    with open(SPEECH, "rb") as f:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "synctalk_audio.cli",
                "stream",
                "--mode",
                "hubert",
                "--model",
                hubert_onnx,
            ],
            stdin=f,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "mode 'hubert' cannot stream: its input is normalised with the whole clip" in done.stderr
