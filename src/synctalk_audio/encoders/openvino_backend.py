"""The OpenVINO backend (CPU plugin), forced to exact float32.

Installed with the extra: ``pip install 'synctalk-audio[openvino]'``.

OpenVINO's CPU plugin computes in bfloat16 on its own on CPUs with
AVX512_BF16 or AMX unless told otherwise (an error of about 1e-2 on these
features); every model is compiled with ``INFERENCE_PRECISION_HINT`` f32,
so its rows agree with ONNX Runtime's within 1e-5 (tests/test_backends.py).

Compiling a model makes the CPU plugin install an alternate signal stack on
the calling thread, in memory of its own that a later model's teardown can
free while the thread still points at it; the next signal handled there
(SIGTERM, Ctrl-C: Python's handlers run on the alternate stack) then
crashes the process. Every compile and inference therefore puts the
thread's own alternate signal stack back (`_own_signal_stack`).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..errors import ParameterError
from .base import Backend, Port

__all__ = ["OpenVinoBackend", "OpenVinoSession"]

#: OpenVINO element types in ONNX's notation (`Port.type`).
_ONNX_TYPES = {
    "f32": "tensor(float)",
    "f64": "tensor(double)",
    "f16": "tensor(float16)",
    "bf16": "tensor(bfloat16)",
    "i64": "tensor(int64)",
    "i32": "tensor(int32)",
    "i8": "tensor(int8)",
    "u8": "tensor(uint8)",
    "boolean": "tensor(bool)",
}


class _StackT(ctypes.Structure):
    """``stack_t`` of ``sigaltstack(2)`` (Linux)."""

    _fields_ = [
        ("ss_sp", ctypes.c_void_p),
        ("ss_flags", ctypes.c_int),
        ("ss_size", ctypes.c_size_t),
    ]


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    """The C library of this process (opened once)."""
    return ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def _own_signal_stack() -> Iterator[None]:
    """Run the block, then give the thread back the alternate signal stack it had before.

    Linux only (``sigaltstack`` through libc); elsewhere the block just runs.
    """
    if not sys.platform.startswith("linux"):
        yield
        return
    libc = _libc()
    before = _StackT()
    saved = libc.sigaltstack(None, ctypes.byref(before)) == 0
    try:
        yield
    finally:
        if saved:
            libc.sigaltstack(ctypes.byref(before), None)


def _openvino() -> Any:
    """The ``openvino`` module, or a `ParameterError` naming the extra that installs it."""
    try:
        import openvino
    except ImportError:
        raise ParameterError(
            "backend 'openvino' needs the OpenVINO runtime, which is not installed: install it"
            " with `pip install 'synctalk-audio[openvino]'`, or use --backend onnxruntime"
        ) from None
    return openvino


def _port(output: Any) -> Port:
    names = output.get_names()
    name = output.get_any_name() if names else ""
    element = output.get_element_type().get_type_name()
    shape = output.get_partial_shape()
    dims: list[int | str | None] = []
    if shape.rank.is_static:
        dims = [d.get_length() if d.is_static else None for d in shape]
    return Port(name, _ONNX_TYPES.get(element, f"tensor({element})"), tuple(dims))


class OpenVinoSession:
    """A compiled OpenVINO model as a `Session`: one infer request per calling thread."""

    def __init__(self, model: Any, compiled: Any) -> None:
        self.compiled = compiled
        self.inputs = [_port(p) for p in model.inputs]
        self.outputs = [_port(p) for p in model.outputs]
        self._local = threading.local()

    def run(self, output: str, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """Infer ``feeds`` on this thread's request; a copy of output ``output``."""
        request = getattr(self._local, "request", None)
        with _own_signal_stack():
            if request is None:
                request = self._local.request = self.compiled.create_infer_request()
            request.infer(dict(feeds), share_inputs=False)
        return np.array(request.get_tensor(output).data, copy=True)


class OpenVinoBackend(Backend):
    """Models on OpenVINO's CPU plugin, in float32 (``INFERENCE_PRECISION_HINT`` f32).

    ``threads`` is OpenVINO's ``INFERENCE_NUM_THREADS`` per inference;
    several inferences at once (wenet's chunks) get one stream each.
    """

    name = "openvino"
    label = "OpenVINO"
    error_noise = (
        r"Exception from \S+:\d+:\s*",
        r"Check '[^']*' failed at \S+:\d+:\s*",
    )

    def version(self) -> str:
        """``openvino.__version__`` (the part before the build tag)."""
        return str(_openvino().__version__).split("-")[0]

    def settings(self) -> dict[str, Any]:
        """The precision every model is compiled with."""
        return {"precision": "f32"}

    def load(
        self,
        path: str,
        *,
        threads: int | None,
        concurrency: int = 1,
        prepack: bool = True,
    ) -> OpenVinoSession:
        """Read the ONNX file and compile it for the CPU in float32."""
        ov = _openvino()
        core = ov.Core()
        try:
            model = core.read_model(path)
        except Exception as exc:  # OpenVINO raises its own exception types
            raise self.load_error(path, exc) from None
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": str(max(1, concurrency)),
        }
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = str(threads * max(1, concurrency))
        try:
            with _own_signal_stack():
                compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises its own exception types
            raise self.load_error(path, exc) from None
        return OpenVinoSession(model, compiled)

    def load_error(self, path: str, exc: BaseException) -> Any:
        """The base message without OpenVINO's source locations."""
        import re

        text = " ".join(str(exc).split())
        for pattern in self.error_noise:
            text = re.sub(pattern, "", text).strip()
        return super().load_error(path, RuntimeError(text or type(exc).__name__))
