"""Encoder backends: OpenVINO against ONNX Runtime, and a backend added from outside.

Tolerance: OpenVINO (CPU plugin, forced to float32) and ONNX Runtime run the
same float32 model with their own kernels and summation orders, so their
rows differ in the last bits: measured <= 9.3e-6 (hubert, features up to 5.9),
<= 6.2e-6 (wenet, up to 6.7) and <= 6.2e-6 (ave, up to 3.9) on this project's
AVX-512 machine, 2 threads. BACKEND_TOLERANCE 1e-5
holds every golden of every mode. Without the float32 hint OpenVINO computes
in bfloat16 on CPUs with AVX512_BF16 or AMX, some 1e-2 away: the test fails.

The toy backend registers itself from this file (`register_backend`) and runs
the model with ONNX's pure-Python reference evaluator; the command sees it
because it runs in this process (`cli.main`), as it would for a backend
registered by a plugin imported before the command runs. A subprocess
(``python -m synctalk_audio``) would not see it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
import reference_data
from conftest import golden_manifest

from synctalk_audio import cli
from synctalk_audio.encoders import (
    BACKENDS,
    DEFAULT_BACKEND,
    AveEncoder,
    Backend,
    Port,
    WenetEncoder,
    get_backend,
    open_encoder,
    register_backend,
    runtime_versions,
)
from synctalk_audio.errors import ModelError, ParameterError
from synctalk_audio.pipeline import Pipeline

TESTS = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(TESTS, "data")
GOLDEN_MODES = os.path.join(TESTS, "golden", "modes")
with open(os.path.join(GOLDEN_MODES, "manifest.json"), encoding="utf-8") as _f:
    MODES_MANIFEST = json.load(_f)
AVE_CASES = sorted(golden_manifest()["cases"])
MODE_CASES = sorted(MODES_MANIFEST["cases"])
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")
SHORT = os.path.join(DATA, "speech_16k_0p25s.wav")

#: OpenVINO vs ONNX Runtime, max abs difference of any feature value (module docstring).
BACKEND_TOLERANCE = 1e-5
#: The stored goldens' own tolerances (tests/test_hubert.py, tests/test_mode_wenet.py).
GOLDEN_TOLERANCE = {"hubert": 1e-4, "wenet": 3e-4}


def ave_path(case: str) -> str:
    return os.path.join(DATA, golden_manifest()["cases"][case]["file"])


def mode_path(case: str) -> str:
    return os.path.join(TESTS, MODES_MANIFEST["cases"][case]["file"])


@pytest.fixture(scope="module")
def models(mode_models) -> dict[str, str]:
    return mode_models


@pytest.fixture(scope="module")
def pipes(models) -> Iterator[dict[tuple[str, str], Pipeline]]:
    """One Pipeline per (mode, backend), 2 threads each."""
    made = {
        (mode, backend): Pipeline(model, mode=mode, backend=backend, threads=2)
        for mode, model in models.items()
        for backend in ("onnxruntime", "openvino")
    }
    yield made
    for pipe in made.values():
        pipe.close()


def compare(pipes: dict[tuple[str, str], Pipeline], mode: str, path: str) -> np.ndarray:
    """OpenVINO's features of ``path``, after checking them against ONNX Runtime's."""
    ort = pipes[mode, "onnxruntime"].process(path).array
    ov = pipes[mode, "openvino"].process(path).array
    assert ov.shape == ort.shape and ov.dtype == ort.dtype == np.float32
    error = float(np.abs(ov.astype(np.float64) - ort).max())
    assert error <= BACKEND_TOLERANCE, f"{mode} {os.path.basename(path)}: {error:.3g}"
    return ov


# -- OpenVINO equals ONNX Runtime on every golden of every mode -----------------------


@pytest.mark.numeric
@pytest.mark.parametrize("case", AVE_CASES)
def test_openvino_equals_onnxruntime_ave(pipes, case):
    compare(pipes, "ave", ave_path(case))


@pytest.mark.numeric
@pytest.mark.parametrize("mode", ["hubert", "wenet"])
@pytest.mark.parametrize("case", MODE_CASES)
def test_openvino_equals_onnxruntime_and_the_golden(pipes, mode, case):
    facts = MODES_MANIFEST["cases"][case]
    ov = compare(pipes, mode, mode_path(case))
    want = reference_data.load_npz(os.path.join(GOLDEN_MODES, case + ".npz"))[mode]
    ours = ov[..., :: facts[f"{mode}_column_stride"]].astype(np.float64)
    error = float(np.abs(ours - want).max())
    assert error <= GOLDEN_TOLERANCE[mode], f"{mode} {case}: {error:.3g} from the golden"


def test_openvino_compiles_in_float32_with_the_threads_given(models):
    import openvino

    for threads in (1, 2):
        encoder = AveEncoder(models["ave"], backend="openvino", threads=threads)
        compiled = encoder._session.compiled  # type: ignore[attr-defined]
        assert compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32
        assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == threads
    # wenet: one thread per chunk, `threads` chunks at once, one stream each.
    wenet = WenetEncoder(models["wenet"], backend="openvino", threads=2)
    compiled = wenet._session.compiled  # type: ignore[attr-defined]
    assert int(compiled.get_property("NUM_STREAMS")) == 2


def test_openvino_wenet_chunks_at_once_give_the_same_bytes(models):
    arrays = []
    for threads in (1, 2, 3):
        with Pipeline(models["wenet"], mode="wenet", backend="openvino", threads=threads) as p:
            arrays.append(p.process(SPEECH).array)
    assert arrays[1].tobytes() == arrays[0].tobytes() == arrays[2].tobytes()


def test_openvino_refuses_a_model_of_another_kind(models):
    with pytest.raises(ModelError, match="is not a HuBERT model: mode 'hubert' expects"):
        open_encoder("hubert", models["ave"], backend="openvino")
    with pytest.raises(ModelError, match="is not a WeNet encoder"):
        open_encoder("wenet", models["hubert"], backend="openvino")
    with pytest.raises(ModelError, match="is not a SyncTalk_2D AVE audio encoder"):
        open_encoder("ave", models["wenet"], backend="openvino")


def test_openvino_refuses_a_file_that_is_not_a_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=f"cannot load ONNX model {bad} in OpenVINO: "):
        open_encoder("ave", bad, backend="openvino")


def test_openvino_run_failure_is_one_clear_line(models):
    encoder = open_encoder("wenet", models["wenet"], backend="openvino", threads=1)
    encoder._feeds["att_cache"] = np.zeros((1, 2, 3), np.float32)  # type: ignore[attr-defined]
    with pytest.raises(ModelError) as caught:
        encoder.encode(np.zeros((1, 1, 67, 80), np.float32))
    message = str(caught.value)
    assert message.startswith(f"encoder model {models['wenet']} failed in OpenVINO on a batch")
    assert "\n" not in message and "Exception from" not in message


def test_metadata_names_the_backend_and_its_version(models, tmp_path):
    import openvino

    out = tmp_path / "out"
    argv = ["process", "--audio", SPEECH, "--model", models["ave"], "--backend", "openvino"]
    assert cli.main([*argv, "--output", str(out), "-q"]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["model"]["backend"] == meta["settings"]["backend"] == "openvino"
    assert meta["model"]["openvino"] == openvino.__version__.split("-")[0]
    assert meta["model"]["precision"] == "f32"
    assert meta["versions"]["openvino"] == meta["model"]["openvino"]
    assert "onnxruntime" not in meta["versions"]


def test_a_job_redoes_the_items_another_backend_computed(models, tmp_path):
    from synctalk_audio.jobs import run_job

    out = tmp_path / "job"
    inputs = [SPEECH, SHORT]

    def run(backend: str) -> tuple[int, int]:
        summary = run_job(out, inputs, model=models["ave"], backend=backend, workers=1)
        assert summary.ok
        return len(summary.done), summary.skipped

    assert run("openvino") == (2, 0)
    assert run("openvino") == (0, 2)
    assert run("onnxruntime") == (2, 0)
    meta = json.loads((out / "speech_16k_0p25s" / "metadata.json").read_text())
    assert meta["model"]["backend"] == "onnxruntime"


def test_missing_openvino_is_a_clear_error(models, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(ParameterError, match=r"pip install 'synctalk-audio\[openvino\]'"):
        Pipeline(models["ave"], backend="openvino")
    out = tmp_path / "out"
    argv = ["process", "--audio", SPEECH, "--model", models["ave"], "--backend", "openvino"]
    assert cli.main([*argv, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "backend 'openvino' needs the OpenVINO runtime" in err[0], err
    assert not out.exists()


def test_unknown_backend(models, tmp_path, capsys):
    with pytest.raises(ParameterError, match="unknown backend 'tensorrt': expected one of"):
        Pipeline(models["ave"], backend="tensorrt")
    argv = ["process", "--audio", SPEECH, "--model", models["ave"], "--backend", "tensorrt"]
    with pytest.raises(SystemExit) as stopped:
        cli.main([*argv, "--output", str(tmp_path / "out")])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'tensorrt'" in err and "onnxruntime" in err and "openvino" in err


def test_the_default_backend_is_onnxruntime(models):
    assert DEFAULT_BACKEND == "onnxruntime" and get_backend() is BACKENDS["onnxruntime"]
    with Pipeline(models["ave"]) as pipe:
        assert pipe.encoder.describe()["backend"] == "onnxruntime"
    assert set(runtime_versions()) == {"onnxruntime"}


# -- a backend added from outside the package: one class, one registration ---------------

_ONNX_TYPES = {1: "tensor(float)", 7: "tensor(int64)", 11: "tensor(double)"}


class ReferenceSession:
    """A model on ONNX's pure-Python reference evaluator."""

    def __init__(self, path: str) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load(path)
        self.evaluator = ReferenceEvaluator(model)

        def port(value: Any) -> Port:
            tensor = value.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
            return Port(value.name, _ONNX_TYPES.get(tensor.elem_type, "tensor(?)"), dims)

        initialisers = {i.name for i in model.graph.initializer}
        self.inputs = [port(v) for v in model.graph.input if v.name not in initialisers]
        self.outputs = [port(v) for v in model.graph.output]

    def run(self, output: str, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        result: np.ndarray = self.evaluator.run([output], dict(feeds))[0]
        return result


class ToyBackend(Backend):
    """ONNX's reference evaluator as an encoder backend."""

    name = "toy"
    label = "the ONNX reference evaluator"

    def version(self) -> str:
        import onnx

        return str(onnx.__version__)

    def load(
        self, path: str, *, threads: int | None, concurrency: int = 1, prepack: bool = True
    ) -> ReferenceSession:
        try:
            return ReferenceSession(path)
        except Exception as exc:  # onnx raises its own exception types
            raise self.load_error(path, exc) from None


@pytest.fixture
def toy(monkeypatch) -> ToyBackend:
    backend = ToyBackend()
    monkeypatch.setitem(BACKENDS, backend.name, backend)
    assert register_backend(backend) is backend
    return backend


def test_toy_backend_through_the_command(toy, models, tmp_path):
    out = {}
    for backend in ("toy", "onnxruntime"):
        out[backend] = tmp_path / backend
        argv = ["process", "--audio", SHORT, "--model", models["ave"], "--backend", backend]
        assert cli.main([*argv, "--output", str(out[backend]), "-q"]) == 0
    toy_rows = np.load(out["toy"] / "aud_ave.npy")
    ort_rows = np.load(out["onnxruntime"] / "aud_ave.npy")
    assert toy_rows.shape == ort_rows.shape and toy_rows.shape[0] > 2
    assert np.abs(toy_rows.astype(np.float64) - ort_rows).max() <= BACKEND_TOLERANCE
    meta = json.loads((out["toy"] / "metadata.json").read_text())
    assert meta["model"]["backend"] == meta["settings"]["backend"] == "toy"
    assert meta["versions"]["toy"] == meta["model"]["toy"]
    assert len(os.listdir(out["toy"] / "frames")) == toy_rows.shape[0]


def test_toy_backend_checks_the_model_kind(toy, models):
    with pytest.raises(ModelError, match="is not a WeNet encoder"):
        open_encoder("wenet", models["ave"], backend="toy")


def test_register_backend_refuses_what_is_not_a_backend():
    with pytest.raises(ValueError, match="a Backend instance with a name"):
        register_backend(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a Backend instance with a name"):
        register_backend(Backend())


def _signal_stack() -> tuple[int | None, int, int]:
    """This thread's alternate signal stack (``sigaltstack``): address, flags, size."""
    import ctypes

    class StackT(ctypes.Structure):
        _fields_ = [
            ("ss_sp", ctypes.c_void_p),
            ("ss_flags", ctypes.c_int),
            ("ss_size", ctypes.c_size_t),
        ]

    found = StackT()
    assert ctypes.CDLL(None).sigaltstack(None, ctypes.byref(found)) == 0
    return found.ss_sp, found.ss_flags, found.ss_size


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack is read on Linux")
def test_openvino_leaves_the_threads_signal_stack_as_it_was(models):
    """Compiling installs OpenVINO's own alternate signal stack; a later teardown frees it.

    Were it left on the thread, the next signal handled there (SIGTERM, Ctrl-C)
    would run on freed memory and crash the process: seen with two encoders
    released in the order they were made.
    """
    import gc

    before = _signal_stack()
    windows = np.zeros((2, 1, 80, 16), np.float32)
    first = AveEncoder(models["ave"], backend="openvino", threads=1)
    second = AveEncoder(models["ave"], backend="openvino", threads=1)
    first.encode(windows)
    second.encode(windows)
    assert _signal_stack() == before
    del first
    gc.collect()
    assert _signal_stack() == before
    del second
    gc.collect()
    assert _signal_stack() == before
