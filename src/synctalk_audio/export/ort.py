"""An exported ONNX model → ONNX Runtime's ORT format, checked against the ONNX file.

The ORT format is what ONNX Runtime Mobile loads (``onnxruntime-objc``,
``onnxruntime-c``, and the reduced-size builds, which contain only the
operators a model needs). `convert_to_ort` runs
``python -m onnxruntime.tools.convert_onnx_models_to_ort`` with the
``Runtime`` optimization style (basic optimizations applied and saved; the
platform-specific ones left to the runtime, as ONNX Runtime advises for
models that may run under the Core ML execution provider and for a model
built on one CPU and run on another), writes ``NAME.ort`` and, beside it,
``NAME.required_operators.config``: the operator list to pass to a minimal
build (``build.sh --minimal_build --include_ops_by_config FILE``).

Before anything is written, the ``.ort`` file is run in ONNX Runtime on the
check inputs and compared with the ``.onnx`` file run at the optimization
level the conversion applied (``ORT_ENABLE_BASIC``): the difference must be
0, since both are the same graph on the same kernels. The difference to the
``.onnx`` at ONNX Runtime's default level (``ORT_ENABLE_ALL``: extended fusions
such as LayerNorm and GELU for hubert, and on x86 a blocked-layout
convolution for ave, which an ORT-format model does not get) is reported too:
that one is rounding (measured 2.5e-6 to 4.6e-6).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..encoders import file_sha256
from .common import ExportCheckError, ExportError

__all__ = ["OrtReport", "convert_to_ort", "operators_config_path", "ort_check_feeds"]

#: The optimization style of the conversion.
OPTIMIZATION_STYLE = "Runtime"


@dataclass
class OrtReport:
    """What `convert_to_ort` wrote and measured.

    Attributes
    ----------
    ort_path, config_path : str
        The ORT-format model and its required-operators config.
    sha256 : str
        SHA-256 of the ``.ort`` file.
    file_size : int
        Its size in bytes.
    operators : list of str
        The config's operator lines (``domain;opset;op,op``).
    max_abs_diff : dict[str, float]
        Check input → max abs difference .ort vs .onnx at the same
        optimization level (0 required).
    max_abs_diff_default : dict[str, float]
        The same vs the .onnx at ONNX Runtime's default level.
    seconds : float
        Wall time of the conversion and check.
    versions : dict[str, str]
        onnxruntime.
    """

    ort_path: str
    config_path: str
    sha256: str
    file_size: int
    operators: list[str] = field(default_factory=list)
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    max_abs_diff_default: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        same = ", ".join(f"{k}: {v:.1e}" for k, v in self.max_abs_diff.items())
        default = ", ".join(f"{k}: {v:.1e}" for k, v in self.max_abs_diff_default.items())
        return "\n".join(
            [
                f"converted to ORT format -> {self.ort_path}",
                f"  {self.file_size / 1e6:.2f} MB, sha256 {self.sha256}, optimization style"
                f" {OPTIMIZATION_STYLE}, onnxruntime {self.versions.get('onnxruntime', '?')}",
                f"  operators for a minimal build -> {self.config_path}: "
                + "; ".join(self.operators),
                f"  .ort vs .onnx in ONNX Runtime (both at the conversion's level, basic), max abs"
                f" diff: {same} (0 required): OK",
                f"  .ort vs .onnx at ONNX Runtime's default level: {default} (fusions and layouts"
                " an ORT-format model does not get: rounding)",
                f"  ({self.seconds:.2f} s)",
            ]
        )


def operators_config_path(ort_path: str) -> str:
    """``NAME.required_operators.config`` beside ``NAME.ort``."""
    stem = ort_path[: -len(".ort")] if ort_path.endswith(".ort") else ort_path
    return stem + ".required_operators.config"


def ort_check_feeds(mode: str) -> dict[str, dict[str, np.ndarray]]:
    """The inputs the ORT-format model of ``mode`` is checked on (the exporter's check inputs)."""
    if mode == "ave":
        from .ave import INPUT_NAME, check_windows

        windows = check_windows(64)
        return {f"batch {n}": {INPUT_NAME: windows[:n]} for n in (1, 7, 64)}
    if mode == "hubert":
        from .hubert import HUBERT_INPUT, check_signal

        return {f"{n} samples": {HUBERT_INPUT: check_signal(n)[None]} for n in (400, 16000, 320080)}
    raise ValueError(f"no ORT check inputs for mode {mode!r}")


def _session(path: str, level: str | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if level is not None:
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def _run(session: Any, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(o) for o in session.run(None, dict(feeds))]


def _max_diff(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if x.shape != y.shape:
            return float("inf")
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        worst = max(worst, float(np.nan_to_num(d, nan=np.inf).max()) if d.size else 0.0)
    return worst


def convert_to_ort(
    onnx_path: str | os.PathLike[str],
    ort_path: str | os.PathLike[str],
    *,
    check_feeds: Mapping[str, Mapping[str, np.ndarray]],
) -> OrtReport:
    """Convert ``onnx_path`` to ORT format at ``ort_path`` and check it.

    Parameters
    ----------
    onnx_path : str or os.PathLike
        The ONNX model.
    ort_path : str or os.PathLike
        Where to write the ``.ort`` model; the operator config goes beside it
        (`operators_config_path`). Both appear only after the check passed.
    check_feeds : mapping
        Name → the model's inputs for one check (``{"batch 7": {"mel": ...}}``).

    Returns
    -------
    OrtReport

    Raises
    ------
    ExportError
        If the converter fails.
    ExportCheckError
        If the ``.ort`` model differs from the ``.onnx`` one at the same
        optimization level.
    """
    import onnxruntime

    started = time.perf_counter()
    final = os.path.abspath(os.fspath(ort_path))
    config_final = operators_config_path(final)
    staging = tempfile.mkdtemp(prefix=".ort-", dir=os.path.dirname(final))
    try:
        source = os.path.join(staging, "model.onnx")
        shutil.copyfile(os.fspath(onnx_path), source)
        out_dir = os.path.join(staging, "out")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "onnxruntime.tools.convert_onnx_models_to_ort",
                source,
                "--output_dir",
                out_dir,
                "--optimization_style",
                OPTIMIZATION_STYLE,
            ],
            capture_output=True,
            text=True,
        )
        converted = os.path.join(out_dir, "model.with_runtime_opt.ort")
        config = os.path.join(out_dir, "model.required_operators.with_runtime_opt.config")
        if done.returncode != 0 or not os.path.isfile(converted) or not os.path.isfile(config):
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise ExportError(
                f"ONNX Runtime's ORT conversion failed (exit {done.returncode}): {tail}"
            )
        try:
            reference_same = _session(source, "ORT_ENABLE_BASIC")
            reference_default = _session(source, None)
            candidate = _session(converted, None)
        except Exception as exc:  # ONNX Runtime's own exception types
            raise ExportCheckError(f"ONNX Runtime cannot load the converted model: {exc}") from exc
        report = OrtReport(
            final, config_final, "", 0, versions={"onnxruntime": onnxruntime.__version__}
        )
        for name, feeds in check_feeds.items():
            got = _run(candidate, feeds)
            report.max_abs_diff[name] = _max_diff(got, _run(reference_same, feeds))
            report.max_abs_diff_default[name] = _max_diff(got, _run(reference_default, feeds))
        worst = max(report.max_abs_diff.values(), default=0.0)
        if worst != 0.0:
            shown = ", ".join(f"{k}: {v:.3e}" for k, v in report.max_abs_diff.items())
            raise ExportCheckError(
                f"the ORT-format model differs from the ONNX model at the same optimization"
                f" level ({shown}); nothing was written to {final}"
            )
        with open(config, encoding="utf-8") as f:
            report.operators = [
                line.strip() for line in f if line.strip() and not line.startswith("#")
            ]
        # The config names the temporary files it was made from; name the result instead.
        with open(config, "w", encoding="utf-8") as f:
            f.write(f"# Operators of {os.path.basename(final)} (ORT format, style Runtime).\n")
            f.write("# Build: ./build.sh --minimal_build --include_ops_by_config THIS_FILE\n")
            f.write("\n".join(report.operators) + "\n")
        os.chmod(converted, 0o644)
        os.chmod(config, 0o644)
        os.replace(config, config_final)
        os.replace(converted, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.sha256 = file_sha256(final)
    report.file_size = os.path.getsize(final)
    report.seconds = time.perf_counter() - started
    return report
