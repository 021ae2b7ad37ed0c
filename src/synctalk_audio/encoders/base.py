"""What every encoder backend shares: the protocols, the model facts, checks and messages.

An encoder backend (ONNX Runtime, OpenVINO, ...) is a `Backend`: it loads a
model file into a `Session` that names its inputs and outputs (`Port`) and
runs them. Everything else is written once, here and in `encoders.kinds`:
which inputs and outputs a kind of model must have (`ModelKind`), the batch
size a model allows, the output checks (`check_features`), the model's
checksum (`file_sha256`), the facts for metadata.json and the translation of
a runtime's failure into one clear message (`Backend.run_error`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ModelError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Backend",
    "Encoder",
    "ModelKind",
    "Port",
    "Session",
    "check_features",
    "check_model_path",
    "file_sha256",
    "is_encoder",
]

#: Windows per encoder call for models that take batches (``ave``). Measured on
#: 2 cores (docs/BENCHMARKS.md): the time per window is flat from about 16
#: upwards; 64 is upstream's batch.
DEFAULT_BATCH_SIZE = 32


@runtime_checkable
class Encoder(Protocol):
    """What the engines need of an encoder.

    ``encode`` maps a batch of the mode's encoder inputs (B, ...) to float32
    rows (B, *kind.row_shape); for ``ave``, mel windows (B, 1, 80, 16) to
    (B, 512). The engines call only ``encode`` and ``describe``; ``kind``
    and ``batch_size`` are the facts every backend's encoders give.
    """

    @property
    def kind(self) -> ModelKind:
        """The kind of model it runs (`ModelKind`): its inputs, rows and batching."""
        ...

    @property
    def batch_size(self) -> int:
        """Encoder inputs per runtime call."""
        ...

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Encode a float32 batch (B, ...) into float32 rows (B, *row_shape)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Facts for metadata.json: backend and version, model path, checksum, settings."""
        ...


def is_encoder(obj: object) -> bool:
    """Whether ``obj`` can serve as an encoder: it has ``encode`` and ``describe``.

    Objects made outside the package (a wrapper, a toy model) need only the
    two methods the engines call.
    """
    return callable(getattr(obj, "encode", None)) and callable(getattr(obj, "describe", None))


@dataclasses.dataclass(frozen=True)
class Port:
    """One input or output of a loaded model, as every backend reports it.

    Attributes
    ----------
    name : str
        Its name in the model.
    type : str
        Its element type in ONNX's notation: ``tensor(float)`` (float32),
        ``tensor(double)``, ``tensor(int64)``, ...
    shape : tuple
        Its dimensions: an int where the model fixes one, else the
        dimension's symbolic name (str) or None.
    """

    name: str
    type: str
    shape: tuple[int | str | None, ...]

    @property
    def dims(self) -> list[int | None]:
        """The dimensions with every unfixed one as None."""
        return [d if isinstance(d, int) else None for d in self.shape]

    def shown(self) -> str:
        """``'name' type [dims]`` for messages."""
        return f"'{self.name}' {self.type} {list(self.shape)}"


class Session(Protocol):
    """A model loaded by a backend: its ports, and one inference per `run` call.

    ``run`` may be called from several threads at once.
    """

    @property
    def inputs(self) -> Sequence[Port]:
        """The model's inputs, in its order."""
        ...

    @property
    def outputs(self) -> Sequence[Port]:
        """The model's outputs, in its order."""
        ...

    def run(self, output: str, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """The output ``output`` for the inputs ``feeds`` (name -> array)."""
        ...


class Backend:
    """An encoder backend: loads model files into `Session` objects.

    A new backend subclasses this, sets `name` and `label`, and defines
    `version` and `load`; `encoders.register_backend` (or one line in
    `encoders.BACKENDS`) makes it available to ``--backend`` and
    ``backend=``. The kinds of model (`encoders.kinds`) run on any backend.

    Attributes
    ----------
    name : str
        Its name for ``--backend`` and in metadata.json.
    label : str
        How messages name the runtime ("ONNX Runtime").
    error_noise : tuple of str
        Regular expressions removed from the runtime's error text (status
        prefixes, C++ source locations) by `run_error`.
    """

    name: str = ""
    label: str = ""
    error_noise: tuple[str, ...] = ()

    def version(self) -> str:
        """The runtime's version, for metadata.json."""
        raise NotImplementedError

    def versions(self) -> dict[str, str]:
        """The versions metadata.json lists for this backend (name -> version)."""
        return {self.name: self.version()}

    def load(
        self,
        path: str,
        *,
        threads: int | None,
        concurrency: int = 1,
        prepack: bool = True,
    ) -> Session:
        """Load the model file ``path`` (its existence is checked already).

        Parameters
        ----------
        path : str
            The model file.
        threads : int or None
            Threads one inference may use; the runtime's default when None.
        concurrency : int
            Inferences the caller runs at once (each from its own thread).
        prepack : bool
            False asks the runtime not to keep a second, re-laid-out copy of
            large weights where it has that choice.

        Raises
        ------
        ModelError
            If the file is not a model this runtime loads.
        """
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The backend's own settings for metadata.json (empty by default)."""
        return {}

    def run_error(self, path: str, windows: int, exc: BaseException) -> BaseException:
        """The exception to raise for the runtime failing to run ``path`` on a batch.

        The runtime's message on one line, without the patterns of
        `error_noise`; a `MemoryError` when it could not allocate memory,
        else a `ModelError` naming the model, the runtime and the batch.
        """
        text = " ".join(str(exc).split()) or type(exc).__name__
        for pattern in self.error_noise:
            text = re.sub(pattern, "", text).strip()
        if re.search(r"bad.alloc|failed to allocate|out of memory", text, re.IGNORECASE):
            return MemoryError(f"{self.label} could not allocate memory running {path}: {text}")
        return ModelError(
            f"encoder model {path} failed in {self.label} on a batch of {windows} windows: {text}"
        )

    def load_error(self, path: str, exc: BaseException) -> ModelError:
        """The `ModelError` for the runtime refusing to load ``path``: its first line."""
        text = str(exc).strip()
        first_line = text.splitlines()[0] if text else type(exc).__name__
        suffix = "" if self.name == "onnxruntime" else f" in {self.label}"
        return ModelError(f"cannot load ONNX model {path}{suffix}: {first_line}")

    def __repr__(self) -> str:
        return f"<encoder backend {self.name!r}>"


class ModelKind:
    """One kind of model a feature mode runs: its inputs, outputs and batching.

    Subclasses (`encoders.kinds`) check a loaded model's ports
    (`ModelKind.check_ports`) and build the `Encoder` that runs it on any
    `Backend`.

    Attributes
    ----------
    name : str
        The kind's name (``ave``, ``hubert``, ``wenet``); the mode of that name uses it.
    row_shape : tuple of int
        Shape of one output row of `Encoder.encode` (ave (512,), hubert
        (1024,) per 50 Hz row, wenet (16, 512)).
    missing_hint : str
        What to do when the model file is missing (ends the message).
    """

    name: str = ""
    row_shape: tuple[int, ...] = ()
    missing_hint: str = ""

    def batch_size(self, requested: int | None) -> int:
        """Encoder inputs per runtime call for ``requested`` (None: the kind's default).

        Decided without opening a model; a model that fixes its batch size
        overrides it (`Encoder.batch_size`). By default one input per call.
        """
        return 1

    def check_path(self, path: str) -> None:
        """`check_model_path` with the kind's hint; a kind may refuse more (hubert: a directory)."""
        check_model_path(path, self.missing_hint)

    def session_threads(self, threads: int | None) -> tuple[int | None, int]:
        """(threads per inference, inferences at once) for the engine's ``threads``."""
        return threads, 1

    #: Whether the runtime may keep a pre-packed copy of the weights.
    prepack: bool = True

    def open(
        self,
        backend: Backend,
        path: str,
        *,
        batch_size: int | None,
        threads: int | None,
    ) -> Encoder:
        """Load ``path`` with ``backend``, check it is of this kind, return its `Encoder`."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<model kind {self.name!r}>"


def check_model_path(path: str, missing_hint: str) -> None:
    """`FileNotFoundError` (ending with ``missing_hint``) or `ModelError` for a directory."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"encoder model not found: {path}. {missing_hint}")
    if os.path.isdir(path):
        raise ModelError(f"encoder model path is a directory, not an ONNX file: {path}")


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
        The (B, ...) output of one batch.
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
    bad_rows = ~np.isfinite(features.reshape(features.shape[0], -1)).all(axis=1)
    if bad_rows.any():
        bad = np.flatnonzero(bad_rows) + first
        raise ModelError(
            f"model {model} produced NaN/inf for windows {bad[0]}..{bad[-1]}"
            f" ({bad.size} windows); it is not a usable encoder"
        )
