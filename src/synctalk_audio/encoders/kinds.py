"""The three kinds of model the feature modes run, on any `Backend`.

Each kind checks a loaded model's inputs and outputs (a wrong model is a
`ModelError` saying what the mode expects) and runs it:

``ave`` (`AveEncoder`)
    SyncTalk_2D's AVE ``AudioEncoder`` exported to ONNX: one float32 input
    (B, 1, 80, 16) -> (B, 512); batches of ``batch_size`` windows, or of the
    model's own batch size if its input fixes one (the last one zero-padded).
``hubert`` (`HubertEncoder`)
    HuBERT exported to ONNX: one normalised chunk (1, length >= 400) ->
    its ``last_hidden_state`` rows (frames, 1024) at 50 Hz; one chunk per call.
``wenet`` (`WenetEncoder`)
    Ultralight-Digital-Human's WeNet ``encoder.onnx``: fbank chunks
    (B, 1, 67, 80) -> rows (B, 16, 512), each chunk run alone with offset 100
    and zero caches (shapes read from the model), ``threads`` chunks at once.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import ModelError, ParameterError
from ..limits import check_count, usable_cpus
from ..options import FbankOptions
from .base import (
    DEFAULT_BATCH_SIZE,
    Backend,
    ModelKind,
    Port,
    Session,
    check_features,
    file_sha256,
)

__all__ = [
    "KINDS",
    "AveEncoder",
    "AveKind",
    "HubertEncoder",
    "HubertKind",
    "WenetEncoder",
    "WenetKind",
]

# -- ave ------------------------------------------------------------------------

#: One ave encoder input: a mel window.
WINDOW_SHAPE = (1, 80, 16)
#: Values in one ave output row.
FEATURE_DIM = 512

# -- hubert ---------------------------------------------------------------------

#: Width of ``last_hidden_state`` (hubert-large).
HIDDEN_SIZE = 1024
#: HuBERT's receptive field and stride, in 16 kHz samples.
MIN_SAMPLES = 400
STRIDE = 320
HUBERT_EXPORT_HINT = (
    "export your HuggingFace checkpoint directory with `synctalk-audio export --mode hubert"
    " --checkpoint DIR --output hubert.onnx`"
)

# -- wenet ----------------------------------------------------------------------

#: Fbank rows per WeNet encoder chunk.
CHUNK_FRAMES = 67
#: The ``offset`` input upstream feeds with every chunk.
OFFSET = 100
#: The input names upstream passes to the model, in its order.
INPUT_NAMES = ("chunk", "offset", "att_cache", "cnn_cache")
FBANK_BINS = FbankOptions().num_bins
#: One wenet output row.
WENET_ROW_SHAPE = (16, 512)
WENET_MISSING_HINT = (
    "Use Ultralight-Digital-Human's encoder.onnx (see its README), or make the random-weight"
    " test model with `python models/make_test_wenet.py`"
)

FLOAT = "tensor(float)"


class _KindEncoder:
    """What the three encoders share: the session, the facts and `describe`."""

    kind: ModelKind
    batch_size: int

    def __init__(self, backend: Backend, session: Session, path: str, threads: int | None) -> None:
        self.backend = backend
        self._session = session
        self.model_path = path
        self.threads = threads
        self._sha256: str | None = None

    @classmethod
    def _open(
        cls, model_path: str | os.PathLike[str], backend: Backend | str | None, threads: int | None
    ) -> tuple[str, Backend, Session]:
        """The path, the backend and the model loaded on it with the kind's thread layout:
        the loading step every kind's encoder starts with."""
        from . import get_backend

        path = os.fspath(model_path)
        runtime = get_backend(backend)
        return path, runtime, _load(runtime, cls.kind, path, threads=threads)

    @property
    def sha256(self) -> str:
        """SHA-256 of the model file (computed once, on first use)."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self.model_path)
        return self._sha256

    def _facts(self) -> dict[str, Any]:
        """The kind's own facts for `describe` (input and output names, ...)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Backend and version, model path and checksum, names and settings, for metadata.json."""
        return {
            "backend": self.backend.name,
            **self.backend.versions(),
            **self.backend.settings(),
            "path": os.path.abspath(self.model_path),
            "sha256": self.sha256,
            **self._facts(),
            "batch_size": self.batch_size,
            "threads": self.threads,
        }

    def _run(self, output: str, feeds: dict[str, np.ndarray], windows: int) -> np.ndarray:
        """One inference; the runtime's failures become the backend's `run_error`."""
        try:
            return self._session.run(output, feeds)
        except MemoryError:
            raise
        except Exception as exc:  # each runtime raises its own exception types
            raise self.backend.run_error(self.model_path, windows, exc) from exc


# -- ave ------------------------------------------------------------------------


class AveKind(ModelKind):
    """SyncTalk_2D's AVE audio encoder: (B, 1, 80, 16) -> (B, 512), batched."""

    name = "ave"
    row_shape = (FEATURE_DIM,)
    missing_hint = (
        "Export yours with `synctalk-audio export --checkpoint"
        " audio_visual_encoder.pth --output model.onnx`, or make the random-weight test"
        " model with `python models/make_test_encoder.py`"
    )

    def batch_size(self, requested: int | None) -> int:
        """``requested``, or `DEFAULT_BATCH_SIZE` (a model fixing its batch size overrides it)."""
        if requested is not None:
            check_count(requested, "batch_size")
            return int(requested)
        return DEFAULT_BATCH_SIZE

    @staticmethod
    def check_ports(path: str, inputs: list[Port], outputs: list[Port]) -> None:
        """`ModelError` unless one float32 input (B, 1, 80, 16) and a float32 (B, 512) output."""
        problem = None
        if len(inputs) != 1 or len(outputs) < 1:
            problem = f"{len(inputs)} inputs and {len(outputs)} outputs"
        else:
            in_dims, out_dims = inputs[0].dims, outputs[0].dims
            if inputs[0].type != FLOAT:
                problem = f"input {inputs[0].shown()} is not float32"
            elif len(in_dims) != 4 or any(
                d is not None and d != want
                for d, want in zip(in_dims[1:], WINDOW_SHAPE, strict=False)
            ):
                problem = f"input {inputs[0].shown()}"
            elif len(out_dims) != 2 or out_dims[1] not in (None, FEATURE_DIM):
                problem = f"output {outputs[0].shown()}"
            elif outputs[0].type != FLOAT:
                raise ModelError(
                    f"model {path} outputs {outputs[0].type} features; a SyncTalk_2D encoder"
                    " outputs float32 (tensor(float)), and other types are not cast silently"
                )
        if problem is not None:
            raise ModelError(
                f"{path} is not a SyncTalk_2D AVE audio encoder: expected one float32 input"
                f" (B, 1, 80, 16) and a (B, 512) output, got {problem}"
            )

    def open(
        self, backend: Backend, path: str, *, batch_size: int | None, threads: int | None
    ) -> AveEncoder:
        """`AveEncoder` of ``path`` on ``backend``, its signature checked."""
        return AveEncoder(path, backend=backend, batch_size=batch_size, threads=threads)


class AveEncoder(_KindEncoder):
    """SyncTalk_2D's AVE audio encoder on a backend (ONNX Runtime by default).

    The model is loaded once and reused; ``encode`` may be called from
    several threads at once.

    Parameters
    ----------
    model_path : str or os.PathLike
        An ONNX model taking one float32 (B, 1, 80, 16) input and returning
        one (B, 512) output. Input and output names are read from the model.
    backend : Backend or str, optional
        The runtime (`encoders.BACKENDS`); `encoders.DEFAULT_BACKEND` when None.
    batch_size : int, optional
        Windows per runtime call; `DEFAULT_BATCH_SIZE` by default.
        Results do not depend on it (tests check it bit for bit). A model
        whose input fixes the batch size (say 4) always gets batches of
        exactly that size, the last one padded with zero windows whose rows
        are dropped; ``batch_size`` is then ignored.
    threads : int, optional
        Threads of one runtime call; the runtime's default when None.

    Raises
    ------
    FileNotFoundError
        If ``model_path`` does not exist.
    ModelError
        If the file is not a loadable ONNX model or not a (B, 1, 80, 16) →
        (B, 512) encoder.

    Examples
    --------
    >>> enc = AveEncoder("models/audio_encoder.onnx")  # doctest: +SKIP
    >>> enc.encode(np.zeros((3, 1, 80, 16), np.float32)).shape  # doctest: +SKIP
    (3, 512)
    """

    kind: ModelKind = AveKind()

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        backend: Backend | str | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
    ) -> None:
        requested = self.kind.batch_size(batch_size)
        path, runtime, session = self._open(model_path, backend, threads)
        inputs, outputs = list(session.inputs), list(session.outputs)
        AveKind.check_ports(path, inputs, outputs)
        super().__init__(runtime, session, path, threads)
        self.input_name: str = inputs[0].name
        self.output_name: str = outputs[0].name
        #: The model's own batch size when its input fixes one, else None: then
        #: every call gets exactly that many windows (the last batch zero-padded).
        self.fixed_batch: int | None = inputs[0].dims[0] or None
        self.batch_size = self.fixed_batch or requested

    def _facts(self) -> dict[str, Any]:
        return {"input": self.input_name, "output": self.output_name}

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
        out = np.empty((windows.shape[0], FEATURE_DIM), dtype=np.float32)
        for start in range(0, windows.shape[0], self.batch_size):
            batch = windows[start : start + self.batch_size]
            result = self._run_batch(batch)
            if result.shape != (batch.shape[0], FEATURE_DIM):
                raise ModelError(
                    f"{self.model_path} returned shape {result.shape} for {batch.shape[0]}"
                    f" windows; expected ({batch.shape[0]}, {FEATURE_DIM})"
                )
            check_features(self.model_path, result, start)
            out[start : start + batch.shape[0]] = result
        return out

    def _run_batch(self, batch: np.ndarray) -> np.ndarray:
        """One runtime call; a fixed-batch model gets its last batch zero-padded.

        Each window's row does not depend on the other windows of its batch
        (the project's batch-size independence, tests/test_encoder_errors.py),
        so the padded rows are dropped.
        """
        count = batch.shape[0]
        padded = self.fixed_batch - count if self.fixed_batch is not None else 0
        if padded > 0:
            batch = np.concatenate([batch, np.zeros((padded, *batch.shape[1:]), batch.dtype)])
        result = self._run(self.output_name, {self.input_name: batch}, batch.shape[0])
        return result[:count] if padded > 0 else result


# -- hubert ---------------------------------------------------------------------


class HubertKind(ModelKind):
    """HuBERT: one chunk (1, length) -> (1, frames, 1024) ``last_hidden_state``."""

    name = "hubert"
    row_shape = (HIDDEN_SIZE,)
    missing_hint = HUBERT_EXPORT_HINT.capitalize()
    # No pre-packed copy of the weights: 1.8 GiB peak instead of 2.5 GiB
    # for hubert-large on 60 s of speech, at the same speed.
    prepack = False

    def check_path(self, path: str) -> None:
        """A directory is most likely a checkpoint not exported yet: say how to export it."""
        if os.path.isdir(path):
            raise ModelError(
                f"{path} is a directory; --mode hubert runs an ONNX file: {HUBERT_EXPORT_HINT}"
            )
        super().check_path(path)

    @staticmethod
    def check_ports(path: str, inputs: list[Port], outputs: list[Port]) -> None:
        """`ModelError` unless one float32 (batch, length) input, a (batch, frames, 1024) output."""
        problem = None
        if len(inputs) != 1 or not outputs:
            names = ", ".join(a.shown() for a in inputs)
            problem = f"{len(inputs)} inputs ({names})"
        elif inputs[0].type != FLOAT or len(inputs[0].dims) != 2:
            problem = f"input {inputs[0].shown()}"
        elif (
            outputs[0].type != FLOAT
            or len(outputs[0].dims) != 3
            or outputs[0].dims[2] not in (None, HIDDEN_SIZE)
        ):
            problem = f"output {outputs[0].shown()}"
        if problem is not None:
            raise ModelError(
                f"{path} is not a HuBERT model: mode 'hubert' expects one float32 input"
                f" (batch, length) of 16 kHz samples and a float32 (batch, frames, {HIDDEN_SIZE})"
                f" last_hidden_state output, got {problem}; {HUBERT_EXPORT_HINT}"
            )

    def open(
        self, backend: Backend, path: str, *, batch_size: int | None, threads: int | None
    ) -> HubertEncoder:
        """`HubertEncoder` (``batch_size`` unused: one chunk per run)."""
        return HubertEncoder(path, backend=backend, threads=threads)


class HubertEncoder(_KindEncoder):
    """A HuBERT ONNX model (``synctalk-audio export --mode hubert``) on a backend.

    ``encode`` takes ONE normalised chunk, float32 (1, length) with length
    >= 400, and returns its ``last_hidden_state`` rows, float32
    (frames, 1024) at 50 Hz.

    Parameters
    ----------
    model_path : str or os.PathLike
        The exported model.
    backend : Backend or str, optional
        The runtime; `encoders.DEFAULT_BACKEND` when None.
    threads : int, optional
        Threads of one runtime call; the runtime's default when None.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ModelError
        If it is a directory (a checkpoint not exported yet), not loadable,
        or not a (batch, length) -> (batch, frames, 1024) float32 model.
    """

    kind: ModelKind = HubertKind()
    batch_size = 1

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        backend: Backend | str | None = None,
        threads: int | None = None,
    ) -> None:
        path, runtime, session = self._open(model_path, backend, threads)
        inputs, outputs = list(session.inputs), list(session.outputs)
        HubertKind.check_ports(path, inputs, outputs)
        super().__init__(runtime, session, path, threads)
        self.input_name: str = inputs[0].name
        self.output_name: str = outputs[0].name

    def _facts(self) -> dict[str, Any]:
        return {"input": self.input_name, "output": self.output_name}

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """One normalised chunk (1, length) -> its rows (frames, 1024), float32, finite."""
        if windows.ndim != 2 or windows.shape[0] != 1 or windows.shape[1] < MIN_SAMPLES:
            raise ParameterError(
                f"a HuBERT chunk must have shape (1, length >= {MIN_SAMPLES}), got {windows.shape}"
            )
        chunk = np.ascontiguousarray(windows, dtype=np.float32)
        out = self._run(self.output_name, {self.input_name: chunk}, 1)
        frames = (chunk.shape[1] - MIN_SAMPLES) // STRIDE + 1
        if out.shape != (1, frames, HIDDEN_SIZE) or out.dtype != np.float32:
            raise ModelError(
                f"{self.model_path} returned {out.dtype} {out.shape} for {chunk.shape[1]}"
                f" samples; a HuBERT model returns float32 (1, {frames}, {HIDDEN_SIZE})"
            )
        if not np.isfinite(out).all():
            raise ModelError(f"model {self.model_path} produced NaN/inf: not a usable HuBERT")
        return np.asarray(out[0])


# -- wenet ----------------------------------------------------------------------


class WenetKind(ModelKind):
    """WeNet's encoder: chunk (1, 1, 67, 80), offset and zero caches -> (1, 16, 512)."""

    name = "wenet"
    row_shape = WENET_ROW_SHAPE
    missing_hint = WENET_MISSING_HINT

    def session_threads(self, threads: int | None) -> tuple[int | None, int]:
        """One thread per run, ``threads`` runs at once (every usable CPU by default).

        The chunks are independent (zero caches), so running ``threads`` of
        them at once uses the cores far better than splitting one small
        chunk's operators over them, and every chunk's arithmetic is the
        same whatever ``threads`` is.
        """
        return 1, threads if threads is not None else usable_cpus()

    @staticmethod
    def zero_feeds(path: str, inputs: list[Port]) -> dict[str, np.ndarray]:
        """offset and zero caches from the model's declared inputs; `ModelError` if not WeNet's."""
        by_name = {i.name: i for i in inputs}
        got = ", ".join(i.shown() for i in inputs)
        expected = (
            f"{path} is not a WeNet encoder of Ultralight-Digital-Human's kind (encoder.onnx):"
            " mode 'wenet' expects inputs 'chunk' float32 (1, 1, 67, 80), 'offset' int64 (1,),"
            f" 'att_cache' and 'cnn_cache' float32 of fixed shapes; got {got}"
        )
        if set(by_name) != set(INPUT_NAMES):
            raise ModelError(expected)
        chunk = by_name["chunk"]
        dims = chunk.dims
        if (
            chunk.type != FLOAT
            or len(dims) != 4
            or dims[2:]
            not in (
                [CHUNK_FRAMES, FBANK_BINS],
                [None, FBANK_BINS],
                [None, None],
            )
        ):
            raise ModelError(expected)
        if by_name["offset"].type != "tensor(int64)":
            raise ModelError(expected)
        feeds = {"offset": np.full((1,), OFFSET, np.int64)}
        for name in ("att_cache", "cnn_cache"):
            port = by_name[name]
            if port.type != FLOAT or not all(isinstance(d, int) for d in port.shape):
                raise ModelError(expected)
            feeds[name] = np.zeros([int(d) for d in port.shape if d is not None], np.float32)
        return feeds

    def open(
        self, backend: Backend, path: str, *, batch_size: int | None, threads: int | None
    ) -> WenetEncoder:
        """`WenetEncoder` (``batch_size`` is not used: one chunk per run)."""
        return WenetEncoder(path, backend=backend, threads=threads)


class WenetEncoder(_KindEncoder):
    """Ultralight-Digital-Human's WeNet ``encoder.onnx`` on a backend, one chunk per run.

    Each chunk (1, 1, 67, 80) is run with ``offset`` [100] and zero
    ``att_cache`` / ``cnn_cache`` (shapes read from the model; upstream's
    caches are not carried between chunks); output 0 ``[0]`` is the chunk's
    (16, 512) row.

    Parameters
    ----------
    model_path : str or os.PathLike
        Ultralight-Digital-Human's ``encoder.onnx`` (or a model with its
        inputs and outputs).
    backend : Backend or str, optional
        The runtime; `encoders.DEFAULT_BACKEND` when None.
    threads : int, optional
        Chunks encoded at once, each on one runtime thread; the usable CPUs
        by default. The rows do not depend on it (tests check it bit for bit).

    Raises
    ------
    FileNotFoundError
        If the model file does not exist.
    ModelError
        If it does not load, or is not of this kind (e.g. an ``ave`` encoder).
    """

    kind: ModelKind = WenetKind()
    batch_size = 1

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        backend: Backend | str | None = None,
        threads: int | None = None,
    ) -> None:
        if threads is not None:
            check_count(threads, "threads")
        path, runtime, session = self._open(model_path, backend, threads)
        _, concurrency = self.kind.session_threads(threads)
        super().__init__(runtime, session, path, concurrency)
        self._feeds = WenetKind.zero_feeds(path, list(session.inputs))
        self.output_name: str = session.outputs[0].name

    def _facts(self) -> dict[str, Any]:
        return {
            "input": "chunk",
            "output": self.output_name,
            "offset": OFFSET,
            "caches": {k: list(v.shape) for k, v in self._feeds.items() if k != "offset"},
        }

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Encode fbank chunks (B, 1, 67, 80) into rows (B, 16, 512), float32."""
        if windows.ndim != 4 or windows.shape[1:] != (1, CHUNK_FRAMES, FBANK_BINS):
            raise ParameterError(
                f"chunks must have shape (B, 1, {CHUNK_FRAMES}, {FBANK_BINS}), got {windows.shape}"
            )
        chunks = np.ascontiguousarray(windows, dtype=np.float32)
        out = np.empty((chunks.shape[0], *WENET_ROW_SHAPE), np.float32)
        workers = min(self.threads or 1, chunks.shape[0])
        if workers <= 1:
            for b in range(chunks.shape[0]):
                out[b] = self._encode_one(chunks, b)
            return out
        # The runtimes release the GIL while they run; each thread writes its own rows.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            rows = pool.map(lambda b: self._encode_one(chunks, b), range(len(chunks)))
            for b, row in enumerate(rows):
                out[b] = row
        return out

    def _encode_one(self, chunks: np.ndarray, b: int) -> np.ndarray:
        """Row (16, 512) of chunk ``b``: one run with the zero caches."""
        feeds = dict(self._feeds, chunk=chunks[b : b + 1])
        result = self._run(self.output_name, feeds, 1)
        if result.ndim < 1 or result.shape[1:] != WENET_ROW_SHAPE:
            raise ModelError(
                f"{self.model_path} returned shape {result.shape} for a chunk; mode 'wenet'"
                " expects (1, 16, 512)"
            )
        check_features(self.model_path, result[:1].reshape(1, -1), b)
        return np.asarray(result[0])


def _load(backend: Backend, kind: ModelKind, path: str, *, threads: int | None) -> Session:
    """The model at ``path`` loaded by ``backend`` with the kind's thread layout."""
    kind.check_path(path)
    if threads is not None:
        check_count(threads, "threads")
    per_run, concurrency = kind.session_threads(threads)
    return backend.load(path, threads=per_run, concurrency=concurrency, prepack=kind.prepack)


#: name -> kind: the models the modes run (`FeatureMode.model_kind`).
KINDS: dict[str, ModelKind] = {
    kind.name: kind for kind in (AveEncoder.kind, HubertEncoder.kind, WenetEncoder.kind)
}
