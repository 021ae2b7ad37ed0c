"""A HuggingFace HuBERT checkpoint directory → ONNX, checked against PyTorch.

What users of the ``hubert`` mode have is the checkpoint directory of
``facebook/hubert-large-ls960-ft`` from their HuggingFace cache:
``config.json`` (``model_type`` "hubert") and ``model.safetensors`` or
``pytorch_model.bin`` (``HubertForCTC`` keys under ``hubert.``, or plain
``HubertModel`` keys). `export_hubert` loads it with
``HubertModel.from_pretrained`` (as Ultralight-Digital-Human's
``data_utils/hubert.py`` does), wraps it so the graph returns
``last_hidden_state`` only, and exports it with the TorchScript exporter:

- input ``input_values``: float32 (batch, length), the normalised 16 kHz
  samples, both axes dynamic;
- output ``last_hidden_state``: float32 (batch, frames, hidden), frames =
  (length - 400) // 320 + 1 with HuBERT's convolutions.

Before reporting success, the written file is run in ONNX Runtime on a few
lengths and compared with a FRESHLY loaded ``HubertModel`` in eval mode. The
wrapper is put in eval mode itself: ``Module.train()``/``eval()`` set the
mode of every submodule, and exporting through a wrapper left in train mode
puts the whole model in train mode (dropout and LayerDrop active); comparing
against a fresh instance would catch that.

Needs ``torch``, ``transformers`` and ``onnx``
(``pip install 'synctalk-audio[export]'``); they are imported only here.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..encoders import file_sha256
from ..errors import ModelError, ParameterError
from ..outputs.directory import atomic_file
from .common import (
    ExportCheckError,
    ExportError,
    MissingDependencyError,
    first_line,
    require_torch,
)

__all__ = [
    "CHECK_LENGTHS",
    "HUBERT_INPUT",
    "HUBERT_MODEL_TAG",
    "HUBERT_OUTPUT",
    "HubertExportReport",
    "export_hubert",
    "load_hubert_checkpoint",
]

#: Name of the ONNX input: float32 (batch, length) normalised samples at 16 kHz.
HUBERT_INPUT = "input_values"
#: Name of the ONNX output: float32 (batch, frames, hidden).
HUBERT_OUTPUT = "last_hidden_state"
#: ``synctalk_audio.model`` metadata of an exported HuBERT (checked by the mode).
HUBERT_MODEL_TAG = "HuBERT last_hidden_state (hubert)"
#: Lengths (16 kHz samples) compared with PyTorch: the shortest input, 1 s, one
#: whole 20 s chunk of the ``hubert`` mode (320080 samples, 1000 frames).
CHECK_LENGTHS = (400, 16000, 320080)


@dataclass
class HubertExportReport:
    """What `export_hubert` did and measured.

    Attributes
    ----------
    onnx_path : str
        Absolute path of the written model.
    checkpoint : str
        The checkpoint directory.
    sha256 : str
        SHA-256 of the ONNX file.
    file_size : int
        Size of the ONNX file in bytes.
    opset : int
        ONNX opset.
    hidden_size : int
        Width of ``last_hidden_state``.
    layers : int
        Transformer layers.
    parameters : int
        Parameters of the ``HubertModel``.
    export_seconds : float
        Wall time of loading and exporting.
    check_seconds : float
        Wall time of the check.
    tolerance : float
        Largest max abs difference allowed.
    max_abs_diff : dict[int, float]
        Length → max abs difference ONNX Runtime vs a fresh PyTorch model
        (float32, eval mode).
    output_std : float
        Standard deviation of PyTorch's output over the check inputs.
    versions : dict[str, str]
        torch, transformers, onnx, onnxruntime.
    """

    onnx_path: str
    checkpoint: str
    sha256: str
    file_size: int
    opset: int
    hidden_size: int
    layers: int
    parameters: int
    export_seconds: float
    check_seconds: float
    tolerance: float
    max_abs_diff: dict[int, float] = field(default_factory=dict)
    output_std: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        diffs = ", ".join(f"{n} samples: {d:.2e}" for n, d in self.max_abs_diff.items())
        return "\n".join(
            [
                f"exported {self.checkpoint} -> {self.onnx_path}",
                f"  {self.file_size / 1e6:.2f} MB, sha256 {self.sha256}",
                f"  input '{HUBERT_INPUT}' float32 (batch, length), output '{HUBERT_OUTPUT}'"
                f" (batch, frames, {self.hidden_size}), length dynamic, opset {self.opset},"
                f" {self.layers} layers, {self.parameters:,} parameters",
                f"  export {self.export_seconds:.2f} s",
                f"  ONNX Runtime vs a fresh PyTorch HubertModel (eval), max abs diff: {diffs};"
                f" output std {self.output_std:.3g}",
                f"  checked within {self.tolerance:g}: OK ({self.check_seconds:.2f} s)",
            ]
        )


def _require_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError(
            "exporting a HuBERT checkpoint needs transformers, which is not installed:"
            " pip install 'synctalk-audio[export]' (or pip install transformers safetensors)"
        ) from exc
    return transformers


def load_hubert_checkpoint(
    checkpoint_dir: str | os.PathLike[str], *, attn_implementation: str | None = None
) -> Any:
    """``HubertModel.from_pretrained(checkpoint_dir)`` in eval mode, float32, checked first.

    ``attn_implementation`` None is transformers' default (what upstream
    runs); the exporter traces ``"eager"``.

    Raises
    ------
    FileNotFoundError
        If the directory does not exist.
    ModelError
        If it is not a HuBERT checkpoint directory (no config.json, another
        ``model_type``, no weights, or weights that do not load).
    """
    path = os.path.abspath(os.fspath(checkpoint_dir))
    if not os.path.exists(path):
        raise FileNotFoundError(f"HuBERT checkpoint directory not found: {path}")
    if not os.path.isdir(path):
        raise ModelError(
            f"{path} is a file; --mode hubert exports a HuggingFace checkpoint DIRECTORY"
            " (config.json + model.safetensors or pytorch_model.bin), e.g. the snapshot of"
            " facebook/hubert-large-ls960-ft in your HuggingFace cache"
        )
    config_path = os.path.join(path, "config.json")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        raise ModelError(
            f"{path} has no config.json: not a HuggingFace checkpoint directory"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {config_path}: {first_line(exc)}") from None
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind != "hubert":
        raise ModelError(
            f"{path} holds a {kind!r} model; --mode hubert expects a HuBERT checkpoint"
            " (config.json model_type 'hubert', e.g. facebook/hubert-large-ls960-ft)"
        )
    transformers = _require_transformers()
    hubert_model: Any = transformers.HubertModel
    hf_logging: Any = transformers.utils.logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a CTC checkpoint's unused lm_head is expected
    hf_logging.disable_progress_bar()
    try:
        extra = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
        model, info = hubert_model.from_pretrained(path, output_loading_info=True, **extra)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load the HuBERT checkpoint {path}: {first_line(exc)}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    if info.get("missing_keys") or info.get("mismatched_keys"):
        missing = sorted(info.get("missing_keys") or []) + sorted(
            str(k[0]) for k in info.get("mismatched_keys") or []
        )
        raise ModelError(
            f"the weights in {path} do not fit its config.json: {len(missing)} tensors missing"
            f" or of the wrong shape, e.g. {', '.join(missing[:4])}"
        )
    return model.float().eval()


class _LastHiddenState:
    """Build the export wrapper: ``forward(x) = model(x).last_hidden_state``."""

    @staticmethod
    def build(model: Any) -> Any:
        torch = require_torch()

        class Wrapper(torch.nn.Module):  # type: ignore[misc,name-defined]
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, x: Any) -> Any:
                return self.inner(x).last_hidden_state

        # eval() on the wrapper: train()/eval() reach every submodule.
        return Wrapper(model).eval()


def check_signal(length: int, seed: int = 20250601) -> np.ndarray:
    """A normalised test input: seeded noise with a decaying tone, zero mean, unit variance."""
    rng = np.random.default_rng([seed, length])
    t = np.arange(length) / 16000.0
    x = rng.standard_normal(length) * 0.3 + np.sin(2 * np.pi * 220.0 * t) * np.exp(-t)
    x = x.astype(np.float32)
    out: np.ndarray = ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)
    return out


def _compare(
    checkpoint: str, path: str, lengths: Sequence[int], hidden: int
) -> tuple[dict[int, float], float]:
    """ONNX Runtime vs a freshly loaded PyTorch model in eval mode, per length."""
    torch = require_torch()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    # A new instance, never the exported one, with transformers' default attention.
    fresh = load_hubert_checkpoint(checkpoint)
    diffs: dict[int, float] = {}
    outputs = []
    for length in lengths:
        x = check_signal(length)[None, :]
        with torch.no_grad():
            want = fresh(torch.from_numpy(x)).last_hidden_state.numpy()
        got = session.run([HUBERT_OUTPUT], {HUBERT_INPUT: x})[0]
        frames = (length - 400) // 320 + 1
        if got.shape != (1, frames, hidden) or want.shape != got.shape:
            raise ExportCheckError(
                f"exported model returned shape {got.shape} for {length} samples; PyTorch"
                f" {tuple(want.shape)}, expected (1, {frames}, {hidden})"
            )
        diffs[length] = float(np.max(np.abs(got.astype(np.float64) - want)))
        outputs.append(want.ravel())
    return diffs, float(np.concatenate(outputs).std())


def export_hubert(
    checkpoint_dir: str | os.PathLike[str],
    onnx_path: str | os.PathLike[str],
    *,
    opset: int = 17,
    tolerance: float = 1e-4,
    check_lengths: Sequence[int] = CHECK_LENGTHS,
) -> HubertExportReport:
    """Export a HuggingFace HuBERT checkpoint directory to ONNX and check it.

    The model is written to a temporary file beside ``onnx_path``, checked,
    and only then renamed over it: a failure leaves nothing behind.

    Parameters
    ----------
    checkpoint_dir : str or os.PathLike
        The checkpoint directory (config.json + model.safetensors or
        pytorch_model.bin), e.g. the HuggingFace cache snapshot of
        ``facebook/hubert-large-ls960-ft``.
    onnx_path : str or os.PathLike
        Where to write the model; its directory must exist.
    opset : int, optional
        ONNX opset, 17 by default.
    tolerance : float, optional
        Largest max abs difference to PyTorch allowed, 1e-4 by default
        (the ``hubert`` mode's tolerance against upstream).
    check_lengths : sequence of int, optional
        Input lengths (16 kHz samples, at least 400) compared with a freshly
        loaded PyTorch model in eval mode: `CHECK_LENGTHS` by default.

    Returns
    -------
    HubertExportReport
        ``str(report)`` is a readable summary.

    Raises
    ------
    FileNotFoundError
        If the directory does not exist.
    ModelError
        If it is not a HuBERT checkpoint directory.
    ParameterError
        If an argument is out of range or the output directory does not exist.
    ExportError
        If the exporter fails.
    ExportCheckError
        If ONNX Runtime differs from PyTorch by more than ``tolerance``.
    MissingDependencyError
        If torch, transformers or onnx is missing.
    """
    if not isinstance(opset, int) or not 14 <= opset <= 23:
        raise ParameterError(f"opset must be an integer from 14 to 23, got {opset!r}")
    if not (isinstance(tolerance, (int, float)) and np.isfinite(tolerance) and tolerance > 0):
        raise ParameterError(f"tolerance must be a positive number, got {tolerance!r}")
    lengths = [int(n) for n in check_lengths]
    if not lengths or min(lengths) < 400:
        raise ParameterError(f"check_lengths must be lengths of at least 400, got {lengths}")
    final = os.path.abspath(os.fspath(onnx_path))
    parent = os.path.dirname(final)
    if os.path.isdir(final):
        raise ParameterError(
            f"output path {final} is a directory; give a file name like hubert.onnx"
        )
    if not os.path.isdir(parent):
        raise ParameterError(f"cannot write {final}: directory {parent} does not exist")

    torch = require_torch()
    started = time.perf_counter()
    model = load_hubert_checkpoint(checkpoint_dir, attn_implementation="eager")
    transformers = _require_transformers()
    import onnx
    import onnxruntime

    source = os.path.abspath(os.fspath(checkpoint_dir))
    hidden = int(model.config.hidden_size)
    layers = int(model.config.num_hidden_layers)
    parameters = int(sum(p.numel() for p in model.parameters()))
    wrapper = _LastHiddenState.build(model)
    example = torch.from_numpy(check_signal(16000)[None, :])
    with atomic_file(final) as tmp:
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer and deprecation warnings
                torch.onnx.export(
                    wrapper,
                    (example,),
                    tmp,
                    dynamo=False,
                    input_names=[HUBERT_INPUT],
                    output_names=[HUBERT_OUTPUT],
                    dynamic_axes={
                        HUBERT_INPUT: {0: "batch", 1: "length"},
                        HUBERT_OUTPUT: {0: "batch", 1: "frames"},
                    },
                    opset_version=opset,
                    do_constant_folding=True,
                )
        except Exception as exc:
            raise ExportError(f"ONNX export failed: {first_line(exc)}") from exc
        if wrapper.training or model.training:
            raise ExportError("the model left eval mode during export")
        from .._version import __version__

        proto = onnx.load(tmp)
        proto.producer_name = "synctalk-audio"
        proto.producer_version = __version__
        proto.doc_string = (
            "HuBERT last_hidden_state: normalised 16 kHz samples (batch, length) float32 ->"
            f" (batch, frames, {hidden}) float32"
        )
        meta = {
            "synctalk_audio.model": HUBERT_MODEL_TAG,
            "synctalk_audio.exporter": "torchscript",
            "synctalk_audio.torch": torch.__version__,
            "synctalk_audio.transformers": transformers.__version__,
        }
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, tmp)
        del proto
        export_seconds = time.perf_counter() - started

        check_started = time.perf_counter()
        try:
            diffs, std = _compare(source, tmp, lengths, hidden)
        except (ExportCheckError, ModelError):
            raise
        except Exception as exc:  # ONNX Runtime's own exception types
            raise ExportCheckError(
                f"ONNX Runtime could not run the exported model: {first_line(exc)}"
            ) from exc
        check_seconds = time.perf_counter() - check_started
        worst = max(diffs.values())
        if not worst <= tolerance:  # also catches NaN
            shown = ", ".join(f"{n} samples: {d:.3e}" for n, d in diffs.items())
            raise ExportCheckError(
                f"the exported model does not match a fresh PyTorch HubertModel within"
                f" {tolerance:g}: max abs difference {shown} (output std {std:.3g})."
                f" Nothing was written to {final}"
            )

    return HubertExportReport(
        onnx_path=final,
        checkpoint=source,
        sha256=file_sha256(final),
        file_size=os.path.getsize(final),
        opset=opset,
        hidden_size=hidden,
        layers=layers,
        parameters=parameters,
        export_seconds=export_seconds,
        check_seconds=check_seconds,
        tolerance=float(tolerance),
        max_abs_diff=diffs,
        output_std=std,
        versions={
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    )
