"""The port kit: ``synctalk-audio vectors`` and ``synctalk-audio conform``.

tests/vectors_modes/<mode>/ were written by ``synctalk-audio vectors`` from
tests/data/speech_16k_0p25s.wav with the generated test models (fixtures
test_encoder, hubert_onnx, wenet_model; hubert and wenet with --half-window 4):

    synctalk-audio vectors --mode ave --model audio_encoder.onnx \\
        --audio tests/data/speech_16k_0p25s.wav --output tests/vectors_modes/ave

A fresh run must conform to them stage by stage (the models' bytes and
NumPy's kernels vary by CPU in the last bits; the tolerances are the port's).
conform's verdicts: the reference itself passes; one element of one stage
moved by ten times its tolerance fails at exactly that stage; the C++ core
(another route) passes at parity; a float32 front end fails at parity from the
pre-emphasis on and passes the float32 tier.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings

import numpy as np
import pytest
import reference_data

from synctalk_audio import cli, encoder_windows, load_audio, melspectrogram
from synctalk_audio.porting import conform
from synctalk_audio.porting.conform import ConformError

pytestmark = pytest.mark.numeric

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
VECTORS = os.path.join(TESTS, "vectors_modes")
AUDIO = os.path.join(TESTS, "data", "speech_16k_0p25s.wav")
MODES = ("ave", "hubert", "wenet")


def index_of(mode: str) -> dict:
    path = os.path.join(VECTORS, mode)
    reference_data.reading(path)
    with open(os.path.join(path, "index.json"), encoding="utf-8") as f:
        return json.load(f)


def copy_reference(mode: str, target: str) -> str:
    src = os.path.join(VECTORS, mode)
    reference_data.reading(src)
    shutil.copytree(src, target)
    os.remove(os.path.join(target, "index.json"))
    return target


@pytest.fixture
def models(mode_models) -> dict[str, str]:
    return mode_models


# ----------------------------------------------------------------------------
# the index


@pytest.mark.parametrize("mode", MODES)
def test_index_names_every_stage_with_shape_dtype_formula_and_tolerance(mode):
    index = index_of(mode)
    assert index["format"] == "synctalk-port-vectors/1" and index["mode"] == mode
    names = [s["name"] for s in index["stages"]]
    assert names[0] == "samples" and names[-1] == "frames"
    feature = {"ave": "aud_ave", "hubert": "aud_hu", "wenet": "aud_wenet"}[mode]
    assert feature in names
    for entry in index["stages"]:
        array = np.load(os.path.join(VECTORS, mode, entry["file"]), allow_pickle=False)
        assert list(array.shape) == entry["shape"] and array.dtype.name == entry["dtype"]
        assert entry["formula"] and entry["upstream"]
        assert entry["tolerance"]["abs"] >= 0 and entry["tolerance"]["rule"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_a_fresh_run_of_the_command_conforms_to_the_committed_vectors(mode, models, tmp_path):
    out = tmp_path / mode
    argv = ["vectors", "-q", "--mode", mode, "--model", models[mode], "--audio", AUDIO]
    argv += ["--output", str(out)]
    if mode != "ave":
        argv += ["--half-window", "4"]
    assert cli.main(argv) == 0
    result = conform(os.path.join(VECTORS, mode), str(out))
    assert result.passed, result.table()
    assert len(result.compared) == len(index_of(mode)["stages"])


# ----------------------------------------------------------------------------
# conform's verdicts


@pytest.mark.parametrize("mode", MODES)
def test_the_reference_itself_passes(mode, tmp_path, capsys):
    candidate = copy_reference(mode, str(tmp_path / "c"))
    status = cli.main(["conform", os.path.join(VECTORS, mode), candidate])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASS: all" in out and "FAIL" not in out


def _stage_cases() -> list[tuple[str, int]]:
    return [(mode, i) for mode in MODES for i in range(len(index_of(mode)["stages"]))]


@pytest.mark.parametrize(("mode", "position"), _stage_cases())
def test_one_element_moved_by_ten_tolerances_fails_at_exactly_that_stage(
    mode, position, tmp_path, capsys
):
    entry = index_of(mode)["stages"][position]
    candidate = copy_reference(mode, str(tmp_path / "c"))
    path = os.path.join(candidate, entry["file"])
    array = np.load(path)
    where = array.size // 2
    tol = entry["tolerance"]["abs"]
    step = 10 * tol if tol > 0 else 1
    flat = array.reshape(-1)
    moved = flat[where] + np.array(step).astype(array.dtype)
    if moved == flat[where]:  # below the value's own ulp: move it by 10 of those
        moved = flat[where] + 10 * np.spacing(flat[where])
    flat[where] = moved
    np.save(path, array)
    status = cli.main(["conform", os.path.join(VECTORS, mode), candidate])
    out = capsys.readouterr().out
    assert status == 1, out
    result = conform(os.path.join(VECTORS, mode), candidate)
    failed = [s.stage for s in result.stages if s.status == "FAIL"]
    assert failed == [entry["name"]], out
    assert f"first departs at stage '{entry['name']}'" in out
    assert result.first_failure.where == np.unravel_index(where, array.shape)


def test_a_port_may_dump_only_some_stages(tmp_path):
    candidate = copy_reference("ave", str(tmp_path / "c"))
    for name in os.listdir(candidate):
        if not name.endswith(("_normalized.npy", "_aud_ave.npy")):
            os.remove(os.path.join(candidate, name))
    os.rename(
        os.path.join(candidate, "07_normalized.npy"), os.path.join(candidate, "normalized.npy")
    )
    np.save(os.path.join(candidate, "melspec.npy"), np.zeros(3))
    result = conform(os.path.join(VECTORS, "ave"), candidate)
    assert result.passed
    assert [s.stage for s in result.compared] == ["normalized", "aud_ave"]
    assert "not dumped" in result.table()
    assert result.unmatched == ["melspec.npy"]
    assert "not compared (no stage of that name in the reference): melspec.npy" in result.table()


def test_a_mis_shaped_stage_fails_and_says_both_shapes(tmp_path, capsys):
    candidate = copy_reference("ave", str(tmp_path / "c"))
    path = os.path.join(candidate, "07_normalized.npy")
    np.save(path, np.load(path).T)  # (80, T): the package's layout, not the vectors'
    status = cli.main(["conform", os.path.join(VECTORS, "ave"), candidate])
    out = capsys.readouterr().out
    assert status == 1
    assert "first departs at stage 'normalized'" in out
    assert "shape [80, 21], the reference's is [21, 80]" in out


def test_a_file_that_is_not_npy_fails_that_stage(tmp_path):
    candidate = copy_reference("ave", str(tmp_path / "c"))
    with open(os.path.join(candidate, "05_mel.npy"), "wb") as f:
        f.write(b"not an array")
    result = conform(os.path.join(VECTORS, "ave"), candidate)
    assert result.first_failure.stage == "mel"
    assert "cannot read it as a .npy file" in result.first_failure.detail


def test_nan_in_a_stage_fails_it(tmp_path):
    candidate = copy_reference("hubert", str(tmp_path / "c"))
    path = os.path.join(candidate, "05_aud_hu.npy")
    array = np.load(path)
    array[0, 0, 0] = np.nan
    np.save(path, array)
    result = conform(os.path.join(VECTORS, "hubert"), candidate)
    assert [s.stage for s in result.stages if s.status == "FAIL"] == ["aud_hu"]
    assert result.first_failure.max_abs == np.inf


def test_an_empty_candidate_or_a_missing_reference_is_a_usage_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["conform", os.path.join(VECTORS, "ave"), str(empty)]) == 2
    err = capsys.readouterr().err
    assert "holds none of the reference's stages" in err and "00_samples.npy" in err
    assert cli.main(["conform", str(empty), str(empty)]) == 2
    assert "has no index.json: not a vectors directory" in capsys.readouterr().err
    assert cli.main(["conform", str(tmp_path / "nowhere"), str(empty)]) == 2
    assert "reference directory not found" in capsys.readouterr().err
    with pytest.raises(ConformError, match="lacks .*03_window.npy"):
        broken = shutil.copytree(os.path.join(VECTORS, "ave"), tmp_path / "broken")
        os.remove(broken / "03_window.npy")
        conform(str(broken), os.path.join(VECTORS, "ave"))


# ----------------------------------------------------------------------------
# candidates computed by other routes


def test_the_cpp_core_conforms_at_parity(test_encoder, tmp_path):
    """The package's C++ front end and its pipeline's output, dumped as a port would."""
    candidate = tmp_path / "core"
    candidate.mkdir()
    samples = load_audio(AUDIO)
    mel = melspectrogram(samples, dtype=np.float64)  # (80, T)
    np.save(candidate / "samples.npy", samples)
    np.save(candidate / "normalized.npy", mel.T)
    np.save(candidate / "encoder_windows.npy", encoder_windows(mel, fps=25.0))
    out = tmp_path / "out"
    argv = ["process", "--audio", AUDIO, "--model", test_encoder.onnx, "--output", str(out), "-q"]
    assert cli.main(argv) == 0
    aud = np.load(out / "aud_ave.npy")
    np.save(candidate / "aud_ave.npy", aud)
    frames = sorted(os.listdir(out / "frames"))
    stack = [np.fromfile(out / "frames" / f, dtype="<f4", offset=4) for f in frames]
    np.save(candidate / "frames.npy", np.stack(stack).reshape(-1, 32, 16, 16))
    result = conform(os.path.join(VECTORS, "ave"), str(candidate))
    assert result.passed, result.table()
    assert [s.stage for s in result.compared] == [
        "samples",
        "normalized",
        "encoder_windows",
        "aud_ave",
        "frames",
    ]


def test_a_float32_front_end_departs_at_the_preemphasis_and_meets_the_float32_tier(
    test_encoder, tmp_path
):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import float32_port

    candidate = str(tmp_path / "f32")
    float32_port.dump(AUDIO, test_encoder.onnx, candidate)
    reference = os.path.join(VECTORS, "ave")
    parity = conform(reference, candidate)
    verdicts = {s.stage: s.status for s in parity.stages}
    assert verdicts["samples"] == "pass"
    assert parity.first_failure.stage == "preemphasis", parity.table()
    for stage in ("stft_frames", "magnitude", "mel", "db", "normalized", "encoder_windows"):
        assert verdicts[stage] == "FAIL", parity.table()
    # this short clip moves aud_ave by 1.8e-6: within the parity bound (speech_24k: 1.05e-5)
    assert verdicts["aud_ave"] == "pass", parity.table()
    budget = conform(reference, candidate, tier="float32")
    assert budget.passed, budget.table()


def test_upstreams_float32_fbank_departs_at_the_fbank_and_meets_the_float32_tier(
    wenet_model, tmp_path
):
    """Upstream's own wenet path (torchaudio's float32 fbank) as a port's dumps."""
    from reference import ultralight

    candidate = tmp_path / "upstream"
    candidate.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # audioread imports aifc
        speech, _ = ultralight.read_first_channel_16k(AUDIO)
    fbank = ultralight.wenet_fbank(speech)  # float32, as upstream computes it
    chunks = np.concatenate(list(ultralight.wenet_chunks(fbank)))[:, 0]
    np.save(candidate / "padded.npy", ultralight.wenet_waveform(speech))
    np.save(candidate / "fbank.npy", fbank)
    np.save(candidate / "chunks.npy", chunks)
    np.save(candidate / "aud_wenet.npy", ultralight.wenet_features(AUDIO, wenet_model))
    reference = os.path.join(VECTORS, "wenet")
    parity = conform(reference, str(candidate))
    verdicts = {s.stage: s.status for s in parity.compared}
    assert verdicts == {"padded": "pass", "fbank": "FAIL", "chunks": "FAIL", "aud_wenet": "pass"}
    assert parity.first_failure.stage == "fbank", parity.table()
    budget = conform(reference, str(candidate), tier="float32")
    assert budget.passed, budget.table()


@pytest.mark.parametrize(
    ("mode", "feature"), [("hubert", "aud_hu"), ("wenet", "aud_wenet")], ids=["hubert", "wenet"]
)
def test_the_package_output_of_hubert_and_wenet_conforms_at_parity(models, mode, feature, tmp_path):
    """``process`` (the C++ front ends, the package's encoders) dumped as a port would."""
    out = tmp_path / "out"
    argv = ["process", "--mode", mode, "--audio", AUDIO, "--model", models[mode]]
    argv += ["--output", str(out), "--half-window", "4", "-q"]
    assert cli.main(argv) == 0
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    features = np.load(out / f"{feature}.npy")
    np.save(candidate / f"{feature}.npy", features)
    names = sorted(os.listdir(out / "frames"))
    stack = [np.fromfile(out / "frames" / name, dtype="<f4", offset=4) for name in names]
    shape = index_of(mode)["stages"][-1]["shape"]
    np.save(candidate / "frames.npy", np.stack(stack).reshape(shape))
    if mode == "wenet":
        from synctalk_audio.frontends.fbank import kaldi_fbank

        padded = np.load(os.path.join(VECTORS, "wenet", "02_padded.npy"))
        np.save(candidate / "fbank.npy", kaldi_fbank(padded, dtype=np.float64))
    result = conform(os.path.join(VECTORS, mode), str(candidate))
    assert result.passed, result.table()
    assert len(result.compared) == (3 if mode == "wenet" else 2)


def test_vectors_names_a_model_of_another_mode_and_a_file_that_is_not_audio(
    models, tmp_path, capsys
):
    out = str(tmp_path / "out")
    argv = ["vectors", "--mode", "ave", "--model", models["wenet"], "--audio", AUDIO]
    assert cli.main([*argv, "--output", out]) == 2
    err = capsys.readouterr().err
    assert "is not a model of mode 'ave': its inputs are chunk (rank 4)" in err
    readme = os.path.join(ROOT, "README.md")
    argv = ["vectors", "--mode", "hubert", "--model", models["hubert"], "--audio", readme]
    assert cli.main([*argv, "--output", out]) == 2
    assert "cannot decode" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------
# the committed mel and fbank vectors (tools/make_stage_vectors.py,
# tools/make_fbank_vectors.py) and the command's reference path agree


def test_the_command_reproduces_the_committed_mel_vectors(test_encoder, tmp_path):
    import soundfile as sf

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import make_stage_vectors

    mel_vectors = os.path.join(TESTS, "vectors")
    reference_data.reading(mel_vectors)
    with open(os.path.join(mel_vectors, "index.json"), encoding="utf-8") as f:
        clips = {clip["name"]: clip for clip in json.load(f)["clips"]}
    same = {
        "preemphasis": "preemphasis",
        "stft_frames": "frames",
        "magnitude": "magnitude",
        "mel": "mel",
        "db": "db",
        "normalized": "normalized",
    }
    for name, (make, _doc) in make_stage_vectors.CLIPS.items():
        audio = str(tmp_path / f"{name}.wav")
        sf.write(audio, make(), 16000, subtype="FLOAT")
        out = tmp_path / name
        argv = ["vectors", "-q", "--model", test_encoder.onnx, "--audio", audio]
        assert cli.main([*argv, "--output", str(out)]) == 0
        index = {s["name"]: s for s in json.loads((out / "index.json").read_text())["stages"]}
        for stage, stored in same.items():
            entry = clips[name]["stages"][stored]
            want = np.load(os.path.join(mel_vectors, entry["file"]))
            got = np.load(out / index[stage]["file"])
            if entry["frames"] != "all":
                got = got[entry["frames"]]
            err = float(np.max(np.abs(got - want)))
            assert err <= entry["tolerance"]["abs"], (name, stage, err)


def test_the_commands_fbank_is_the_committed_fbank_vectors():
    from synctalk_audio.porting.reference import kaldi_fbank, torchaudio_mel_banks

    fbank_vectors = os.path.join(TESTS, "vectors_fbank")
    with open(os.path.join(fbank_vectors, "index.json"), encoding="utf-8") as f:
        files = json.load(f)["files"]
    wave = reference_data.load_npy(os.path.join(fbank_vectors, files["input"]["file"]))
    banks = reference_data.load_npy(os.path.join(fbank_vectors, files["banks"]["file"]))
    assert np.array_equal(torchaudio_mel_banks(), banks)
    want = reference_data.load_npy(os.path.join(fbank_vectors, files["log"]["file"]))
    assert np.max(np.abs(kaldi_fbank(wave) - want)) <= files["log"]["tolerance"]["abs"]
