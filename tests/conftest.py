"""Shared fixtures: the golden cases of tests/golden/manifest.json.

A test that takes a ``golden_case`` argument runs once per golden case, with
the case name as its id (``test_load_path_str[speech_24k]``). The golden data comes
from the real reference (librosa 0.11.0); see tests/golden/make_golden.py.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import reference_data

# When a hypothesis test fails, its pytest plugin imports its patch writer
# (libcst), which raises a DeprecationWarning inside mypy_extensions; under
# this project's filterwarnings = error that turns the failure report into an
# INTERNALERROR. Import it once here with that warning ignored.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # libcst not installed: nothing to guard against
        pass

# The generated test models, one session fixture each, for every test module.
from model_fixture import (  # noqa: E402,F401
    hubert_checkpoint,
    hubert_onnx,
    mode_models,
    test_encoder,
    wenet_model,
)

TESTS = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(TESTS, "data")
GOLDEN_DIR = os.path.join(TESTS, "golden")


@functools.lru_cache(maxsize=1)
def golden_manifest() -> dict[str, Any]:
    with open(os.path.join(GOLDEN_DIR, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class GoldenCase:
    """One input file and what the reference computed from it."""

    name: str
    facts: dict[str, Any]

    @property
    def path(self) -> str:
        return os.path.join(DATA_DIR, self.facts["file"])

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The reference's arrays (only for tests marked ``numeric``: tests/reference_data.py)."""
        reference_data.reading(self._golden_path)
        return self._arrays

    @property
    def _golden_path(self) -> str:
        return os.path.join(GOLDEN_DIR, self.facts["golden"])

    @functools.cached_property
    def _arrays(self) -> dict[str, np.ndarray]:
        with np.load(self._golden_path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}

    @property
    def samples(self) -> np.ndarray:
        """The decoded input as stored: for tests that use it as input (unguarded).

        A test comparing with it must be marked ``numeric`` (read ``arrays``).
        """
        return self._arrays["samples"]

    def mel(self, pad_mode: str) -> np.ndarray:
        """The reference mel (80, T), float64, for ``pad_mode``."""
        mel = self.arrays["mel_constant"]
        if pad_mode == "constant":
            return mel
        assert pad_mode == "reflect", pad_mode
        edge = golden_manifest()["edge_frames"]
        mel = mel.copy()
        mel[:, :edge] = self.arrays["mel_reflect_head"]
        mel[:, mel.shape[1] - edge :] = self.arrays["mel_reflect_tail"]
        return mel

    def starts(self, fps_key: str) -> np.ndarray:
        return self.arrays[f"starts_fps{fps_key}"]


@functools.cache
def _case(name: str) -> GoldenCase:
    return GoldenCase(name, golden_manifest()["cases"][name])


#: Tests using one of these fixtures run a generated test model in ONNX Runtime
#: (one that asks for it with request.getfixturevalue must carry the mark itself).
#: They are marked ``model``: QEMU emulates AVX2 + FMA code some 2000 times slower
#: than the host runs it, so the emulated AVX2 CPUs of .ci/run leave them out
#: (docs/NUMERICS.md, "Tests on any CPU"); the emulated Nehalem runs them.
MODEL_FIXTURES = frozenset({"test_encoder", "wenet_model", "hubert_checkpoint", "hubert_onnx"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Any:
    """Tell tests/reference_data.py which test is running, for its ``numeric`` guard."""
    with reference_data.running(item):
        return (yield)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "golden_case" in metafunc.fixturenames:
        names = sorted(golden_manifest()["cases"])
        metafunc.parametrize("golden_case", [_case(n) for n in names], ids=names)


# ----------------------------------------------------------------------------
# which SIMD code NumPy dispatches to in this run (.ci/run narrows it)


def _cpu() -> str:
    """The host CPU's model name (Linux), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def numpy_simd() -> dict[str, list[str]]:
    """NumPy's baseline SIMD targets and the dispatched targets enabled in this
    process (found on this CPU and not turned off by NPY_DISABLE_CPU_FEATURES)."""
    try:
        from numpy._core import _multiarray_umath as umath  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core import _multiarray_umath as umath  # type: ignore[no-redef]
    features: dict[str, bool] = umath.__cpu_features__
    return {
        "baseline": list(umath.__cpu_baseline__),
        "enabled": [t for t in umath.__cpu_dispatch__ if features.get(t)],
    }


def pytest_report_header() -> list[str]:
    simd = numpy_simd()
    disabled = os.environ.get("NPY_DISABLE_CPU_FEATURES", "").strip()
    emulated = os.environ.get("SYNCTALK_EMULATED_CPU")
    return [
        f"CPU: {emulated} emulated by QEMU (tools/on_cpu.py)" if emulated else f"CPU: {_cpu()}",
        f"numpy {np.__version__} SIMD: baseline {' '.join(simd['baseline']) or '-'};"
        f" dispatched targets enabled: {' '.join(simd['enabled']) or 'none (baseline only)'}"
        + (f" (NPY_DISABLE_CPU_FEATURES={disabled!r})" if disabled else ""),
    ]


# ----------------------------------------------------------------------------
# the per-case max abs mel error, printed at the end of the run

_MEL_ERRORS: dict[str, dict[str, float]] = {}


@pytest.fixture
def record_mel_error(record_property: Any) -> Any:
    """``record(case, pad_mode, dtype, max_abs_error)`` for the summary table."""

    def record(case: str, pad_mode: str, dtype: str, error: float) -> None:
        _MEL_ERRORS.setdefault(case, {})[f"{pad_mode}/{dtype}"] = error
        record_property(f"mel_max_abs_error[{pad_mode}/{dtype}]", error)

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _MEL_ERRORS:
        return
    columns = [f"{p}/{d}" for p in ("constant", "reflect") for d in ("float32", "float64")]
    width = max(len(name) for name in _MEL_ERRORS)
    terminalreporter.write_sep("=", "golden mel max abs error (tolerance 1e-6 f32, 1e-9 f64)")
    terminalreporter.write_line(" ".join([f"{'case':{width}s}"] + [f"{c:>17s}" for c in columns]))
    for name in sorted(_MEL_ERRORS):
        row = _MEL_ERRORS[name]
        cells = [f"{row[c]:17.3e}" if c in row else f"{'-':>17s}" for c in columns]
        terminalreporter.write_line(" ".join([f"{name:{width}s}"] + cells))


# ----------------------------------------------------------------------------
# the command's debug switch: an unexpected exception shows its traceback


@pytest.fixture(autouse=True)
def _command_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test with SYNCTALK_AUDIO_DEBUG=1 (inherited by subprocesses).

    For users the command turns an unexpected exception into one line; under
    the test suite a bug must fail with its traceback instead.
    """
    monkeypatch.setenv("SYNCTALK_AUDIO_DEBUG", "1")


@pytest.fixture
def small_tmpfs(tmp_path: Any) -> Any:
    """A 1 MiB tmpfs (needs root); the test is skipped where it cannot be mounted."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command on PATH")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield str(mount)
    finally:
        subprocess.run(["umount", str(mount)], check=True)
