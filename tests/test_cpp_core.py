"""The C++ core builds and passes its own checks with no Python involved.

Configures cpp/ on its own with CMake (the way a port or another host would
use it), builds cpp/tests/core_selftest.cpp and runs it through ctest: FFT
against a direct DFT (1e-12 relative), streaming equal to batch bit for bit,
errors raised as std::invalid_argument.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_core_builds_standalone_and_passes_its_selftest(tmp_path):
    cmake = shutil.which("cmake")
    assert cmake, "cmake is needed to build the C++ core (pip install cmake)"
    build = tmp_path / "build"
    steps = [
        [
            cmake,
            "-S",
            os.path.join(ROOT, "cpp"),
            "-B",
            str(build),
            "-DSYNCTALK_BUILD_CPP_TESTS=ON",
            "-DCMAKE_BUILD_TYPE=Release",
        ],
        [cmake, "--build", str(build), "-j", "2"],
        ["ctest", "--test-dir", str(build), "--output-on-failure"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(step)} failed:\n{done.stdout}\n{done.stderr}"
    done = subprocess.run([str(build / "core_selftest")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "all checks passed" in done.stdout


CORE_HEADERS = ["fft.h", "filterbank.h", "frames.h", "mel.h", "fbank.h", "online.h", "options.h"]


@pytest.mark.parametrize("header", [*CORE_HEADERS, "synctalk.h"])
def test_core_headers_do_not_include_python(header):
    with open(os.path.join(ROOT, "cpp", "include", "synctalk", header), encoding="utf-8") as f:
        text = f.read()
    assert "Python.h" not in text and "pybind11" not in text
