"""Audio encoders: a batch of a mode's encoder inputs in, feature rows out.

The rest of the package talks to an encoder only through the small `Encoder`
protocol, so another backend (Core ML, TensorRT, a C++ runtime) can be added
without touching the engines; each feature mode opens and checks its own
(`FeatureMode.open_encoder`). `OnnxEncoder` runs SyncTalk_2D's AVE
``AudioEncoder`` exported to ONNX (``synctalk-audio export``) on ONNX Runtime.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ModelError, ParameterError
from ..limits import check_count

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Encoder",
    "OnnxEncoder",
    "check_features",
    "file_sha256",
    "open_session",
]

#: Windows per ONNX Runtime call. Measured on 2 cores (docs/BENCHMARKS.md):
#: the time per window is flat from about 16 upwards; 64 is upstream's batch.
DEFAULT_BATCH_SIZE = 32

WINDOW_SHAPE = (1, 80, 16)
FEATURE_DIM = 512


@runtime_checkable
class Encoder(Protocol):
    """What the engines need of an encoder backend.

    ``encode`` maps a batch of the mode's encoder inputs (B, ...) to float32
    rows (B, *row_shape) of its feature array; for ``ave``, mel windows
    (B, 1, 80, 16) to (B, 512).
    """

    #: Values in one output row (512 for ``ave``).
    feature_dim: int

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Encode a float32 batch (B, ...) into float32 rows (B, *row_shape)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Facts for metadata.json: backend, model path, checksum, settings."""
        ...


def file_sha256(path: str) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_features(model: str, features: np.ndarray, first: int = 0) -> None:
    """Refuse encoder output that is not float32 or holds NaN or infinity.

    Called on every batch an encoder returns, before the rows are stored, so
    bad numbers are never written as features.

    Parameters
    ----------
    model : str
        The model, as named in the message.
    features : numpy.ndarray
        The (B, 512) output of one batch.
    first : int
        Number of the batch's first window within the call, for the message.

    Raises
    ------
    ModelError
        If the dtype is not float32 (it would be cast silently) or any value
        is NaN or infinite; the message names the model and the windows.
    """
    if features.dtype != np.float32:
        raise ModelError(
            f"model {model} returned {features.dtype} features; a SyncTalk_2D encoder"
            " returns float32 (other types are not cast silently)"
        )
    bad_rows = ~np.isfinite(features).all(axis=1)
    if bad_rows.any():
        bad = np.flatnonzero(bad_rows) + first
        raise ModelError(
            f"model {model} produced NaN/inf for windows {bad[0]}..{bad[-1]}"
            f" ({bad.size} windows); it is not a usable encoder"
        )


def _dims(shape: Any) -> list[Any]:
    return [d if isinstance(d, int) else None for d in (shape or [])]


def _run_error(path: str, windows: int, exc: Exception) -> Exception:
    """The exception to raise for ONNX Runtime failing to run ``path`` on a batch.

    ONNX Runtime's message, on one line, without its status prefix and C++
    source locations; MemoryError when it could not allocate memory.
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"/onnxruntime_src/\S+:\d+ (?:\S+\([^)]*\) )?", "", text)
    if re.search(r"bad.alloc|failed to allocate", text, re.IGNORECASE):
        return MemoryError(f"ONNX Runtime could not allocate memory running {path}: {text}")
    return ModelError(
        f"encoder model {path} failed in ONNX Runtime on a batch of {windows} windows: {text}"
    )


def open_session(path: str, *, threads: int | None, missing_hint: str, prepack: bool = True) -> Any:
    """An ONNX Runtime CPU session for the model file ``path``; what every encoder opens.

    ``prepack`` False keeps ONNX Runtime from storing a second, pre-packed
    copy of the matrix-multiplication weights: for a model of HuBERT-large's
    size that copy costs as much memory as the weights and buys no measurable
    speed (docs/BENCHMARKS.md).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message ends with ``missing_hint``).
    ModelError
        If ``path`` is a directory or not a loadable ONNX model.
    ParameterError
        If ``threads`` is not a positive integer.
    """
    import onnxruntime as ort

    if not os.path.exists(path):
        raise FileNotFoundError(f"encoder model not found: {path}. {missing_hint}")
    if os.path.isdir(path):
        raise ModelError(f"encoder model path is a directory, not an ONNX file: {path}")
    if threads is not None:
        check_count(threads, "threads")
    options = ort.SessionOptions()
    # Fatal only: every error reaches the caller as an exception (ModelError),
    # so ONNX Runtime's own log line on stderr would only repeat it.
    options.log_severity_level = 4
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not prepack:
        options.add_session_config_entry("session.disable_prepacking", "1")
    try:
        return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime raises its own exception types
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load ONNX model {path}: {first_line}") from None


class OnnxEncoder:
    """SyncTalk_2D's AVE audio encoder on ONNX Runtime (CPU).

    The session is created once and reused; ``encode`` may be called from
    several threads at once (ONNX Runtime sessions are thread-safe).

    Parameters
    ----------
    model_path : str or os.PathLike
        An ONNX model taking one float32 (B, 1, 80, 16) input and returning
        one (B, 512) output. Input and output names are read from the model.
    batch_size : int, optional
        Windows per ``session.run`` call; `DEFAULT_BATCH_SIZE` by default.
        Results do not depend on it (tests check it bit for bit). A model
        whose input fixes the batch size (say 4) always gets batches of
        exactly that size, the last one padded with zero windows whose rows
        are dropped; ``batch_size`` is then ignored.
    threads : int, optional
        ONNX Runtime intra-op threads; ONNX Runtime's default (one per
        physical core) when None.

    Raises
    ------
    FileNotFoundError
        If ``model_path`` does not exist.
    ModelError
        If the file is not a loadable ONNX model or not a (B, 1, 80, 16) →
        (B, 512) encoder.

    Examples
    --------
    >>> enc = OnnxEncoder("models/audio_encoder.onnx")  # doctest: +SKIP
    >>> enc.encode(np.zeros((3, 1, 80, 16), np.float32)).shape  # doctest: +SKIP
    (3, 512)
    """

    feature_dim = FEATURE_DIM

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        batch_size: int | None = None,
        threads: int | None = None,
    ) -> None:
        path = os.fspath(model_path)
        if batch_size is not None:
            check_count(batch_size, "batch_size")
        self._session = open_session(
            path,
            threads=threads,
            missing_hint="Export yours with `synctalk-audio export --checkpoint"
            " audio_visual_encoder.pth --output model.onnx`, or make the random-weight test"
            " model with `python models/make_test_encoder.py`",
        )
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        self._check_signature(path, inputs, outputs)
        self.model_path = path
        self.input_name: str = inputs[0].name
        self.output_name: str = outputs[0].name
        #: The model's own batch size when its input fixes one, else None: then
        #: every call gets exactly that many windows (the last batch zero-padded).
        self.fixed_batch: int | None = _dims(inputs[0].shape)[0] or None
        self.batch_size: int = self.fixed_batch or batch_size or DEFAULT_BATCH_SIZE
        self.threads = threads
        self._sha256: str | None = None

    @staticmethod
    def _check_signature(path: str, inputs: list[Any], outputs: list[Any]) -> None:
        def shown(arg: Any) -> str:
            return f"'{arg.name}' {arg.type} {list(arg.shape)}"

        problem = None
        if len(inputs) != 1 or len(outputs) < 1:
            problem = f"{len(inputs)} inputs and {len(outputs)} outputs"
        else:
            in_dims, out_dims = _dims(inputs[0].shape), _dims(outputs[0].shape)
            if inputs[0].type != "tensor(float)":
                problem = f"input {shown(inputs[0])} is not float32"
            elif len(in_dims) != 4 or any(
                d is not None and d != want
                for d, want in zip(in_dims[1:], WINDOW_SHAPE, strict=False)
            ):
                problem = f"input {shown(inputs[0])}"
            elif len(out_dims) != 2 or out_dims[1] not in (None, FEATURE_DIM):
                problem = f"output {shown(outputs[0])}"
            elif outputs[0].type != "tensor(float)":
                raise ModelError(
                    f"model {path} outputs {outputs[0].type} features; a SyncTalk_2D encoder"
                    " outputs float32 (tensor(float)), and other types are not cast silently"
                )
        if problem is not None:
            raise ModelError(
                f"{path} is not a SyncTalk_2D AVE audio encoder: expected one float32 input"
                f" (B, 1, 80, 16) and a (B, 512) output, got {problem}"
            )

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Encode mel windows.

        Parameters
        ----------
        windows : numpy.ndarray
            float32 (B, 1, 80, 16), C order (`encoder_windows` output).

        Returns
        -------
        numpy.ndarray
            float32 (B, 512).

        Raises
        ------
        ModelError
            If the model returns NaN or infinite values (`check_features`).
        """
        if windows.ndim != 4 or windows.shape[1:] != WINDOW_SHAPE:
            raise ParameterError(f"windows must have shape (B, 1, 80, 16), got {windows.shape}")
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        out = np.empty((windows.shape[0], self.feature_dim), dtype=np.float32)
        for start in range(0, windows.shape[0], self.batch_size):
            batch = windows[start : start + self.batch_size]
            result = self._run(batch)
            if result.shape != (batch.shape[0], self.feature_dim):
                raise ModelError(
                    f"{self.model_path} returned shape {result.shape} for {batch.shape[0]}"
                    f" windows; expected ({batch.shape[0]}, {self.feature_dim})"
                )
            check_features(self.model_path, result, start)
            out[start : start + batch.shape[0]] = result
        return out

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """One ``session.run``; ONNX Runtime's failures become a ModelError naming the model.

        A model with a fixed batch size gets its last, shorter batch padded
        with zero windows and the padded rows dropped: each window's row does
        not depend on the other windows of its batch (the project's
        batch-size independence, tests/test_encoder_errors.py).
        """
        count = batch.shape[0]
        padded = self.fixed_batch - count if self.fixed_batch is not None else 0
        if padded > 0:
            batch = np.concatenate([batch, np.zeros((padded, *batch.shape[1:]), batch.dtype)])
        try:
            result: np.ndarray = self._session.run([self.output_name], {self.input_name: batch})[0]
        except MemoryError:
            raise
        except Exception as exc:  # ONNX Runtime raises its own exception types
            raise _run_error(self.model_path, batch.shape[0], exc) from exc
        return result[:count] if padded > 0 else result

    @property
    def sha256(self) -> str:
        """SHA-256 of the model file (computed once, on first use)."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self.model_path)
        return self._sha256

    def describe(self) -> dict[str, Any]:
        """Backend, model path and checksum, names and settings, for metadata.json."""
        import onnxruntime as ort

        return {
            "backend": "onnxruntime",
            "onnxruntime": ort.__version__,
            "path": os.path.abspath(self.model_path),
            "sha256": self.sha256,
            "input": self.input_name,
            "output": self.output_name,
            "batch_size": self.batch_size,
            "threads": self.threads,
        }
