"""Encoders and their backends, registered in one place.

A feature mode names the kind of model it runs (`FeatureMode.model_kind`,
one of `KINDS`); `open_encoder` loads a model file of that kind with a
backend of `BACKENDS` and returns its `Encoder`. The kinds
(`encoders.kinds`) are written once, on the small `Session` a backend
gives; a new backend is one module defining a `Backend` subclass and one
line in `BACKENDS` (or a `register_backend` call, for a backend defined
outside the package).
"""

from __future__ import annotations

import os

from ..errors import ParameterError
from .base import (
    DEFAULT_BATCH_SIZE,
    Backend,
    Encoder,
    ModelKind,
    Port,
    Session,
    check_features,
    file_sha256,
    is_encoder,
)
from .kinds import KINDS, AveEncoder, HubertEncoder, WenetEncoder
from .onnxruntime_backend import OnnxRuntimeBackend
from .openvino_backend import OpenVinoBackend

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_BATCH_SIZE",
    "KINDS",
    "AveEncoder",
    "Backend",
    "Encoder",
    "HubertEncoder",
    "ModelKind",
    "Port",
    "Session",
    "WenetEncoder",
    "check_features",
    "file_sha256",
    "get_backend",
    "get_kind",
    "is_encoder",
    "open_encoder",
    "register_backend",
    "runtime_versions",
]

#: name -> backend: what ``--backend`` and ``backend=`` accept.
BACKENDS: dict[str, Backend] = {
    "onnxruntime": OnnxRuntimeBackend(),
    "openvino": OpenVinoBackend(),
}

#: The backend used when none is named (docs/DECISIONS.md says why).
DEFAULT_BACKEND = "onnxruntime"


def register_backend(backend: Backend) -> Backend:
    """Add ``backend`` to `BACKENDS` under its name (for backends defined outside the package)."""
    if not isinstance(backend, Backend) or not backend.name:
        raise ValueError("an encoder backend is a Backend instance with a name")
    BACKENDS[backend.name] = backend
    return backend


def get_backend(backend: Backend | str | None = None) -> Backend:
    """The backend called ``backend`` (None: `DEFAULT_BACKEND`; a `Backend` as it is).

    Raises
    ------
    ParameterError
        If no backend of that name is registered; the message lists those that are.
    """
    if isinstance(backend, Backend):
        return backend
    name = DEFAULT_BACKEND if backend is None else backend
    found = BACKENDS.get(name) if isinstance(name, str) else None
    if found is None:
        raise ParameterError(f"unknown backend '{backend}': expected one of {', '.join(BACKENDS)}")
    return found


def get_kind(kind: ModelKind | str) -> ModelKind:
    """The model kind called ``kind`` (a `ModelKind` as it is)."""
    if isinstance(kind, ModelKind):
        return kind
    if kind not in KINDS:
        raise ParameterError(f"unknown model kind '{kind}': expected one of {', '.join(KINDS)}")
    return KINDS[kind]


def open_encoder(
    kind: ModelKind | str,
    path: str | os.PathLike[str],
    *,
    backend: Backend | str | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
) -> Encoder:
    """Load the model file ``path`` of ``kind`` with ``backend``; its `Encoder`.

    Parameters
    ----------
    kind : ModelKind or str
        The kind of model (``ave``, ``hubert``, ``wenet``; `KINDS`).
    path : str or os.PathLike
        The model file.
    backend : Backend or str, optional
        A backend of `BACKENDS` or its name; `DEFAULT_BACKEND` when None.
    batch_size : int, optional
        Inputs per runtime call where the kind batches (`ModelKind.batch_size`).
    threads : int, optional
        The encoder's threads (the kind decides how it uses them).

    Returns
    -------
    Encoder
        Its ``kind`` and ``batch_size`` say what it runs and how.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelError
        If the model does not load or is not of ``kind``.
    ParameterError
        For an unknown backend or kind, a bad ``batch_size`` or ``threads``,
        or a backend whose runtime is not installed.

    Examples
    --------
    >>> enc = open_encoder("ave", "models/audio_encoder.onnx", backend="openvino")  # doctest: +SKIP
    >>> enc.describe()["backend"], enc.batch_size  # doctest: +SKIP
    ('openvino', 32)
    """
    found = get_kind(kind)
    runtime = get_backend(backend)
    return found.open(runtime, os.fspath(path), batch_size=batch_size, threads=threads)


def runtime_versions(backend: Backend | str | None = None) -> dict[str, str]:
    """The versions metadata.json lists for ``backend`` (None: `DEFAULT_BACKEND`).

    A name that is not registered (an encoder made outside the package)
    lists none.
    """
    if isinstance(backend, str) and backend not in BACKENDS:
        return {}
    return get_backend(backend).versions()
