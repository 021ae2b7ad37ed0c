"""The ONNX Runtime backend (CPU execution provider): the default.

Thread spinning: ONNX Runtime's intra-op threads keep spinning between
operators by default, which is fastest on an idle machine but burns the
cores other processes (and the other workers of a job) need.
`ALLOW_SPINNING` is False: on a shared 2-core machine the median time per
window was lower with spinning off (docs/BENCHMARKS.md, docs/DECISIONS.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Backend, Port

__all__ = ["ALLOW_SPINNING", "OnnxRuntimeBackend", "OnnxRuntimeSession"]

#: Whether the intra-op threads spin while waiting for work (see the module docstring).
ALLOW_SPINNING = False


class OnnxRuntimeSession:
    """An ``onnxruntime.InferenceSession`` as a `Session` (thread-safe runs)."""

    def __init__(self, session: Any) -> None:
        #: The ONNX Runtime session itself.
        self.session = session
        self.inputs = [Port(a.name, a.type, tuple(a.shape or ())) for a in session.get_inputs()]
        self.outputs = [Port(a.name, a.type, tuple(a.shape or ())) for a in session.get_outputs()]

    def run(self, output: str, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """``session.run([output], feeds)[0]``."""
        result: np.ndarray = self.session.run([output], dict(feeds))[0]
        return result


class OnnxRuntimeBackend(Backend):
    """Models on ONNX Runtime's CPU execution provider.

    Parameters
    ----------
    allow_spinning : bool
        Let the intra-op threads spin between operators
        (``session.intra_op.allow_spinning``); `ALLOW_SPINNING` by default.
    """

    name = "onnxruntime"
    label = "ONNX Runtime"
    error_noise = (
        r"^\[ONNXRuntimeError\] : \d+ : \w+ : ",
        r"/onnxruntime_src/\S+:\d+ (?:\S+\([^)]*\) )?",
    )

    def __init__(self, *, allow_spinning: bool = ALLOW_SPINNING) -> None:
        self.allow_spinning = allow_spinning

    def version(self) -> str:
        """``onnxruntime.__version__``."""
        import onnxruntime

        return str(onnxruntime.__version__)

    def settings(self) -> dict[str, Any]:
        """Whether the threads spin."""
        return {"allow_spinning": self.allow_spinning}

    def load(
        self,
        path: str,
        *,
        threads: int | None,
        concurrency: int = 1,
        prepack: bool = True,
    ) -> OnnxRuntimeSession:
        """An ONNX Runtime CPU session for ``path`` (sessions run from many threads at once).

        ``prepack`` False keeps ONNX Runtime from storing a second, pre-packed
        copy of the matrix-multiplication weights: for a model of
        HuBERT-large's size that copy costs as much memory as the weights and
        buys no measurable speed (docs/BENCHMARKS.md).
        """
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Fatal only: every error reaches the caller as an exception (ModelError),
        # so ONNX Runtime's own log line on stderr would only repeat it.
        options.log_severity_level = 4
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if self.allow_spinning else "0"
        )
        if not prepack:
            options.add_session_config_entry("session.disable_prepacking", "1")
        try:
            session = ort.InferenceSession(
                path, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ONNX Runtime raises its own exception types
            raise self.load_error(path, exc) from None
        return OnnxRuntimeSession(session)
