"""The generated test models, made once and checked by what they compute.

Fixtures (registered for every test by tests/conftest.py):

- ``test_encoder``: `models/make_test_encoder.py` writes a seeded random
  SyncTalk_2D checkpoint (.pth, randomised BatchNorm statistics) and exports
  it to ONNX through `synctalk-audio export`, which checks ONNX Runtime
  against PyTorch. Tests get both files: the ONNX model for the package, the
  .pth for the upstream PyTorch reference path.
- ``wenet_model``: `models/make_test_wenet.py` (seed 0), the stand-in WeNet
  encoder the goldens of tests/golden/modes were made with.
- ``hubert_checkpoint`` and ``hubert_onnx``: `models/make_test_hubert.py`
  (seed 0) and its export by `export_hubert`.

Where they are made: in the session's temporary folder, or, when the
environment variable ``SYNCTALK_TEST_MODELS`` names a folder, there, where
the next run finds and reuses them. A model is reused only if it was made
from the same generator and export code (their source files' SHA-256, which
are this project's own bytes) with the same arguments and the same PyTorch,
ONNX and transformers versions. tools/on_cpu.py relies on it: the models are
made once natively, and the suite then runs under emulated CPUs, where the
PyTorch export would take the better part of an hour.

Whether a WeNet or HuBERT model is the one the goldens expect is checked by
its behaviour, not its bytes (tests/model_probes.py): the bytes depend on the
CPU that ran the generator.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

import model_probes
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_ENV = "SYNCTALK_TEST_MODELS"
EXPORT_SOURCES = [
    os.path.join(ROOT, "src", "synctalk_audio", "export", name)
    for name in ("__init__.py", "common.py", "ave.py", "hubert.py")
] + [os.path.join(ROOT, "src", "synctalk_audio", "testing.py")]

with open(os.path.join(ROOT, "tests", "golden", "modes", "manifest.json"), encoding="utf-8") as _f:
    MODES_MANIFEST = json.load(_f)


@dataclass(frozen=True)
class TestEncoder:
    onnx: str
    pth: str


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def _key(argv: Sequence[str], sources: Sequence[str]) -> str:
    """What a cached model was made from: code, arguments and the libraries that wrote it."""
    digest = hashlib.sha256()
    for path in sources:
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    facts = [list(argv), *(_version(n) for n in ("torch", "onnx", "transformers", "safetensors"))]
    digest.update(json.dumps(facts).encode())
    return digest.hexdigest()


def _models_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = os.environ.get(MODELS_ENV)
    if folder:
        os.makedirs(folder, exist_ok=True)
        return folder
    return str(tmp_path_factory.getbasetemp() / "models")


def made(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    argv: Sequence[str],
    sources: Sequence[str],
    make: Callable[[str], None],
) -> str:
    """The folder ``<models>/<name>``, made by ``make(folder)`` unless a matching one exists."""
    root = _models_dir(tmp_path_factory)
    folder = os.path.join(root, name)
    stamp = os.path.join(root, name + ".key")
    key = _key(argv, sources)
    if os.path.isdir(folder) and os.path.isfile(stamp):
        with open(stamp, encoding="utf-8") as f:
            if f.read().strip() == key:
                return folder
    if os.path.lexists(folder):
        # Replace only what this module made (its stamp beside it), never a user's folder.
        if not os.path.isfile(stamp):
            pytest.fail(f"{folder} exists and was not made by the test fixtures: move it away")
        shutil.rmtree(folder)
    staging = folder + ".making"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    make(staging)
    os.replace(staging, folder)
    with open(stamp, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    return folder


def _run_script(script: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "models", script), *args],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"models/{script} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


@pytest.fixture(scope="session")
def test_encoder(tmp_path_factory: pytest.TempPathFactory) -> TestEncoder:
    """The seeded random AVE encoder: ONNX for the package, .pth for the upstream path."""
    argv = ["--seed", "0"]
    folder = made(
        tmp_path_factory,
        "ave",
        argv,
        [os.path.join(ROOT, "models", "make_test_encoder.py"), *EXPORT_SOURCES],
        lambda out: _run_script(
            "make_test_encoder.py",
            *argv,
            "--out",
            os.path.join(out, "audio_encoder.onnx"),
            "--pth",
            os.path.join(out, "test_encoder.pth"),
        ),
    )
    return TestEncoder(
        onnx=os.path.join(folder, "audio_encoder.onnx"),
        pth=os.path.join(folder, "test_encoder.pth"),
    )


@pytest.fixture(scope="session")
def wenet_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny WeNet stand-in (seed 0), checked against the goldens' by its output."""
    argv = ["--seed", "0", "--size", "tiny"]
    folder = made(
        tmp_path_factory,
        "wenet",
        argv,
        [os.path.join(ROOT, "models", "make_test_wenet.py")],
        lambda out: _run_script(
            "make_test_wenet.py", *argv, "--out", os.path.join(out, "encoder.onnx"), "-q"
        ),
    )
    path = os.path.join(folder, "encoder.onnx")
    model_probes.check("wenet", path, MODES_MANIFEST)
    return path


@pytest.fixture(scope="session")
def hubert_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny HuBERT checkpoint (seed 0), checked against the goldens' by its weights."""
    try:
        import safetensors  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        pytest.fail("the hubert tests need transformers and safetensors: pip install '.[test]'")
    argv = ["--seed", "0", "--size", "tiny", "--arch", "ctc"]
    folder = made(
        tmp_path_factory,
        "hubert",
        argv,
        [os.path.join(ROOT, "models", "make_test_hubert.py")],
        lambda out: _run_script(
            "make_test_hubert.py", *argv, "--out", os.path.join(out, "checkpoint"), "-q"
        ),
    )
    path = os.path.join(folder, "checkpoint")
    model_probes.check("hubert", path, MODES_MANIFEST)
    return path


@pytest.fixture(scope="session")
def hubert_onnx(hubert_checkpoint: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``hubert_checkpoint`` exported by `export_hubert` (checked against PyTorch by it)."""
    from synctalk_audio.export.hubert import export_hubert

    folder = made(
        tmp_path_factory,
        "hubert_onnx",
        ["--seed", "0", "--size", "tiny", "--arch", "ctc"],
        [os.path.join(ROOT, "models", "make_test_hubert.py"), *EXPORT_SOURCES],
        lambda out: export_hubert(hubert_checkpoint, os.path.join(out, "hubert.onnx")),
    )
    return os.path.join(folder, "hubert.onnx")


@pytest.fixture(scope="session")
def mode_models(test_encoder: TestEncoder, hubert_onnx: str, wenet_model: str) -> dict[str, str]:
    """Each mode's generated model file, by mode name.

    Its fixtures are requested by name (not by ``getfixturevalue``), so the
    tests using it are marked ``model`` like the others (conftest).
    """
    return {"ave": test_encoder.onnx, "hubert": hubert_onnx, "wenet": wenet_model}
