"""Executing a job: the items to do, handed to an engine, each result recorded.

`execute` writes a ``pending`` line for every item to do, runs them on the
engine with a `WorkSpec` as the worker factory, and, as each result
arrives (in the driver's thread), appends its ``done`` or ``failed`` line
and reports progress. It knows nothing of which engine runs the items.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import WorkerStartError
from ..frontends.audio import declared_duration
from .engine import Engine
from .plan import JobItem
from .record import Entry, JobRecord
from .work import ItemResult, WorkSpec

__all__ = ["Execution", "JobProgress", "execute"]


@dataclasses.dataclass(frozen=True)
class JobProgress:
    """Where a running job is; what `run_job` passes to its ``progress`` callback.

    Attributes
    ----------
    done, failed, total : int
        Items finished (failed ones included), failed, and to do in this run.
    audio_done_s, audio_total_s : float
        Seconds of audio in the finished items, and in all items to do
        (from the files' headers; unreadable ones count 0).
    elapsed_s : float
        Wall seconds since the work started.
    """

    done: int
    failed: int
    total: int
    audio_done_s: float
    audio_total_s: float
    elapsed_s: float

    @property
    def real_time_factor(self) -> float | None:
        """Wall seconds per second of audio so far (None before any audio)."""
        return self.elapsed_s / self.audio_done_s if self.audio_done_s > 0 else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far (by audio, or by items without durations)."""
        if self.done >= self.total:
            return 0.0
        if self.audio_done_s > 0 and self.audio_total_s > 0:
            left = max(self.audio_total_s - self.audio_done_s, 0.0)
            return left * self.elapsed_s / self.audio_done_s
        if self.done:
            return (self.total - self.done) * self.elapsed_s / self.done
        return None


@dataclasses.dataclass
class Execution:
    """What `execute` did.

    Attributes
    ----------
    done : list of JobItem
        Items written.
    failed : list of (JobItem, str)
        Items that failed, with their one-line errors.
    audio_s : float
        Seconds of audio in the items written.
    wall_s : float
        Wall seconds of the work.
    """

    done: list[JobItem] = dataclasses.field(default_factory=list)
    failed: list[tuple[JobItem, str]] = dataclasses.field(default_factory=list)
    audio_s: float = 0.0
    wall_s: float = 0.0


def _stat_facts(path: str) -> dict[str, int | None]:
    try:
        stat = os.stat(path)
    except OSError:
        return {"size": None, "mtime_ns": None}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class _Tally:
    """The driver's side of a run: record lines and progress, one result at a time."""

    def __init__(
        self,
        todo: Sequence[JobItem],
        record: JobRecord,
        base: Mapping[str, Any],
        run_started: float,
        progress: Callable[[JobProgress], None] | None,
    ) -> None:
        self.todo = todo
        self.record = record
        self.base = dict(base)
        self.run_started = run_started
        self.progress = progress
        self.durations = [declared_duration(item.input) for item in todo]
        self.outcome = Execution()
        self.finished = 0
        self.audio_done = 0.0
        self.clock = time.perf_counter()

    def report(self) -> None:
        if self.progress is not None:
            self.progress(
                JobProgress(
                    done=self.finished,
                    failed=len(self.outcome.failed),
                    total=len(self.todo),
                    audio_done_s=self.audio_done,
                    audio_total_s=float(sum(self.durations)),
                    elapsed_s=time.perf_counter() - self.clock,
                )
            )

    def entry(self, item: JobItem, result: ItemResult) -> Entry:
        return {
            **self.base,
            "status": "done" if result.ok else "failed",
            "input": item.input,
            "output": item.key,
            "size": result.size,
            "mtime_ns": result.mtime_ns,
            "sha256": result.sha256,
            "settings": result.settings if result.ok else self.base["settings"],
            "error": result.error,
            "duration_s": result.duration_s,
            "frames": result.frames,
            "timings": {
                "run_started": self.run_started,
                "started": result.started,
                "finished": result.finished,
                "wall_s": result.wall_s,
            },
        }

    def __call__(self, index: int, result: Any) -> None:
        """``on_result`` of the engine: record the item's line, count it, report progress."""
        item = self.todo[index]
        if not isinstance(result, ItemResult):  # the engine lost the item (an exception)
            result = ItemResult(ok=False, error=" ".join(str(result).split()) or "lost")
        self.record.append([self.entry(item, result)])
        self.finished += 1
        self.audio_done += result.duration_s if result.ok else self.durations[index]
        if result.ok:
            self.outcome.audio_s += result.duration_s
            self.outcome.done.append(item)
        else:
            self.outcome.failed.append((item, result.error or "failed"))
        self.report()


def execute(
    todo: Sequence[JobItem],
    engine: Engine,
    work: WorkSpec,
    record: JobRecord,
    *,
    settings: Mapping[str, Any],
    model_sha256: str,
    progress: Callable[[JobProgress], None] | None = None,
) -> Execution:
    """Run ``todo`` on ``engine``, recording each item as its result arrives.

    Parameters
    ----------
    todo : sequence of JobItem
        The items to do, in the order to hand them out.
    engine : Engine
        The engine, its workers set.
    work : WorkSpec
        The worker factory.
    record : JobRecord
        The job's record, open (`JobRecord.locked`).
    settings : mapping
        metadata.json's ``settings`` of this run.
    model_sha256 : str
        The model's SHA-256.
    progress : callable, optional
        Called with a `JobProgress` when the work starts and after each item.

    Returns
    -------
    Execution

    Raises
    ------
    WorkerStartError
        If a worker could not be built (its model did not load): the job
        stops with that one error; the items finished before are recorded.
    """
    run_started = time.time()
    base = {"settings": dict(settings), "model_sha256": model_sha256, "error": None}
    record.append(
        {
            **base,
            "status": "pending",
            "input": item.input,
            "output": item.key,
            **_stat_facts(item.input),
            "timings": {"run_started": run_started},
        }
        for item in todo
    )
    tally = _Tally(todo, record, base, run_started, progress)
    tally.report()
    if todo:
        try:
            engine.run(todo, work, tally)
        except WorkerStartError as exc:
            raise WorkerStartError(
                f"a worker of the job could not start ({exc}); the job stopped: fix that and run"
                " the same command again (finished items are kept)"
            ) from exc
    tally.outcome.wall_s = time.perf_counter() - tally.clock
    return tally.outcome
