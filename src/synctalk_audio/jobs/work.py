"""The work of one item: one input file to its output directory.

`WorkSpec` is the picklable factory an engine sends to each worker process
or actor; called there once, it loads the model (one `Pipeline`) and returns
an `ItemWorker`. Each call of the worker writes one output exactly as
``synctalk-audio process --audio FILE --output DIR`` does (the same
`Pipeline.process_into`, inside `atomic_output_dir`) and returns an
`ItemResult`; it never raises for a bad input: the error is in the result.
The input's size, modification time and SHA-256, read before the audio
(`Pipeline.process_into` writes them in metadata.json's ``input``), are the
proof a rerun checks before it keeps the output (`jobs.resume`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import traceback
from typing import Any

from ..errors import DEBUG_ENV, AudioLoadError, ModelError, ParameterError
from ..spec import RunSpec
from .plan import JobItem

__all__ = ["ItemResult", "ItemWorker", "WorkSpec"]

#: Exceptions whose message is meant for users as it is.
_ANTICIPATED = (
    ParameterError,
    AudioLoadError,
    ModelError,
    OSError,
    RuntimeError,
    ValueError,
)


@dataclasses.dataclass(frozen=True)
class ItemResult:
    """What processing one item gave (picklable; plain values only).

    Attributes
    ----------
    ok : bool
        The output was written.
    error : str or None
        The one-line error when not ``ok``.
    size, mtime_ns, sha256 : int, int, str or None
        The input file's size, modification time and SHA-256, as read before
        processing it (metadata.json's; only size and time if it failed).
    settings : dict or None
        metadata.json's ``settings`` of the output written.
    duration_s : float
        Seconds of audio in the input (0 when unknown).
    frames : int
        Frames written.
    wall_s : float
        Seconds the item took in its worker.
    started, finished : float
        Unix times the worker began and ended the item.
    """

    ok: bool
    error: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    sha256: str | None = None
    settings: dict[str, Any] | None = None
    duration_s: float = 0.0
    frames: int = 0
    wall_s: float = 0.0
    started: float = 0.0
    finished: float = 0.0


@dataclasses.dataclass(frozen=True)
class WorkSpec:
    """Everything a worker needs, picklable; calling it builds an `ItemWorker`.

    Attributes
    ----------
    run : RunSpec
        The run's settings, its model an absolute path and its threads those
        of one worker.
    overwrite : bool
        Replace output directories holding files this tool did not write.
    """

    run: RunSpec
    overwrite: bool

    def __call__(self) -> ItemWorker:
        return ItemWorker(self)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return f"out of memory ({text or 'no message'}); free memory or use fewer --workers"
    if isinstance(exc, _ANTICIPATED):
        return text or type(exc).__name__
    return f"internal error: {type(exc).__name__}: {text or '(no message)'}"


def _stat_facts(path: str) -> dict[str, int | None]:
    """The size and modification time of ``path`` (None each if it cannot be read)."""
    try:
        stat = os.stat(path)
    except OSError:
        return {"size": None, "mtime_ns": None}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class ItemWorker:
    """One loaded model; ``worker(item)`` writes one item's output (`WorkSpec` builds it)."""

    def __init__(self, spec: WorkSpec) -> None:
        from ..engines.pipeline import Pipeline

        self.spec = spec
        self.pipeline = Pipeline.from_spec(spec.run)

    def __call__(self, item: JobItem) -> ItemResult:
        """Write ``item``'s output; the result says how it went (never raises but for stops)."""
        from ..outputs.directory import atomic_output_dir

        started = time.time()
        clock = time.perf_counter()
        try:
            os.makedirs(os.path.dirname(item.output), exist_ok=True)
            with atomic_output_dir(
                item.output, overwrite=self.spec.overwrite, inputs=[item.input]
            ) as staging:
                metadata = self.pipeline.process_into(
                    item.input, staging, frames=self.spec.run.frames, started=clock
                )
        except Exception as exc:
            known = _stat_facts(item.input)
            if os.environ.get(DEBUG_ENV, "") not in ("", "0") and not isinstance(exc, _ANTICIPATED):
                traceback.print_exc(file=sys.stderr)
            return ItemResult(
                ok=False,
                error=_one_line(exc),
                size=known["size"],
                mtime_ns=known["mtime_ns"],
                wall_s=time.perf_counter() - clock,
                started=started,
                finished=time.time(),
            )
        return ItemResult(
            ok=True,
            size=metadata["input"].get("size"),
            mtime_ns=metadata["input"].get("mtime_ns"),
            sha256=metadata["input"].get("sha256"),
            settings=metadata["settings"],
            duration_s=float(metadata["input"]["duration_s"]),
            frames=int(metadata["counts"]["frames"]),
            wall_s=time.perf_counter() - clock,
            started=started,
            finished=time.time(),
        )
