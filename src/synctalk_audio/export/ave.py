"""SyncTalk_2D ``audio_visual_encoder.pth`` → ONNX, checked against PyTorch.

SyncTalk_2D's AVE ``AudioEncoder`` (``utils.py`` upstream) is 13 blocks of
Conv2d → BatchNorm2d → optional residual add → ReLU that turn one mel window
(1, 80, 16) into a 512-d feature. This module rebuilds that network with the
same module names, so the upstream checkpoint loads unchanged, exports it to
ONNX with a dynamic batch axis (input ``mel`` (B, 1, 80, 16) float32, output
``features`` (B, 512)) and, before reporting success, runs the exported file
in ONNX Runtime against PyTorch in eval mode.

PyTorch is imported only inside the functions that need it, so
``import synctalk_audio.export`` works without it; install it with
``pip install 'synctalk-audio[export]'``.

Exporter: the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``)
is used first. It is deprecated since PyTorch 2.9 but still present in 2.13
and needs nothing beyond ``torch`` and ``onnx``. If it is missing or fails,
the ``torch.export``-based exporter is tried, which needs ``onnxscript``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "CHECK_BATCH_SIZES",
    "ENCODER_BLOCKS",
    "ENCODER_PREFIX",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "ExportCheckError",
    "ExportError",
    "ExportReport",
    "MissingDependencyError",
    "build_audio_encoder",
    "check_windows",
    "encoder_parameter_count",
    "encoder_state_shapes",
    "export_onnx",
    "load_audio_encoder",
    "load_encoder_state_dict",
    "normalise_encoder_state_dict",
]

#: Name of the ONNX input: float32 mel windows (B, 1, 80, 16).
INPUT_NAME = "mel"
#: Name of the ONNX output: float32 features (B, 512).
OUTPUT_NAME = "features"
#: Prefix of the encoder's keys inside ``AudioEncoder.state_dict()``; the
#: shipped checkpoint lacks it.
ENCODER_PREFIX = "audio_encoder."
#: Batch sizes at which the exported model is compared with PyTorch.
CHECK_BATCH_SIZES = (1, 7, 64)

WINDOW_SHAPE = (1, 80, 16)
FEATURE_DIM = 512

# (cin, cout, kernel, stride, padding, residual) of the 13 blocks, in order.
Stride = int | tuple[int, int]
ENCODER_BLOCKS: tuple[tuple[int, int, int, Stride, int, bool], ...] = (
    (1, 32, 3, 1, 1, False),
    (32, 32, 3, 1, 1, True),
    (32, 32, 3, 1, 1, True),
    (32, 64, 3, (3, 1), 1, False),
    (64, 64, 3, 1, 1, True),
    (64, 64, 3, 1, 1, True),
    (64, 128, 3, 3, 1, False),
    (128, 128, 3, 1, 1, True),
    (128, 128, 3, 1, 1, True),
    (128, 256, 3, (3, 2), 1, False),
    (256, 256, 3, 1, 1, True),
    (256, 512, 3, 1, 0, False),
    (512, 512, 1, 1, 0, False),
)

# Wrappers some training scripts put around a state dict.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
_DATA_PARALLEL_PREFIX = "module."
_ENCODER_KEY = re.compile(r"^(module\.)?(audio_encoder\.)?\d+\.conv_block\.")


# ----------------------------------------------------------------------------
# the network


def encoder_state_shapes() -> dict[str, tuple[tuple[int, ...], str]]:
    """Every key of the shipped checkpoint with its shape and dtype.

    Returns
    -------
    dict
        ``key -> (shape, dtype name)`` in state-dict order, keys WITHOUT the
        ``audio_encoder.`` prefix (as in ``audio_visual_encoder.pth``):
        ``0.conv_block.0.weight``, ``0.conv_block.0.bias``,
        ``0.conv_block.1.weight``, ``.bias``, ``.running_mean``,
        ``.running_var``, ``.num_batches_tracked``, then block 1, ... 12.
        91 keys. Needs no PyTorch.
    """
    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    for index, (cin, cout, kernel, _stride, _padding, _residual) in enumerate(ENCODER_BLOCKS):
        conv, bn = f"{index}.conv_block.0", f"{index}.conv_block.1"
        shapes[f"{conv}.weight"] = ((cout, cin, kernel, kernel), "float32")
        shapes[f"{conv}.bias"] = ((cout,), "float32")
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{bn}.{name}"] = ((cout,), "float32")
        shapes[f"{bn}.num_batches_tracked"] = ((), "int64")
    return shapes


def encoder_parameter_count() -> int:
    """Trainable parameters of the encoder (conv weights and biases, BN affine)."""
    return sum(
        int(np.prod(shape))
        for key, (shape, _dtype) in encoder_state_shapes().items()
        if not key.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )


@functools.lru_cache(maxsize=1)
def _encoder_classes() -> tuple[type, type]:
    """Define the torch module classes once, on first use (imports torch)."""
    torch = require_torch()
    nn = torch.nn

    class Conv2d(nn.Module):  # type: ignore[misc,name-defined]
        """Conv2d → BatchNorm2d → (+ input if residual) → ReLU, as upstream."""

        def __init__(
            self,
            cin: int,
            cout: int,
            kernel_size: int,
            stride: Stride,
            padding: int,
            residual: bool = False,
        ) -> None:
            super().__init__()
            self.conv_block = nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size, stride, padding),
                nn.BatchNorm2d(cout),
            )
            self.act = nn.ReLU()
            self.residual = residual

        def forward(self, x: Any) -> Any:
            out = self.conv_block(x)
            if self.residual:
                out = out + x
            return self.act(out)

    class AudioEncoder(nn.Module):  # type: ignore[misc,name-defined]
        """SyncTalk_2D's AVE audio encoder: (B, 1, 80, 16) → (B, 512)."""

        def __init__(self) -> None:
            super().__init__()
            self.audio_encoder = nn.Sequential(
                *(
                    Conv2d(cin, cout, k, s, p, residual=r)
                    for cin, cout, k, s, p, r in ENCODER_BLOCKS
                )
            )

        def forward(self, x: Any) -> Any:
            out = self.audio_encoder(x)
            return out.squeeze(2).squeeze(2)

    return Conv2d, AudioEncoder


def build_audio_encoder() -> torch.nn.Module:
    """A new, randomly initialised SyncTalk_2D ``AudioEncoder`` (train mode).

    Its ``state_dict()`` keys are the upstream ones, ``audio_encoder.0.conv_block.0.weight``
    and so on. Load weights with `load_audio_encoder` instead to get an
    eval-mode model.

    Returns
    -------
    torch.nn.Module
        Input float32 (B, 1, 80, 16), output (B, 512).

    Raises
    ------
    MissingDependencyError
        If PyTorch is not installed.
    """
    _conv, encoder_class = _encoder_classes()
    return encoder_class()  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------
# checkpoints


def _natural_key(key: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _examples(keys: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(f"'{k}'" for k in sorted(keys, key=_natural_key)[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _unwrap(obj: Any, source: str) -> Mapping[str, Any]:
    for _ in range(3):
        if not isinstance(obj, Mapping):
            break
        inner = [obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)]
        if len(inner) == 1 and not any(_ENCODER_KEY.match(str(k)) for k in obj):
            obj = inner[0]
            continue
        return obj
    if isinstance(obj, Mapping):
        return obj
    raise ModelError(
        f"{source} holds a {type(obj).__name__}, not a state dict: expected the SyncTalk_2D"
        " audio_visual_encoder.pth, a mapping of tensor names to tensors"
    )


def normalise_encoder_state_dict(
    state: Mapping[str, Any], *, source: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """Check a state dict and give it the keys of `build_audio_encoder`.

    Accepted: the keys of SyncTalk_2D's ``audio_visual_encoder.pth``
    (``0.conv_block.0.weight``, ...), the same with the ``audio_encoder.``
    prefix, a bigger checkpoint holding ``audio_encoder.*`` among other keys
    (only those are taken), a ``module.`` prefix on every key (DataParallel)
    and a ``{"state_dict": ...}`` wrapper. Values may be tensors or NumPy
    arrays. A missing ``num_batches_tracked`` is filled with 0 (it does not
    affect eval mode); every other key must be present with the right shape.

    Parameters
    ----------
    state : Mapping[str, Any]
        The loaded checkpoint.
    source : str, optional
        What to call it in error messages (the file name).

    Returns
    -------
    dict[str, torch.Tensor]
        Keys with the ``audio_encoder.`` prefix, float32 tensors
        (``num_batches_tracked``: int64), in module order; ready for
        ``build_audio_encoder().load_state_dict(..., strict=True)``.

    Raises
    ------
    ModelError
        If keys are missing or unexpected (both are listed), a shape is
        wrong, a value is not a tensor or holds NaN or infinity.
    MissingDependencyError
        If PyTorch is not installed.
    """
    torch = require_torch()
    state = _unwrap(state, source)
    keys = [str(k) for k in state]
    if keys and all(k.startswith(_DATA_PARALLEL_PREFIX) for k in keys):
        state = {str(k)[len(_DATA_PARALLEL_PREFIX) :]: v for k, v in state.items()}
        keys = list(state)
    prefixed = [k for k in keys if k.startswith(ENCODER_PREFIX)]
    if prefixed:
        selected = {k[len(ENCODER_PREFIX) :]: state[k] for k in prefixed}
    else:
        selected = {k: state[k] for k in keys}

    expected = encoder_state_shapes()
    missing = [k for k in expected if k not in selected and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in selected if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_examples(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_examples(unexpected)})")
        raise ModelError(
            f"{source} is not a SyncTalk_2D AudioEncoder checkpoint: {' and '.join(parts)}."
            f" Expected the {len(expected)} keys of audio_visual_encoder.pth, like"
            " '0.conv_block.0.weight' ... '12.conv_block.1.num_batches_tracked', with or"
            f" without the '{ENCODER_PREFIX}' prefix"
        )

    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, (shape, dtype) in expected.items():
        if key not in selected:  # a num_batches_tracked
            out[ENCODER_PREFIX + key] = torch.tensor(0, dtype=torch.int64)
            continue
        value = selected[key]
        if isinstance(value, np.ndarray) or np.isscalar(value):
            value = torch.as_tensor(np.asarray(value))
        if not isinstance(value, torch.Tensor):
            problems.append(f"'{key}' is a {type(value).__name__}, not a tensor")
            continue
        if tuple(value.shape) != shape and not (shape == () and value.numel() == 1):
            problems.append(f"'{key}' has shape {tuple(value.shape)}, expected {shape}")
            continue
        if dtype == "int64":
            out[ENCODER_PREFIX + key] = value.detach().reshape(()).to(torch.int64).cpu()
            continue
        if not value.is_floating_point():
            problems.append(f"'{key}' has dtype {value.dtype}, expected a float tensor")
            continue
        value = value.detach().to(device="cpu", dtype=torch.float32).contiguous()
        if not bool(torch.isfinite(value).all()):
            problems.append(f"'{key}' holds NaN or infinite values")
            continue
        out[ENCODER_PREFIX + key] = value
    if problems:
        shown = "; ".join(problems[:6])
        if len(problems) > 6:
            shown += f"; ... ({len(problems) - 6} more)"
        raise ModelError(f"{source} is not a usable SyncTalk_2D AudioEncoder checkpoint: {shown}")
    return out


def load_encoder_state_dict(
    path: str | os.PathLike[str] | Mapping[str, Any],
) -> dict[str, torch.Tensor]:
    """Load an AudioEncoder checkpoint, keys with or without ``audio_encoder.``.

    Parameters
    ----------
    path : str, os.PathLike or Mapping
        A ``.pth`` file written by ``torch.save`` (SyncTalk_2D's
        ``model/checkpoints/audio_visual_encoder.pth``), or an already loaded
        state dict. Loaded on the CPU with ``weights_only=True``: a file that
        needs arbitrary code to unpickle is refused.

    Returns
    -------
    dict[str, torch.Tensor]
        Keys with the ``audio_encoder.`` prefix; see `normalise_encoder_state_dict`.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ModelError
        If it is not a PyTorch checkpoint or not this network's weights
        (missing and unexpected keys are listed).
    MissingDependencyError
        If PyTorch is not installed.

    Examples
    --------
    >>> state = load_encoder_state_dict("audio_visual_encoder.pth")  # doctest: +SKIP
    >>> next(iter(state))  # doctest: +SKIP
    'audio_encoder.0.conv_block.0.weight'
    """
    torch = require_torch()
    if isinstance(path, Mapping):
        return normalise_encoder_state_dict(path, source="the state dict")
    file = os.fspath(path)
    if not os.path.exists(file):
        raise FileNotFoundError(f"checkpoint not found: {file}")
    if os.path.isdir(file):
        raise ModelError(f"checkpoint path is a directory, not a .pth file: {file}")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike
        text = str(exc)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if found:
            raise ModelError(
                f"{file} holds Python objects besides tensors ({found.group(1)}), so"
                " torch.load(weights_only=True) refuses it. If you trust the file, load it"
                " yourself with torch.load(path, weights_only=False) and pass the state dict"
            ) from None
        detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        reason = f"{type(exc).__name__}: {detail.group(1).strip()}" if detail else first_line(exc)
        raise ModelError(
            f"cannot read {file} as a PyTorch checkpoint (torch.load): {reason}"
        ) from None
    return normalise_encoder_state_dict(obj, source=file)


def load_audio_encoder(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any],
) -> torch.nn.Module:
    """`build_audio_encoder` with the checkpoint's weights, in eval mode, on the CPU.

    Parameters
    ----------
    checkpoint : str, os.PathLike or Mapping
        See `load_encoder_state_dict`.

    Returns
    -------
    torch.nn.Module
        The encoder in eval mode (BatchNorm uses the running statistics).
    """
    model = build_audio_encoder()
    model.load_state_dict(load_encoder_state_dict(checkpoint), strict=True)
    return model.eval()


# ----------------------------------------------------------------------------
# export


@dataclass
class ExportReport:
    """What `export_onnx` did and measured.

    Attributes
    ----------
    onnx_path : str
        Absolute path of the written model.
    checkpoint : str
        The checkpoint's path (``"<state dict>"`` for an in-memory one).
    checkpoint_sha256 : str or None
        SHA-256 of the checkpoint file.
    sha256 : str
        SHA-256 of the ONNX file.
    file_size : int
        Size of the ONNX file in bytes.
    opset : int
        ONNX opset of the default domain.
    exporter : str
        ``"torchscript"`` (``dynamo=False``) or ``"dynamo"``.
    export_seconds : float
        Wall time of building, loading and exporting.
    check_seconds : float
        Wall time of the ONNX Runtime check (0 when not checked).
    checked : bool
        Whether ONNX Runtime was compared with PyTorch.
    tolerance : float
        The max abs difference allowed.
    reference : str
        What was held to ``tolerance``: ``"float64"`` (`max_abs_diff`) or
        ``"float32"`` (`max_abs_diff_float32`).
    max_abs_diff : dict[int, float]
        Batch size → max abs difference ONNX Runtime vs PyTorch eval in
        float64 (the exact result of the float32 weights).
    max_abs_diff_float32 : dict[int, float]
        Batch size → max abs difference ONNX Runtime vs PyTorch eval in
        float32 (includes PyTorch's own rounding error).
    batch_max_abs_diff : float
        Max abs difference between the same windows run by ONNX Runtime in
        batches of different sizes (results must not depend on batch size).
    torch_batch_max_abs_diff : float
        The same for PyTorch float32 (for information: PyTorch's CPU
        convolutions round differently at different batch sizes).
    output_std : float
        Standard deviation of the features over the check windows (puts the
        differences in scale).
    parameters : int
        Trainable parameters of the network.
    versions : dict[str, str]
        torch, onnx, onnxruntime.
    notes : list[str]
        Anything worth knowing (exporter fallback, filled-in keys).
    """

    onnx_path: str
    checkpoint: str
    checkpoint_sha256: str | None
    sha256: str
    file_size: int
    opset: int
    exporter: str
    export_seconds: float
    check_seconds: float
    checked: bool
    tolerance: float
    reference: str = "float64"
    max_abs_diff: dict[int, float] = field(default_factory=dict)
    max_abs_diff_float32: dict[int, float] = field(default_factory=dict)
    batch_max_abs_diff: float = 0.0
    torch_batch_max_abs_diff: float = 0.0
    output_std: float = 0.0
    parameters: int = 0
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def worst_abs_diff(self) -> float:
        """The largest difference that was held to the tolerance."""
        held = self.max_abs_diff if self.reference == "float64" else self.max_abs_diff_float32
        return max([*held.values(), self.batch_max_abs_diff], default=0.0)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (batch sizes as string keys)."""
        out = dict(self.__dict__)
        for key in ("max_abs_diff", "max_abs_diff_float32"):
            out[key] = {str(k): v for k, v in out[key].items()}
        out["notes"] = list(self.notes)
        out["versions"] = dict(self.versions)
        return out

    def __str__(self) -> str:
        lines = [
            f"exported {self.checkpoint} -> {self.onnx_path}",
            f"  {self.file_size / 1e6:.2f} MB, sha256 {self.sha256}",
            f"  input '{self.input_name}' float32 (B, 1, 80, 16), output '{self.output_name}'"
            f" (B, 512), batch axis dynamic, opset {self.opset}, {self.exporter} exporter,"
            f" {self.parameters:,} parameters",
            f"  export {self.export_seconds:.2f} s",
        ]
        if self.checked:
            d64 = ", ".join(f"{b}: {d:.2e}" for b, d in self.max_abs_diff.items())
            d32 = ", ".join(f"{b}: {d:.2e}" for b, d in self.max_abs_diff_float32.items())
            lines += [
                f"  ONNX Runtime vs PyTorch float64, max abs diff by batch size {d64}",
                f"  ONNX Runtime vs PyTorch float32, max abs diff by batch size {d32}",
                f"  across batch sizes: ONNX Runtime {self.batch_max_abs_diff:.2e}, PyTorch"
                f" float32 {self.torch_batch_max_abs_diff:.2e}; feature std {self.output_std:.3g}",
                f"  checked against {self.reference} within {self.tolerance:g}: OK"
                f" ({self.check_seconds:.2f} s)",
            ]
        else:
            lines.append("  NOT checked against PyTorch (check=False)")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _export_torchscript(model: Any, example: Any, path: str, opset: int) -> None:
    torch = require_torch()
    with warnings.catch_warnings():
        # The TorchScript exporter announces its own deprecation on every call.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            path,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            export_params=True,
        )


def _export_dynamo(model: Any, example: Any, path: str, opset: int) -> None:
    torch = require_torch()
    try:
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "the torch.export-based ONNX exporter needs onnxscript: pip install onnxscript"
        ) from exc
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    # It prints its progress to stdout; keep that out of the caller's output.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            external_data=False,
            optimize=True,
        )
        program.save(path, external_data=False)


_EXPORTERS = {"torchscript": _export_torchscript, "dynamo": _export_dynamo}


def _check_signature(model_proto: Any) -> None:
    """The exported graph must be mel (batch, 1, 80, 16) -> features (batch, 512)."""

    def dims(value_info: Any) -> list[int | str]:
        return [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in value_info.type.tensor_type.shape.dim
        ]

    graph = model_proto.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in graph.output] != [OUTPUT_NAME]:
        raise ExportError(
            f"exported graph has inputs {[i.name for i in inputs]} and outputs"
            f" {[o.name for o in graph.output]}; expected ['{INPUT_NAME}'] and ['{OUTPUT_NAME}']"
        )
    in_dims, out_dims = dims(inputs[0]), dims(graph.output[0])
    if len(in_dims) != 4 or in_dims[1:] != list(WINDOW_SHAPE) or not isinstance(in_dims[0], str):
        raise ExportError(
            f"exported input '{INPUT_NAME}' has shape {in_dims}; expected [batch, 1, 80, 16]"
        )
    if (
        len(out_dims) != 2
        or not isinstance(out_dims[0], str)
        or out_dims[1] not in (FEATURE_DIM, "?")
    ):
        raise ExportError(
            f"exported output '{OUTPUT_NAME}' has shape {out_dims}; expected [batch, 512]"
        )


def check_windows(count: int = max(CHECK_BATCH_SIZES), seed: int = 20240501) -> np.ndarray:
    """Test windows for the export check: silence, then uniform noise in [-4, 4].

    Parameters
    ----------
    count : int, optional
        Number of windows.
    seed : int, optional
        Seed of the NumPy generator.

    Returns
    -------
    numpy.ndarray
        float32 (count, 1, 80, 16); window 0 is all -4 (the mel of silence).
    """
    rng = np.random.default_rng(seed)
    windows = rng.uniform(-4.0, 4.0, size=(count, *WINDOW_SHAPE)).astype(np.float32)
    windows[0] = -4.0
    return windows


@dataclass
class _Comparison:
    vs_float64: dict[int, float]
    vs_float32: dict[int, float]
    onnx_across: float
    torch_across: float
    std: float


def _compare(model: Any, path: str, batch_sizes: Sequence[int]) -> _Comparison:
    """ONNX Runtime vs PyTorch (float64 and float32) per batch size, and across batch sizes."""
    import copy

    torch = require_torch()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    windows = check_windows(max(batch_sizes))
    exact = copy.deepcopy(model).double().eval()

    def diff(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))

    with torch.no_grad():
        want64 = exact(torch.from_numpy(windows.astype(np.float64))).numpy()
        want32_full = model(torch.from_numpy(windows)).numpy()
    got_full = session.run([OUTPUT_NAME], {INPUT_NAME: windows})[0]
    result = _Comparison({}, {}, 0.0, 0.0, float(want64.std()))
    for size in batch_sizes:
        got = session.run([OUTPUT_NAME], {INPUT_NAME: windows[:size]})[0]
        if got.shape != (size, FEATURE_DIM):
            raise ExportCheckError(
                f"exported model returned shape {got.shape} for a batch of {size}; expected"
                f" ({size}, {FEATURE_DIM})"
            )
        with torch.no_grad():
            want32 = model(torch.from_numpy(windows[:size])).numpy()
        result.vs_float64[size] = diff(got, want64[:size])
        result.vs_float32[size] = diff(got, want32)
        result.onnx_across = max(result.onnx_across, diff(got, got_full[:size]))
        result.torch_across = max(result.torch_across, diff(want32, want32_full[:size]))
    return result


def export_onnx(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any],
    onnx_path: str | os.PathLike[str],
    *,
    opset: int = 17,
    check: bool = True,
    tolerance: float = 1e-5,
    exporter: str = "auto",
    reference: str = "float64",
    metadata: Mapping[str, str] | None = None,
) -> ExportReport:
    """Export a SyncTalk_2D AudioEncoder checkpoint to ONNX and check it.

    The model is written to a temporary file beside ``onnx_path``, checked,
    and only then renamed over ``onnx_path`` (``os.replace``), so a failure
    never leaves a file behind and never damages an existing one.

    Parameters
    ----------
    checkpoint : str, os.PathLike or Mapping
        ``audio_visual_encoder.pth`` (keys with or without ``audio_encoder.``;
        see `load_encoder_state_dict`) or a loaded state dict.
    onnx_path : str or os.PathLike
        Where to write the model; its directory must exist.
    opset : int, optional
        ONNX opset, 17 by default (ONNX Runtime ≥ 1.14 runs it).
    check : bool, optional
        Run the exported file in ONNX Runtime on 64 test windows (silence and
        uniform noise in [-4, 4], `check_windows`) at batch sizes 1, 7 and 64
        and compare with the PyTorch model in eval mode (True by default).
        Also checks that ONNX Runtime gives the same rows whatever the batch
        size.
    tolerance : float, optional
        Largest max abs difference allowed in the check, 1e-5 by default.
    exporter : {"auto", "torchscript", "dynamo"}, optional
        ``"auto"`` (default) tries the TorchScript exporter (``dynamo=False``)
        and falls back to the ``torch.export`` one (needs ``onnxscript``).
    reference : {"float64", "float32"}, optional
        What ONNX Runtime is held to. ``"float64"`` (default): the PyTorch
        model evaluated in float64, i.e. the exact result of the float32
        weights. ``"float32"``: PyTorch's float32 CPU output, which carries
        its own rounding error (measured ~1.3e-6 x max |feature|, and it
        changes with the batch size by as much); both differences are
        reported either way.
    metadata : Mapping[str, str], optional
        Extra ONNX ``metadata_props`` to store in the model (the exporter,
        PyTorch version and checkpoint SHA-256 are always stored under
        ``synctalk_audio.*``).

    Returns
    -------
    ExportReport
        Paths, checksums, size, timings and the measured differences;
        ``str(report)`` is a readable summary.

    Raises
    ------
    FileNotFoundError
        If the checkpoint does not exist.
    ModelError
        If the checkpoint is not this network's weights.
    ParameterError
        If an argument is out of range or the output directory does not exist.
    ExportError
        If no exporter could produce a model with the expected signature.
    ExportCheckError
        If ONNX Runtime differs from PyTorch by more than ``tolerance``.
    MissingDependencyError
        If PyTorch (or, for the dynamo exporter, onnxscript) is missing.

    Examples
    --------
    >>> report = export_onnx("audio_visual_encoder.pth", "model.onnx")  # doctest: +SKIP
    >>> print(report)  # doctest: +SKIP
    """
    if not isinstance(opset, int) or not 13 <= opset <= 23:
        raise ParameterError(f"opset must be an integer from 13 to 23, got {opset!r}")
    if not (isinstance(tolerance, (int, float)) and np.isfinite(tolerance) and tolerance > 0):
        raise ParameterError(f"tolerance must be a positive number, got {tolerance!r}")
    if reference not in ("float64", "float32"):
        raise ParameterError(f"reference must be 'float64' or 'float32', got {reference!r}")
    if exporter not in ("auto", *_EXPORTERS):
        raise ParameterError(
            f"exporter must be 'auto', 'torchscript' or 'dynamo', got {exporter!r}"
        )
    final = os.path.abspath(os.fspath(onnx_path))
    parent = os.path.dirname(final)
    if os.path.isdir(final):
        raise ParameterError(
            f"output path {final} is a directory; give a file name like model.onnx"
        )
    if not os.path.isdir(parent):
        raise ParameterError(f"cannot write {final}: directory {parent} does not exist")

    torch = require_torch()
    import onnx
    import onnxruntime

    started = time.perf_counter()
    notes: list[str] = []
    if isinstance(checkpoint, Mapping):
        source, source_sha = "<state dict>", None
    else:
        source = os.path.abspath(os.fspath(checkpoint))
        source_sha = file_sha256(source) if os.path.isfile(source) else None
    state = load_encoder_state_dict(checkpoint)
    model = build_audio_encoder()
    model.load_state_dict(state, strict=True)
    model.eval()
    example = torch.from_numpy(check_windows(2))

    with atomic_file(final) as tmp:
        order = list(_EXPORTERS) if exporter == "auto" else [exporter]
        used, failures = None, []
        for name in order:
            try:
                _EXPORTERS[name](model, example, tmp, opset)
                proto = onnx.load(tmp)
                _check_signature(proto)
                used = name
                break
            except Exception as exc:
                failures.append(f"{name} exporter: {first_line(exc)}")
                if exporter != "auto":
                    if isinstance(exc, (MissingDependencyError, ExportError)):
                        raise
                    raise ExportError(f"ONNX export failed: {failures[-1]}") from exc
        if used is None:
            raise ExportError("ONNX export failed with every exporter: " + "; ".join(failures))
        if failures:
            notes.append("fell back to the dynamo exporter after: " + "; ".join(failures))

        from .._version import __version__

        onnx.checker.check_model(proto, full_check=True)
        proto.producer_name = "synctalk-audio"
        proto.producer_version = __version__
        proto.doc_string = (
            "SyncTalk_2D AVE AudioEncoder: mel windows (B, 1, 80, 16) float32 ->"
            " features (B, 512) float32"
        )
        meta = {
            "synctalk_audio.model": "SyncTalk_2D AudioEncoder (ave)",
            "synctalk_audio.exporter": used,
            "synctalk_audio.torch": torch.__version__,
        }
        if source_sha is not None:
            meta["synctalk_audio.checkpoint_sha256"] = source_sha
        meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, tmp)
        export_seconds = time.perf_counter() - started

        comparison = None
        check_seconds = 0.0
        if check:
            check_started = time.perf_counter()
            try:
                comparison = _compare(model, tmp, CHECK_BATCH_SIZES)
            except ExportCheckError:
                raise
            except Exception as exc:  # ONNX Runtime's own exception types
                raise ExportCheckError(
                    f"ONNX Runtime could not run the exported model: {first_line(exc)}"
                ) from exc
            check_seconds = time.perf_counter() - check_started
            held = comparison.vs_float64 if reference == "float64" else comparison.vs_float32
            worst = max([*held.values(), comparison.onnx_across])
            if not worst <= tolerance:  # also catches NaN
                shown = ", ".join(f"batch {b}: {d:.3e}" for b, d in held.items())
                raise ExportCheckError(
                    f"the exported model does not match PyTorch ({reference}) within"
                    f" {tolerance:g}: max abs difference {shown}; ONNX Runtime across batch"
                    f" sizes {comparison.onnx_across:.3e} (feature std {comparison.std:.3g})."
                    f" Nothing was written to {final}"
                )

    return ExportReport(
        onnx_path=final,
        checkpoint=source,
        checkpoint_sha256=source_sha,
        sha256=file_sha256(final),
        file_size=os.path.getsize(final),
        opset=opset,
        exporter=used,
        export_seconds=export_seconds,
        check_seconds=check_seconds,
        checked=check,
        tolerance=float(tolerance),
        reference=reference,
        max_abs_diff=dict(comparison.vs_float64) if comparison else {},
        max_abs_diff_float32=dict(comparison.vs_float32) if comparison else {},
        batch_max_abs_diff=comparison.onnx_across if comparison else 0.0,
        torch_batch_max_abs_diff=comparison.torch_across if comparison else 0.0,
        output_std=comparison.std if comparison else 0.0,
        parameters=encoder_parameter_count(),
        versions={
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        notes=notes,
    )
