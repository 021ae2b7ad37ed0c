"""A mode's PyTorch module → a Core ML ML Program (``.mlpackage``), checked as far as Linux can.

The module the ONNX exporter exports (``ave``: SyncTalk_2D's AudioEncoder;
``hubert``: ``HubertModel`` returning ``last_hidden_state``) is traced with
``torch.jit.trace`` and converted by coremltools to an ML Program with:

- ``compute_precision=FLOAT32``: coremltools' default for ML Programs is
  FLOAT16, which would move the features by ~1e-3;
- the ONNX model's input and output names (``mel`` → ``features``;
  ``input_values`` → ``last_hidden_state``), float32;
- a flexible batch dimension (``ave``: 1 .. `AVE_MAX_BATCH`; ``hubert``: 1 ..
  `HUBERT_MAX_BATCH`, length 400 .. 320080 samples, one chunk of the mode);
- ``minimum_deployment_target`` iOS 15 / macOS 12 (ML Programs need it).

Core ML runs predictions only on macOS, so what is checked here is what can
be checked on any platform: the trace gives PyTorch's own output on the check
inputs (other batch sizes and lengths than the one traced), and the converted
program has the expected inputs, outputs, shapes and ranges, float32
everywhere, no float16 tensor and no ``cast``. Predictions are checked on a
Mac with `validate_coreml` (``python -m synctalk_audio.export.coreml
MODEL.mlpackage --onnx MODEL.onnx --mode ave``), which compares Core ML
(CPU only, then all compute units) with ONNX Runtime on the same inputs.

Needs coremltools (``pip install 'synctalk-audio[coreml]'``) and PyTorch.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ParameterError
from .common import ExportCheckError, ExportError, MissingDependencyError, first_line, require_torch

__all__ = [
    "AVE_MAX_BATCH",
    "HUBERT_MAX_BATCH",
    "CoreMLReport",
    "export_coreml",
    "inspect_program",
    "validate_coreml",
]

#: Largest batch of mel windows the ``ave`` model accepts.
AVE_MAX_BATCH = 4096
#: Largest batch of the ``hubert`` model (upstream runs one clip at a time).
HUBERT_MAX_BATCH = 16
#: Largest max abs difference allowed between the trace and PyTorch eager.
TRACE_TOLERANCE = 1e-6
#: Core ML predictions vs ONNX Runtime, by mode (`validate_coreml`).
VALIDATE_TOLERANCE = {"ave": 1e-5, "hubert": 1e-4}


@dataclass
class CoreMLReport:
    """What `export_coreml` wrote and checked.

    Attributes
    ----------
    path : str
        The ``.mlpackage`` directory.
    mode : str
        ``ave`` or ``hubert``.
    size : int
        Bytes in the package.
    inputs, outputs : list of str
        Each feature's name, type and shape range as the spec states it.
    operations : list of str
        The program's operation types.
    float16_tensors : int
        float16 tensors in the program (0 required).
    casts : int
        ``cast`` operations in the program (0 required).
    trace_max_abs_diff : dict[str, float]
        Check input → max abs difference of the traced module vs PyTorch eager.
    seconds : float
        Wall time.
    versions : dict[str, str]
        torch, coremltools.
    notes : list of str
        Warnings the converter gave.
    """

    path: str
    mode: str
    size: int
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    float16_tensors: int = 0
    casts: int = 0
    trace_max_abs_diff: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def validate_command(self, onnx_model: str = "MODEL.onnx") -> str:
        """The command that checks predictions on a Mac."""
        return (
            f"python -m synctalk_audio.export.coreml {self.path} --onnx {onnx_model}"
            f" --mode {self.mode}"
        )

    def __str__(self) -> str:
        trace = ", ".join(f"{k}: {v:.1e}" for k, v in self.trace_max_abs_diff.items())
        lines = [
            f"converted to Core ML (ML Program, compute precision FLOAT32) -> {self.path}",
            f"  {self.size / 1e6:.2f} MB; coremltools {self.versions.get('coremltools', '?')},"
            f" torch {self.versions.get('torch', '?')}",
            *(f"  input  {text}" for text in self.inputs),
            *(f"  output {text}" for text in self.outputs),
            f"  operations: {', '.join(self.operations)}",
            f"  float16 tensors: {self.float16_tensors}, cast operations: {self.casts}: OK",
            f"  traced module vs PyTorch eager, max abs diff: {trace} (within"
            f" {TRACE_TOLERANCE:g}): OK",
            "  NOT checked here: Core ML predictions run only on macOS. On a Mac run:",
            f"    {self.validate_command()}",
        ]
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _require_coremltools() -> Any:
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import coremltools
    except ImportError as exc:
        raise MissingDependencyError(
            "exporting to Core ML needs coremltools, which is not installed:"
            " pip install 'synctalk-audio[coreml]' (or pip install coremltools)"
        ) from exc
    return coremltools


def _module_and_inputs(mode: str, checkpoint: str) -> tuple[Any, Any, dict[str, Any], str, str]:
    """(eager module, example, check inputs, input name, output name) for a mode."""
    torch = require_torch()
    if mode == "ave":
        from .ave import INPUT_NAME, OUTPUT_NAME, check_windows, load_audio_encoder

        model = load_audio_encoder(checkpoint)
        windows = check_windows(64)
        checks = {f"batch {n}": torch.from_numpy(windows[:n]) for n in (1, 7, 64)}
        return model, torch.from_numpy(windows[:2]), checks, INPUT_NAME, OUTPUT_NAME
    if mode == "hubert":
        from .hubert import (
            HUBERT_INPUT,
            HUBERT_OUTPUT,
            _LastHiddenState,
            check_signal,
            load_hubert_checkpoint,
        )

        model = _LastHiddenState.build(
            load_hubert_checkpoint(checkpoint, attn_implementation="eager")
        )
        checks = {
            f"{n} samples": torch.from_numpy(check_signal(n)[None]) for n in (400, 16000, 320080)
        }
        return (
            model,
            torch.from_numpy(check_signal(16000)[None]),
            checks,
            HUBERT_INPUT,
            HUBERT_OUTPUT,
        )
    raise ParameterError(f"--format coreml exports modes ave and hubert, not '{mode}'")


def _describe(feature: Any) -> str:
    array = feature.type.multiArrayType
    kinds = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32"}
    dtype = kinds.get(int(array.dataType), str(array.dataType))
    ranges = [
        f"{r.lowerBound}..{r.upperBound if r.upperBound >= 0 else 'inf'}"
        if r.lowerBound != r.upperBound
        else str(r.lowerBound)
        for r in array.shapeRange.sizeRanges
    ]
    shape = f"({', '.join(ranges)})" if ranges else "(shape set at run time)"
    return f"'{feature.name}' {dtype} {shape}"


def inspect_program(spec: Any) -> tuple[list[str], int, int]:
    """(operation types, float16 tensors, casts) of an ML Program spec."""
    from google.protobuf import text_format

    operations: set[str] = set()
    casts = 0
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                operations.add(op.type)
                casts += op.type == "cast"
    text = text_format.MessageToString(spec.mlProgram)
    return sorted(operations), text.count("FLOAT16"), casts


def _package_size(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _dirs, names in os.walk(path)
        for name in names
    )


def export_coreml(
    mode: str,
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
) -> CoreMLReport:
    """Convert ``mode``'s checkpoint to a Core ML ``.mlpackage`` and check it (see the module).

    Parameters
    ----------
    mode : {"ave", "hubert"}
        The feature mode.
    checkpoint : str or os.PathLike
        ``ave``: audio_visual_encoder.pth; ``hubert``: a HuggingFace checkpoint directory.
    output : str or os.PathLike
        The ``.mlpackage`` directory to write; written beside, then renamed.
        An existing one is replaced only if it is an ``.mlpackage``.

    Raises
    ------
    ParameterError
        Another mode, or an output that is not a ``.mlpackage`` path.
    ExportError
        The trace or the conversion failed.
    ExportCheckError
        The program is not what the ONNX model is (names, shapes, float16).
    MissingDependencyError
        coremltools or PyTorch is missing.
    """
    final = os.path.abspath(os.fspath(output))
    if not final.endswith(".mlpackage"):
        raise ParameterError(f"a Core ML model is a directory named NAME.mlpackage, got {final}")
    if os.path.exists(final) and not os.path.isfile(os.path.join(final, "Manifest.json")):
        raise ParameterError(f"{final} exists and is not an .mlpackage; move it away")
    parent = os.path.dirname(final)
    if not os.path.isdir(parent):
        raise ParameterError(f"cannot write {final}: directory {parent} does not exist")
    torch = require_torch()
    ct = _require_coremltools()
    started = time.perf_counter()
    model, example, checks, input_name, output_name = _module_and_inputs(
        mode, os.fspath(checkpoint)
    )
    report = CoreMLReport(
        final, mode, 0, versions={"torch": torch.__version__, "coremltools": ct.__version__}
    )
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings
            traced = torch.jit.trace(model, example, strict=False)
            for name, x in checks.items():
                want = model(x).numpy()
                got = traced(x).numpy()
                if got.shape != want.shape:
                    raise ExportCheckError(
                        f"the traced module returns shape {got.shape} for {name}, PyTorch"
                        f" {want.shape}: the trace fixed a shape"
                    )
                report.trace_max_abs_diff[name] = float(
                    np.max(np.abs(got.astype(np.float64) - want))
                )
    except ExportCheckError:
        raise
    except Exception as exc:
        raise ExportError(f"torch.jit.trace failed: {first_line(exc)}") from exc
    worst = max(report.trace_max_abs_diff.values())
    if not worst <= TRACE_TOLERANCE:
        raise ExportCheckError(
            f"the traced module differs from PyTorch eager by {worst:.3e} (> {TRACE_TOLERANCE:g})"
        )
    if mode == "ave":
        shape: tuple[Any, ...] = (ct.RangeDim(1, AVE_MAX_BATCH, default=1), 1, 80, 16)
    else:
        shape = (
            ct.RangeDim(1, HUBERT_MAX_BATCH, default=1),
            ct.RangeDim(400, 320080, default=16000),
        )
    messages = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(messages):
            warnings.simplefilter("always")
            mlmodel = ct.convert(
                traced,
                inputs=[ct.TensorType(name=input_name, shape=shape, dtype=np.float32)],
                outputs=[ct.TensorType(name=output_name, dtype=np.float32)],
                convert_to="mlprogram",
                compute_precision=ct.precision.FLOAT32,
                minimum_deployment_target=ct.target.iOS15,
            )
    except Exception as exc:
        raise ExportError(
            f"coremltools could not convert the {mode} model: {first_line(exc)}"
        ) from exc
    report.notes.extend(
        sorted(
            {str(w.message).splitlines()[0] for w in caught if w.category is not ResourceWarning}
        )[:3]
    )
    tested = getattr(getattr(ct, "_deps", None), "_TORCH_MAX_VERSION", None)
    if tested:
        report.notes.append(
            f"coremltools {ct.__version__} was tested with torch up to {tested}; this is"
            f" {torch.__version__} (the checks above hold for this conversion)"
        )
    spec = mlmodel.get_spec()
    report.inputs = [_describe(f) for f in spec.description.input]
    report.outputs = [_describe(f) for f in spec.description.output]
    report.operations, report.float16_tensors, report.casts = inspect_program(spec)
    names = ([f.name for f in spec.description.input], [f.name for f in spec.description.output])
    problems = []
    if names != ([input_name], [output_name]):
        problems.append(
            f"inputs {names[0]} and outputs {names[1]}, expected [{input_name!r}]"
            f" and [{output_name!r}]"
        )
    if any("float32" not in text for text in report.inputs + report.outputs):
        problems.append(f"a feature that is not float32: {report.inputs + report.outputs}")
    if report.float16_tensors or report.casts:
        problems.append(
            f"{report.float16_tensors} float16 tensors and {report.casts} casts in the program"
        )
    if problems:
        raise ExportCheckError(
            "the Core ML program is not the ONNX model's: " + "; ".join(problems)
        )
    staging = tempfile.mkdtemp(prefix=".mlpackage-", dir=parent)
    try:
        path = os.path.join(staging, "model.mlpackage")
        mlmodel.save(path)
        if os.path.exists(final):
            old = os.path.join(staging, "old.mlpackage")
            os.replace(final, old)
        os.replace(path, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.size = _package_size(final)
    report.seconds = time.perf_counter() - started
    return report


def validate_coreml(mlpackage: str, onnx_model: str, mode: str) -> dict[str, float]:
    """Core ML predictions vs ONNX Runtime on the export's check inputs (macOS only).

    Returns
    -------
    dict
        ``"<compute units>, <check input>"`` → max abs difference.

    Raises
    ------
    ExportCheckError
        A difference above `VALIDATE_TOLERANCE` of the mode.
    RuntimeError
        Not on macOS: Core ML cannot run predictions here.
    """
    if sys.platform != "darwin":
        raise RuntimeError(
            "Core ML runs predictions only on macOS; run this on a Mac (the .mlpackage, the"
            " .onnx and `pip install 'synctalk-audio[coreml]'` are all it needs)"
        )
    import onnxruntime as ort

    ct = _require_coremltools()
    if mode == "ave":
        from .ave import check_windows

        windows = check_windows(64)
        inputs = {f"batch {n}": windows[:n] for n in (1, 7, 64)}
    else:
        from .hubert import check_signal

        inputs = {f"{n} samples": check_signal(n)[None] for n in (400, 16000, 320080)}
    session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    diffs: dict[str, float] = {}
    for units in ("CPU_ONLY", "ALL"):
        mlmodel = ct.models.MLModel(mlpackage, compute_units=getattr(ct.ComputeUnit, units))
        for label, x in inputs.items():
            want = session.run(None, {name: x})[0]
            got = next(iter(mlmodel.predict({name: x}).values()))
            diffs[f"{units}, {label}"] = float(np.max(np.abs(np.asarray(got, np.float64) - want)))
    worst = max(diffs.values())
    if not worst <= VALIDATE_TOLERANCE[mode]:
        raise ExportCheckError(
            f"Core ML differs from ONNX Runtime by {worst:.3e} (> {VALIDATE_TOLERANCE[mode]:g}):"
            f" {diffs}"
        )
    return diffs


def main(argv: list[str] | None = None) -> int:
    """``python -m synctalk_audio.export.coreml MODEL.mlpackage --onnx MODEL.onnx --mode M``."""
    ap = argparse.ArgumentParser(
        prog="python -m synctalk_audio.export.coreml",
        description="On a Mac: compare a Core ML model's predictions with ONNX Runtime's.",
    )
    ap.add_argument("mlpackage")
    ap.add_argument("--onnx", required=True, help="the ONNX model of the same checkpoint")
    ap.add_argument("--mode", choices=("ave", "hubert"), default="ave")
    args = ap.parse_args(argv)
    try:
        diffs = validate_coreml(args.mlpackage, args.onnx, args.mode)
    except (RuntimeError, ExportCheckError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, ExportCheckError) else 2
    for label, diff in diffs.items():
        print(f"Core ML vs ONNX Runtime, {label}: max abs diff {diff:.2e}")
    print(f"OK: within {VALIDATE_TOLERANCE[args.mode]:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
