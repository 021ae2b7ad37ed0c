"""The synctalk-audio command: files, options, and clear failures.

Output format checks are exact (header count 8192, little-endian float32,
N + 2 frames). Every bad input must give exit status 2, one line on stderr
and nothing left behind: no output directory, no temporary directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from synctalk_audio import cli
from synctalk_audio.encoders import file_sha256
from synctalk_audio.outputs.files import read_frame_file
from synctalk_audio.pipeline import Pipeline

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")


def run(*args: str, cwd: str = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_process_writes_the_original_layout(test_encoder, tmp_path):
    out = tmp_path / "out"
    done = run("process", "--audio", SPEECH, "--model", test_encoder.onnx, "--output", str(out))
    assert done.returncode == 0, done.stderr
    with Pipeline(test_encoder.onnx) as pipe:
        feats = pipe.process(SPEECH)
    aud_ave = np.load(out / "aud_ave.npy")
    assert aud_ave.dtype == np.dtype("<f4") and aud_ave.shape == (len(feats), 512)
    assert aud_ave.tobytes() == feats.aud_ave.tobytes()
    names = sorted(os.listdir(out / "frames"))
    assert names == [f"frame_{i:05d}.bin" for i in range(len(feats))]
    for i in (0, 1, len(feats) // 2, len(feats) - 1):
        blob = (out / "frames" / names[i]).read_bytes()
        assert len(blob) == 4 + 8192 * 4
        assert int.from_bytes(blob[:4], "little") == 8192
        assert np.frombuffer(blob[4:], "<f4").tobytes() == feats.frame(i).tobytes()
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["counts"]["frames"] == len(feats) == meta["counts"]["windows"] + 2
    assert meta["input"]["sample_rate"] == 16000 and meta["input"]["channels"] == 1
    assert meta["model"]["sha256"] == file_sha256(test_encoder.onnx)
    assert meta["settings"] == {
        "fps": 25.0,
        "mode": "ave",
        "pad_mode": "constant",
        "half_window": 8,
        "frame_shape": [32, 16, 16],
        "batch_size": 32,
        "frame_files": True,
    }  # the default backend and output format are not named (outputs of before say the same)
    assert {"load_s", "mel_s", "encode_s", "write_s", "wall_s"} <= set(meta["timings"])
    assert {"synctalk_audio", "numpy", "onnxruntime", "soxr", "libsndfile"} <= set(meta["versions"])
    assert [n for n in os.listdir(tmp_path) if n != "out"] == []


def test_single_dash_options_without_subcommand(test_encoder, tmp_path):
    out = tmp_path / "go_style"
    done = run(
        "-audio",
        SPEECH,
        "-model",
        test_encoder.onnx,
        "-output",
        str(out),
        "-fps",
        "30",
        "-mode",
        "ave",
        "-q",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["settings"]["fps"] == 30.0


def test_no_frames_and_rerun_replaces_output(test_encoder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    done = run(
        "process",
        "--audio",
        SPEECH,
        "--model",
        test_encoder.onnx,
        "--output",
        str(out),
        "--overwrite",  # stale.txt is not synctalk-audio's
        "--no-frames",
        "--pad-mode",
        "reflect",
        "--batch-size",
        "7",
        "--threads",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["aud_ave.npy", "metadata.json"]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["settings"]["pad_mode"] == "reflect" and meta["settings"]["batch_size"] == 7
    assert os.listdir(tmp_path) == ["out"]


def wrong_shape_model(path: str) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, 224, 224])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 3, 224, 224])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("missing_model", "encoder model not found"),
        ("garbage_model", "cannot load ONNX model"),
        ("wrong_shapes", "is not a SyncTalk_2D AVE audio encoder"),
        ("output_is_file", "exists and is not a directory"),
        ("output_parent_missing", "does not exist"),
        ("unknown_mode", "unknown mode 'foo'"),
        ("hubert", "is not a HuBERT model: mode 'hubert' expects one float32 input"),
        ("wenet", "is not a WeNet encoder of Ultralight-Digital-Human's kind"),
        ("pad_mode", "unknown pad mode 'edge'"),
        ("missing_audio", "audio file not found"),
        ("not_audio", "could not decode"),
        ("too_short", "too short: need at least 0.1875 s"),
    ],
)
def test_bad_input_fails_cleanly(test_encoder, tmp_path, case, expect):
    model, audio, out = test_encoder.onnx, SPEECH, str(tmp_path / "out")
    extra: list[str] = []
    if case == "missing_model":
        model = str(tmp_path / "nope.onnx")
    elif case == "garbage_model":
        model = str(tmp_path / "garbage.onnx")
        (tmp_path / "garbage.onnx").write_bytes(b"this is not onnx")
    elif case == "wrong_shapes":
        model = str(tmp_path / "relu.onnx")
        wrong_shape_model(model)
    elif case == "output_is_file":
        out = str(tmp_path / "afile")
        (tmp_path / "afile").write_text("x")
    elif case == "output_parent_missing":
        out = str(tmp_path / "no" / "such" / "dir")
    elif case in ("unknown_mode", "hubert", "wenet"):
        extra = ["--mode", {"unknown_mode": "foo"}.get(case, case)]
    elif case == "pad_mode":
        extra = ["--pad-mode", "edge"]
    elif case == "missing_audio":
        audio = str(tmp_path / "missing.wav")
    elif case == "not_audio":
        audio = str(tmp_path / "text.wav")
        (tmp_path / "text.wav").write_text("not audio at all\n" * 20)
    elif case == "too_short":
        audio = str(tmp_path / "short.wav")
        import soundfile as sf

        sf.write(audio, np.zeros(2000, np.float32), 16000)
    done = run("process", "--audio", audio, "--model", model, "--output", out, *extra)
    before = {"garbage.onnx", "relu.onnx", "afile", "text.wav", "short.wav"}
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], done.stderr
    assert set(os.listdir(tmp_path)) <= before, os.listdir(tmp_path)


def test_interrupt_leaves_nothing(test_encoder, tmp_path, monkeypatch, capsys):
    """Ctrl-C while frames are being written: exit 130, no output, no temp dir."""
    import synctalk_audio.outputs.sink as output

    written = []
    original = output.write_frame_file

    def interrupted(path: str, frame: np.ndarray) -> None:
        if len(written) == 10:
            raise KeyboardInterrupt
        written.append(path)
        original(path, frame)

    monkeypatch.setattr(output, "write_frame_file", interrupted)
    out = tmp_path / "out"
    (tmp_path / "keep").mkdir()
    status = cli.main(
        ["process", "--audio", SPEECH, "--model", test_encoder.onnx, "--output", str(out)]
    )
    assert status == 130
    assert "interrupted" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["keep"]


def test_interrupt_keeps_previous_output(test_encoder, tmp_path, monkeypatch):
    import synctalk_audio.outputs.sink as output

    out = tmp_path / "out"
    assert (
        cli.main(
            ["process", "--audio", SPEECH, "--model", test_encoder.onnx, "--output", str(out), "-q"]
        )
        == 0
    )
    before = (out / "aud_ave.npy").read_bytes()

    def boom(path: str, frame: np.ndarray) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(output, "write_frame_file", boom)
    assert (
        cli.main(
            [
                "process",
                "--audio",
                SPEECH,
                "--model",
                test_encoder.onnx,
                "--output",
                str(out),
                "--fps",
                "30",
            ]
        )
        == 130
    )
    assert (out / "aud_ave.npy").read_bytes() == before
    assert os.listdir(tmp_path) == ["out"]


def test_validate_command(test_encoder, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert (
            cli.main(
                [
                    "process",
                    "--audio",
                    SPEECH,
                    "--model",
                    test_encoder.onnx,
                    "--output",
                    str(d),
                    "-q",
                ]
            )
            == 0
        )
    same = run("validate", str(a), str(b))
    assert same.returncode == 0 and "OK" in same.stdout, same.stdout
    frame = b / "frames" / "frame_00003.bin"
    values = read_frame_file(str(frame))
    values[100] += 1e-3
    with open(frame, "wb") as f:
        f.write((8192).to_bytes(4, "little") + values.astype("<f4").tobytes())
    differ = run("validate", str(a), str(b), "--json")
    assert differ.returncode == 1
    report = json.loads(differ.stdout)
    assert report["match"] is False
    assert abs(report["frames_max_abs"] - 1e-3) < 1e-6
    assert report["features_max_abs"] == 0.0
    relative = run("validate", str(a), str(b), "--relative", "--tolerance", "1e-2")
    assert relative.returncode == 0, relative.stdout


def test_help_lists_defaults():
    done = run("process", "--help")
    assert done.returncode == 0
    for text in (
        "-audio",
        "models/audio_encoder.onnx",
        "(default: output)",
        "(default: the mode's own rate: ave 25, hubert 25, wenet 20)",
        "--odd-frames pad|drop",
        "(default: ave)",
        "(default: constant)",
        "--no-frames",
        "--batch-size",
    ):
        assert text in " ".join(done.stdout.split()), text
