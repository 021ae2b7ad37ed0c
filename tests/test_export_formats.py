"""``synctalk-audio export --format ort`` and ``--format coreml``.

ORT format: the converted model equals the ONNX model in ONNX Runtime at the
conversion's optimization level (0 difference, the converter's own check),
its operator config lists what a minimal build needs, and ``process --model
X.ort`` gives the ONNX model's output within the exporter's tolerance.

Core ML: converted on Linux by coremltools; its predictions run only on
macOS, so what is checked is the program: the ONNX model's input and output
names, float32, a flexible batch, no float16 tensor and no cast. On a Mac
`validate_coreml` compares predictions (docs/PORTING.md).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from synctalk_audio import cli
from synctalk_audio.errors import ParameterError
from synctalk_audio.export.coreml import export_coreml, validate_coreml
from synctalk_audio.export.ort import convert_to_ort, operators_config_path, ort_check_feeds

TESTS = os.path.dirname(os.path.abspath(__file__))
AUDIO = os.path.join(TESTS, "data", "speech_16k_s16_mono.wav")


@pytest.mark.slow
def test_ort_format_equals_the_onnx_model_and_runs_in_process(test_encoder, tmp_path):
    target = str(tmp_path / "ave.ort")
    report = convert_to_ort(test_encoder.onnx, target, check_feeds=ort_check_feeds("ave"))
    assert set(report.max_abs_diff) == {"batch 1", "batch 7", "batch 64"}
    assert max(report.max_abs_diff.values()) == 0.0
    assert max(report.max_abs_diff_default.values()) < 1e-5
    assert sorted(os.listdir(tmp_path)) == ["ave.ort", "ave.required_operators.config"]
    with open(operators_config_path(target), encoding="utf-8") as f:
        config = [line.strip() for line in f if not line.startswith("#")]
    assert any(line.startswith("ai.onnx;") and "Conv" in line for line in config), config
    outputs = {}
    for name, model in (("onnx", test_encoder.onnx), ("ort", target)):
        out = tmp_path / name
        argv = ["process", "--audio", AUDIO, "--model", model, "--output", str(out), "-q"]
        assert cli.main(argv) == 0
        outputs[name] = np.load(out / "aud_ave.npy")
        with open(out / "metadata.json", encoding="utf-8") as f:
            assert json.load(f)["counts"]["frames"] == outputs[name].shape[0]
    assert np.max(np.abs(outputs["ort"] - outputs["onnx"])) < 1e-5


@pytest.mark.slow
def test_coreml_program_is_float32_with_the_onnx_names_and_a_flexible_batch(test_encoder, tmp_path):
    target = str(tmp_path / "ave.mlpackage")
    report = export_coreml("ave", test_encoder.pth, target)
    assert os.path.isfile(os.path.join(target, "Manifest.json"))
    assert report.inputs == ["'mel' float32 (1..4096, 1, 80, 16)"]
    assert report.outputs[0].startswith("'features' float32")
    assert report.float16_tensors == 0 and report.casts == 0
    assert "conv" in report.operations and "cast" not in report.operations
    assert max(report.trace_max_abs_diff.values()) <= 1e-6
    text = str(report)
    assert "NOT checked here: Core ML predictions run only on macOS" in text
    assert f"python -m synctalk_audio.export.coreml {target}" in text
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []


def test_coreml_refuses_wenet_and_a_path_that_is_not_an_mlpackage(tmp_path):
    with pytest.raises(ParameterError, match="NAME.mlpackage"):
        export_coreml("ave", "x.pth", str(tmp_path / "model.onnx"))
    folder = tmp_path / "taken.mlpackage"
    folder.mkdir()
    with pytest.raises(ParameterError, match="is not an .mlpackage; move it away"):
        export_coreml("ave", "x.pth", str(folder))


@pytest.mark.skipif(sys.platform == "darwin", reason="on macOS Core ML does run predictions")
def test_coreml_validation_says_it_needs_a_mac():
    with pytest.raises(RuntimeError, match="only on macOS"):
        validate_coreml("ave.mlpackage", "ave.onnx", "ave")
