"""Checkpoint loading, ONNX export, the random test encoder and the upstream reference script.

PyTorch is imported at the top on purpose: these tests need it, and a
missing PyTorch must fail loudly rather than skip. Measured values (max abs
differences) are attached to the test reports' ``user_properties``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import soundfile as sf
import torch
from reference import upstream

import synctalk_audio as sa
from synctalk_audio.encoders import AveEncoder
from synctalk_audio.errors import ModelError, ParameterError
from synctalk_audio.export import (
    ENCODER_PREFIX,
    ExportCheckError,
    ExportError,
    build_audio_encoder,
    export_onnx,
    load_audio_encoder,
    load_encoder_state_dict,
)
from synctalk_audio.export import ave as export
from synctalk_audio.testing import random_encoder_state_dict, save_state_dict_pth

pytestmark = pytest.mark.slow  # PyTorch exports

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")
SCRIPT = os.path.join(ROOT, "models", "make_test_encoder.py")
TOL = 1e-5
FRAME_FILE_BYTES = 4 + 8192 * 4


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """models/make_test_encoder.py run once: the random .pth, its ONNX export and the output."""
    folder = tmp_path_factory.mktemp("made")
    onnx_path, pth = str(folder / "audio_encoder.onnx"), str(folder / "test_encoder.pth")
    done = subprocess.run(
        [sys.executable, SCRIPT, "--seed", "0", "--out", onnx_path, "--pth", pth],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return {"onnx": onnx_path, "pth": pth, "stdout": done.stdout, "dir": str(folder)}


@pytest.fixture(scope="module")
def speech_windows() -> np.ndarray:
    mel = sa.melspectrogram(sa.load_audio(SPEECH))
    return np.ascontiguousarray(sa.encoder_windows(mel), dtype=np.float32)


def windows_for(count: int, speech: np.ndarray) -> np.ndarray:
    """Speech windows first, then uniform mel noise, then silence: ``count`` windows."""
    rng = np.random.default_rng(7)
    noise = rng.uniform(-4, 4, size=(max(count, 1), 1, 80, 16)).astype(np.float32)
    noise[-1] = -4.0
    return np.concatenate([speech, noise])[:count]


@pytest.fixture
def measure(request: pytest.FixtureRequest):
    """``measure(name, value)``: attach a measured number to the test's report.

    Stored in ``user_properties`` directly (not ``record_property``, which
    warns, so errors here, under ``--junitxml`` with the xunit2 family).
    """

    def record(name: str, value: object) -> None:
        request.node.user_properties.append((name, value))

    return record


def read_json(path: str) -> dict[str, object]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


# ----------------------------------------------------------------------------
# the package without PyTorch


def test_package_and_test_weights_import_without_torch():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any 'import torch' now raises ImportError\n"
        "import synctalk_audio, synctalk_audio.export, synctalk_audio.testing as t\n"
        "s = t.random_encoder_state_dict(0)\n"
        "assert len(s) == 91\n"
        "try:\n"
        "    synctalk_audio.export.export_onnx(s, 'never.onnx')\n"
        "except ImportError as e:\n"
        "    assert 'synctalk-audio[export]' in str(e), e\n"
        "    print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# ----------------------------------------------------------------------------
# the random test weights


def test_random_state_dict_has_the_upstream_keys():
    state = random_encoder_state_dict(0)
    module_keys = list(build_audio_encoder().state_dict())
    assert [ENCODER_PREFIX + k for k in state] == module_keys
    assert all(not k.startswith(ENCODER_PREFIX) for k in state)
    assert state["0.conv_block.0.weight"].shape == (32, 1, 3, 3)
    assert state["12.conv_block.0.weight"].shape == (512, 512, 1, 1)
    assert state["11.conv_block.0.weight"].shape == (512, 256, 3, 3)
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            assert value.dtype == np.int64 and value.shape == () and value > 0, key
        else:
            assert value.dtype == np.float32, key
    params = sum(
        v.size
        for k, v in state.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    assert params == export.encoder_parameter_count() == 2_812_672


def test_random_state_dict_is_seeded():
    a, b, c = (random_encoder_state_dict(seed) for seed in (0, 0, 1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.conv_block.0.weight"], c["0.conv_block.0.weight"])
    with pytest.raises(ValueError, match="seed"):
        random_encoder_state_dict(-1)


def test_batchnorm_statistics_are_randomised(speech_windows, measure):
    state = random_encoder_state_dict(0)
    var = np.concatenate([v for k, v in state.items() if k.endswith("running_var")])
    mean = np.concatenate([v for k, v in state.items() if k.endswith("running_mean")])
    gamma = np.concatenate([v for k, v in state.items() if k.endswith("conv_block.1.weight")])
    beta = np.concatenate([v for k, v in state.items() if k.endswith("conv_block.1.bias")])
    assert not np.allclose(var, 1.0) and var.min() < 0.3 and var.max() > 3.5 and var.min() > 0
    assert np.abs(mean).mean() > 0.1
    assert np.abs(gamma - 1).mean() > 0.1
    assert np.abs(beta).mean() > 0.05
    # and it matters: the same conv weights with default BN statistics, or a
    # train-mode forward, give very different features
    model = load_audio_encoder(state)
    neutral = dict(state)
    for key in state:
        if key.endswith(("running_var", "conv_block.1.weight")):
            neutral[key] = np.ones_like(state[key])
        elif key.endswith(("running_mean", "conv_block.1.bias")):
            neutral[key] = np.zeros_like(state[key])
    x = torch.from_numpy(speech_windows)
    with torch.no_grad():
        eval_out = model(x)
        neutral_out = load_audio_encoder(neutral)(x)
        train_out = copy.deepcopy(model).train()(x)
    rel_neutral = float((eval_out - neutral_out).abs().mean() / eval_out.abs().mean())
    rel_train = float((eval_out - train_out).abs().mean() / eval_out.abs().mean())
    measure("bn_neutral_relative_change", rel_neutral)
    measure("bn_train_mode_relative_change", rel_train)
    assert rel_neutral > 0.5 and rel_train > 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_weights_keep_activations_in_range(seed, speech_windows, measure):
    model = load_audio_encoder(random_encoder_state_dict(seed))
    h = torch.from_numpy(speech_windows)
    stds = []
    with torch.no_grad():
        for block in model.audio_encoder:
            h = block(h)
            stds.append(float(h.std()))
    out = h.squeeze(2).squeeze(2)
    measure("block_output_std", stds)
    assert all(0.1 <= s <= 10 for s in stds), stds
    assert 0.1 <= float(out.std()) <= 10
    assert float(out.std(0).mean()) > 0.05  # the features depend on the input
    assert 0.2 < float((out == 0).float().mean()) < 0.8  # ReLU: neither dead nor linear


# ----------------------------------------------------------------------------
# checkpoints


def upstream_format_variants(state: dict[str, np.ndarray]) -> dict[str, dict[str, torch.Tensor]]:
    plain = {k: torch.from_numpy(v) for k, v in state.items()}
    prefixed = {ENCODER_PREFIX + k: v for k, v in plain.items()}
    visual = {f"face_encoder.{i}.conv_block.0.weight": torch.zeros(4, 3, 3, 3) for i in range(3)}
    return {
        "no_prefix": plain,
        "prefix": prefixed,
        "audio_visual": {**visual, **prefixed},
        "wrapped": {"state_dict": {**visual, **prefixed}, "epoch": torch.tensor(3)},
        "data_parallel": {"module." + k: v for k, v in prefixed.items()},
    }


@pytest.mark.parametrize(
    "variant", ["no_prefix", "prefix", "audio_visual", "wrapped", "data_parallel"]
)
def test_checkpoint_keys_with_or_without_prefix_load(variant, tmp_path, speech_windows):
    state = random_encoder_state_dict(3)
    path = str(tmp_path / "ckpt.pth")
    torch.save(upstream_format_variants(state)[variant], path)
    loaded = load_encoder_state_dict(path)
    assert list(loaded) == [ENCODER_PREFIX + k for k in state]
    for key, value in state.items():
        assert np.array_equal(loaded[ENCODER_PREFIX + key].numpy(), value), key
    # the same numbers as the upstream class loaded the upstream way
    ours = load_audio_encoder(path)
    pth = str(tmp_path / "upstream.pth")
    save_state_dict_pth(state, pth)
    theirs = upstream.load_torch_encoder(pth)
    x = torch.from_numpy(speech_windows)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_save_state_dict_pth_is_the_upstream_format(tmp_path):
    state = random_encoder_state_dict(0)
    a = save_state_dict_pth(state, tmp_path / "a.pth")
    b = save_state_dict_pth(state, tmp_path / "b.pth")
    raw = torch.load(a, map_location="cpu", weights_only=True)
    assert list(raw) == list(state)  # no prefix, the upstream key order
    assert raw["0.conv_block.1.num_batches_tracked"].dtype == torch.int64
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()  # reproducible bytes
    assert sorted(os.listdir(tmp_path)) == ["a.pth", "b.pth"]  # no temporary files left


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = {k: torch.from_numpy(v) for k, v in random_encoder_state_dict(0).items()}
    del state["3.conv_block.1.running_var"]
    state["3.conv_block.2.weight"] = torch.zeros(3)
    path = str(tmp_path / "bad.pth")
    torch.save(state, path)
    with pytest.raises(ModelError) as info:
        load_encoder_state_dict(path)
    message = str(info.value)
    assert path in message
    assert "1 missing keys ('3.conv_block.1.running_var')" in message
    assert "1 unexpected keys ('3.conv_block.2.weight')" in message
    assert "audio_encoder." in message


@pytest.mark.parametrize(
    "case, match",
    [
        (
            "wrong_shape",
            r"'5.conv_block.0.weight' has shape \(64, 64, 3, 1\), expected \(64, 64, 3, 3\)",
        ),
        ("nan", r"'1.conv_block.1.bias' holds NaN"),
        ("other_network", r"78 missing keys .* 1 unexpected keys \('fc.weight'\)"),
        ("not_a_dict", r"holds a list, not a state dict"),
        ("not_torch", r"cannot read .* as a PyTorch checkpoint"),
        ("pickled_object", r"Python objects besides tensors"),
    ],
)
def test_bad_checkpoints_give_clear_errors(case, match, tmp_path):
    state = {k: torch.from_numpy(v) for k, v in random_encoder_state_dict(0).items()}
    path = str(tmp_path / "bad.pth")
    if case == "wrong_shape":
        state["5.conv_block.0.weight"] = torch.zeros(64, 64, 3, 1)
        torch.save(state, path)
    elif case == "nan":
        state["1.conv_block.1.bias"] = torch.full((32,), float("nan"))
        torch.save(state, path)
    elif case == "other_network":
        torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    elif case == "not_a_dict":
        torch.save([torch.zeros(1)], path)
    elif case == "not_torch":
        with open(path, "w") as f:
            f.write("not a checkpoint")
    else:
        torch.save({"x": copy.copy(ParameterError("x"))}, path)
    with pytest.raises(ModelError, match=match):
        load_encoder_state_dict(path)
    with pytest.raises(ModelError, match=match):  # and export refuses it, writing nothing
        export_onnx(path, str(tmp_path / "out.onnx"))
    assert sorted(os.listdir(tmp_path)) == ["bad.pth"]


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_encoder_state_dict(str(tmp_path / "nope.pth"))


def test_missing_num_batches_tracked_is_accepted():
    state = {k: v for k, v in random_encoder_state_dict(0).items() if "num_batches" not in k}
    loaded = load_encoder_state_dict(state)
    assert int(loaded["audio_encoder.4.conv_block.1.num_batches_tracked"]) == 0


# ----------------------------------------------------------------------------
# export


def test_make_test_encoder_says_the_weights_are_random(made):
    assert "RANDOM" in made["stdout"] and "tests and demos only" in made["stdout"]
    assert "synctalk-audio export --checkpoint" in made["stdout"]
    meta = {p.key: p.value for p in onnx.load(made["onnx"]).metadata_props}
    assert meta["synctalk_audio.weights"].startswith("RANDOM (seed 0)")
    raw = torch.load(made["pth"], map_location="cpu", weights_only=True)
    assert next(iter(raw)) == "0.conv_block.0.weight"
    assert sorted(os.listdir(made["dir"])) == ["audio_encoder.onnx", "test_encoder.pth"]


def test_exported_model_has_a_dynamic_batch_axis(made):
    model = onnx.load(made["onnx"])
    onnx.checker.check_model(model, full_check=True)

    def dims(value: onnx.ValueInfoProto) -> list[object]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("mel", "features")
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims(inp) == ["batch", 1, 80, 16] and dims(out) == ["batch", 512]
    assert {o.domain: o.version for o in model.opset_import}[""] == 17
    # the project's own loader accepts it
    encoder = AveEncoder(made["onnx"])
    assert encoder.encode(np.zeros((3, 1, 80, 16), np.float32)).shape == (3, 512)


@pytest.mark.parametrize("batch", [1, 2, 7, 64, 100])
def test_onnx_equals_pytorch(batch, made, speech_windows, measure):
    windows = windows_for(batch, speech_windows)
    model = load_audio_encoder(made["pth"])
    session = ort.InferenceSession(made["onnx"], providers=["CPUExecutionProvider"])
    got = session.run(["features"], {"mel": windows})[0]
    with torch.no_grad():
        want32 = model(torch.from_numpy(windows)).numpy()
        want64 = copy.deepcopy(model).double()(torch.from_numpy(windows).double()).numpy()
    d64, d32 = max_abs(got, want64), max_abs(got, want32)
    measure("max_abs_vs_torch_float64", d64)
    measure("max_abs_vs_torch_float32", d32)
    assert got.shape == (batch, 512) and got.dtype == np.float32
    assert d64 <= TOL, f"batch {batch}: ONNX Runtime vs PyTorch float64 {d64:.3e}"
    assert d32 <= TOL, f"batch {batch}: ONNX Runtime vs PyTorch float32 {d32:.3e}"


def test_results_do_not_depend_on_batch_size(made, speech_windows, measure):
    windows = windows_for(64, speech_windows)
    session = ort.InferenceSession(made["onnx"], providers=["CPUExecutionProvider"])
    full = session.run(["features"], {"mel": windows})[0]
    singles = np.concatenate(
        [session.run(["features"], {"mel": windows[i : i + 1]})[0] for i in range(64)]
    )
    sevens = np.concatenate(
        [session.run(["features"], {"mel": windows[i : i + 7]})[0] for i in range(0, 64, 7)]
    )
    model = load_audio_encoder(made["pth"])
    with torch.no_grad():
        t_full = model(torch.from_numpy(windows)).numpy()
        t_singles = np.concatenate(
            [model(torch.from_numpy(windows[i : i + 1])).numpy() for i in range(64)]
        )
    ort_diff = max(max_abs(singles, full), max_abs(sevens, full))
    torch_diff = max_abs(t_singles, t_full)
    measure("onnxruntime_batch1_vs_batch64", ort_diff)
    measure("torch_batch1_vs_batch64", torch_diff)
    assert ort_diff <= 1e-6, f"ONNX Runtime batch 1/7 vs 64: {ort_diff:.3e}"
    assert torch_diff <= TOL, f"PyTorch float32 batch 1 vs 64: {torch_diff:.3e}"


def test_export_report(tmp_path):
    state = random_encoder_state_dict(5)
    pth = save_state_dict_pth(state, tmp_path / "enc.pth")
    target = tmp_path / "enc.onnx"
    report = export_onnx(pth, str(target))
    assert report.onnx_path == str(target) and target.is_file()
    assert report.exporter == "torchscript" and report.checked and report.opset == 17
    assert sorted(report.max_abs_diff) == [1, 7, 64]
    assert report.worst_abs_diff <= TOL
    assert max(report.max_abs_diff_float32.values()) <= TOL
    assert report.batch_max_abs_diff == 0.0
    assert report.file_size == target.stat().st_size > 11_000_000
    assert report.parameters == 2_812_672
    assert report.export_seconds < 60
    assert "ONNX Runtime vs PyTorch float64" in str(report)
    json.dumps(report.as_dict())
    meta = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
    assert meta["synctalk_audio.checkpoint_sha256"] == report.checkpoint_sha256
    assert sorted(os.listdir(tmp_path)) == ["enc.onnx", "enc.pth"]


def test_a_model_that_disagrees_is_not_written(tmp_path, monkeypatch):
    """Export a subtly wrong model (one bias off by 1e-3): the check must refuse it."""
    real = export._EXPORTERS["torchscript"]

    def wrong(model, example, path, opset):
        broken = copy.deepcopy(model)
        with torch.no_grad():
            broken.audio_encoder[12].conv_block[0].bias[7] += 1e-3
        real(broken, example, path, opset)

    monkeypatch.setitem(export._EXPORTERS, "torchscript", wrong)
    target = tmp_path / "enc.onnx"
    target.write_bytes(b"previous model")
    with pytest.raises(ExportCheckError, match="does not match PyTorch .* Nothing was written"):
        export_onnx(random_encoder_state_dict(0), str(target), exporter="torchscript")
    assert target.read_bytes() == b"previous model"
    assert os.listdir(tmp_path) == ["enc.onnx"]


def test_exporter_fallback(tmp_path, monkeypatch):
    def gone(*args, **kwargs):
        raise AttributeError("module 'torch.onnx' has no attribute 'export'")

    monkeypatch.setitem(export._EXPORTERS, "torchscript", gone)
    target = tmp_path / "enc.onnx"
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        with pytest.raises(ExportError, match="torchscript exporter: AttributeError.*onnxscript"):
            export_onnx(random_encoder_state_dict(0), str(target))
        assert os.listdir(tmp_path) == []
    else:
        report = export_onnx(random_encoder_state_dict(0), str(target))
        assert report.exporter == "dynamo" and "fell back" in report.notes[0]
        assert report.worst_abs_diff <= TOL


def test_export_argument_errors(tmp_path):
    state = random_encoder_state_dict(0)
    with pytest.raises(ParameterError, match="does not exist"):
        export_onnx(state, str(tmp_path / "no" / "dir.onnx"))
    with pytest.raises(ParameterError, match="is a directory"):
        export_onnx(state, str(tmp_path))
    with pytest.raises(ParameterError, match="opset"):
        export_onnx(state, str(tmp_path / "x.onnx"), opset=7)
    with pytest.raises(ParameterError, match="tolerance"):
        export_onnx(state, str(tmp_path / "x.onnx"), tolerance=0)
    with pytest.raises(ParameterError, match="exporter"):
        export_onnx(state, str(tmp_path / "x.onnx"), exporter="jit")
    assert os.listdir(tmp_path) == []


def test_cli_export(made, tmp_path):
    target = tmp_path / "cli.onnx"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "synctalk_audio.cli",
            "export",
            "--checkpoint",
            made["pth"],
            "--output",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert target.is_file() and "ONNX Runtime vs PyTorch" in done.stdout
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(1)}, str(bad))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "synctalk_audio.cli",
            "export",
            "--checkpoint",
            str(bad),
            "--output",
            str(tmp_path / "bad.onnx"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "missing keys" in done.stderr
    assert not (tmp_path / "bad.onnx").exists()


# ----------------------------------------------------------------------------
# the upstream reference script


@pytest.fixture(scope="module")
def noise_clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    """1 s of seeded noise at 16 kHz, 16-bit PCM."""
    path = str(tmp_path_factory.mktemp("clip") / "noise_1s.wav")
    rng = np.random.default_rng(11)
    sf.write(path, (rng.standard_normal(16000) * 0.1).clip(-1, 1), 16000, subtype="PCM_16")
    return path


def expected_windows(mel_frames: int, fps: float) -> int:
    return int((mel_frames - 16) / 80.0 * fps) + 2


def check_layout(directory: str, aud_ave: np.ndarray, windows: int) -> None:
    saved = np.load(os.path.join(directory, "aud_ave.npy"))
    assert saved.dtype == np.dtype("<f4") and saved.shape == (windows + 2, 512)
    assert np.array_equal(saved, aud_ave)
    names = sorted(os.listdir(os.path.join(directory, "frames")))
    assert names == [f"frame_{i:05d}.bin" for i in range(windows + 2)]
    for i in (0, 1, 8, windows // 2, windows, windows + 1):
        with open(os.path.join(directory, "frames", names[i]), "rb") as f:
            blob = f.read()
        assert len(blob) == FRAME_FILE_BYTES
        assert int.from_bytes(blob[:4], "little") == 8192
        got = np.frombuffer(blob, "<f4", offset=4)
        rows = [
            saved[j] if 0 <= j < windows + 2 else np.zeros(512, np.float32)
            for j in range(i - 8, i + 8)
        ]
        assert np.array_equal(got, np.stack(rows).ravel()), i


def test_upstream_reference_torch_end_to_end(noise_clip, made, tmp_path):
    result = upstream.compute(noise_clip, engine="torch", checkpoint=made["pth"])
    mel_frames = 1 + 16000 // 200
    windows = expected_windows(mel_frames, 25)
    assert (mel_frames, windows) == (81, 22)
    assert result.mel.shape == (80, mel_frames) and result.mel.dtype == np.float64
    assert result.outputs.shape == (windows, 512) and result.outputs.dtype == np.float32
    assert np.array_equal(result.aud_ave[0], result.aud_ave[1])
    assert np.array_equal(result.aud_ave[-1], result.aud_ave[-2])
    out = str(tmp_path / "ref")
    upstream.write_output(result, out)
    check_layout(out, result.aud_ave, windows)
    meta = read_json(os.path.join(out, "metadata.json"))
    assert meta["counts"] == {"samples": 16000, "mel_frames": 81, "windows": 22, "frames": 24}
    assert (meta["engine"], meta["fps"], meta["pad_mode"]) == ("torch", 25.0, "constant")


def test_upstream_reference_onnx_cli_matches_torch(noise_clip, made, tmp_path, measure):
    out = str(tmp_path / "ref_onnx")
    done = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tests", "reference", "upstream.py"),
            "--audio",
            noise_clip,
            "--engine",
            "onnx",
            "--model",
            made["onnx"],
            "--output",
            out,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    meta = read_json(os.path.join(out, "metadata.json"))
    assert meta["counts"]["frames"] == 24 and meta["engine"] == "onnx"
    assert "torch" not in meta["versions"]
    torch_result = upstream.compute(noise_clip, engine="torch", checkpoint=made["pth"])
    check_layout(out, np.load(os.path.join(out, "aud_ave.npy")), 22)
    diff = max_abs(np.load(os.path.join(out, "aud_ave.npy")), torch_result.aud_ave)
    measure("reference_onnx_vs_torch_max_abs", diff)
    assert diff <= TOL


@pytest.mark.parametrize("fps, pad_mode", [(25, "reflect"), (30, "constant"), (29.97, "constant")])
def test_upstream_reference_counts_and_windows(fps, pad_mode, noise_clip, made):
    result = upstream.compute(
        noise_clip, engine="onnx", model=made["onnx"], fps=fps, pad_mode=pad_mode
    )
    windows = expected_windows(81, fps)
    assert result.outputs.shape == (windows, 512) and result.aud_ave.shape == (windows + 2, 512)
    # the reference's windows are the package's windows
    dataset = upstream.AudDataset(result.mel, fps)
    ours = sa.encoder_windows(result.mel, fps=fps)
    assert np.array_equal(np.stack([dataset[i] for i in range(len(dataset))]), ours)


def test_upstream_reference_refuses_too_short_audio():
    with pytest.raises(ValueError, match="too short"):
        upstream.compute(np.zeros(1600, np.float32), engine="onnx", model="unused.onnx")
