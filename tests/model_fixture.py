"""The random-weight test encoder, made once per test session.

`models/make_test_encoder.py` writes a seeded random SyncTalk_2D checkpoint
(.pth, randomised BatchNorm statistics) and exports it to ONNX through
`synctalk-audio export`, which checks ONNX Runtime against PyTorch. Tests get
both files: the ONNX model for the package, the .pth for the upstream
PyTorch reference path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class TestEncoder:
    onnx: str
    pth: str


@pytest.fixture(scope="session")
def test_encoder(tmp_path_factory: pytest.TempPathFactory) -> TestEncoder:
    folder = tmp_path_factory.mktemp("encoder")
    onnx_path, pth_path = str(folder / "audio_encoder.onnx"), str(folder / "test_encoder.pth")
    subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "models", "make_test_encoder.py"),
            "--seed",
            "0",
            "--out",
            onnx_path,
            "--pth",
            pth_path,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return TestEncoder(onnx=onnx_path, pth=pth_path)
