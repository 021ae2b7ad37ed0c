"""A job: many inputs, one output directory each, resumable, on any engine.

`run_job` plans the job (`jobs.plan`: every check before any work), skips
the items a previous run finished (`jobs.record`), hands the rest to an
engine (`jobs.engine.ENGINES`: ``local`` worker processes, or ``ray``) with
a `WorkSpec` as the worker factory, and records each result as it arrives.
Nothing here depends on the mode or the engine chosen.

Worker sizing (`worker_sizing`, for every engine): a worker's encoder runs
on as many threads as it has CPUs. On this machine (the local engine,
``workers`` and ``threads`` left to the job) that is one worker per
available CPU, at most one per item to do, and the CPUs shared out as
encoder threads: ``threads = max(1, cpus // workers)``. Many short clips
(the usual dataset) give one single-threaded worker per core, so decoding,
the front end, the encoder and writing of different clips overlap and no
encoder thread waits for another; a single long file gets one worker with
an encoder thread per core. An engine that reserves CPUs per worker on a
cluster (Ray: ``cpus_per_worker``, 1 by default, or ``threads`` when given)
chooses the number of workers itself, and each worker gets that many
encoder threads. Items are handed out longest first (by file size), so a
long file does not start last and leave a core idle at the end.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..encoders.onnx import file_sha256
from ..errors import ParameterError
from ..frontends.audio import declared_duration
from ..limits import DEFAULT_MAX_DURATION, check_count, usable_cpus
from ..modes import DEFAULT_HALF_WINDOW
from ..spec import RunSpec
from .engine import engine_class
from .plan import JobItem, Notice, plan_job
from .record import Entry, JobRecord, output_complete
from .work import ItemResult, WorkSpec

__all__ = ["JobProgress", "JobSummary", "run_job", "worker_sizing"]


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


@dataclasses.dataclass(frozen=True)
class JobSummary:
    """What a job did.

    Attributes
    ----------
    output : str
        The job's output directory (absolute).
    record : str
        The job record's path.
    total : int
        Items in the job.
    skipped : int
        Items a previous run had finished, left as they were.
    done : list of JobItem
        Items written by this run.
    failed : list of (JobItem, str)
        Items that failed, with their one-line errors.
    audio_s : float
        Seconds of audio processed by this run.
    wall_s : float
        Wall seconds of the work.
    workers, threads : int
        Workers the engine used (asked of it, or those it chose: Ray's actor
        pool; 0 if it did not run), and encoder threads of each.
    engine : str
        The engine's name.
    """

    output: str
    record: str
    total: int
    skipped: int
    done: list[JobItem]
    failed: list[tuple[JobItem, str]]
    audio_s: float
    wall_s: float
    workers: int
    threads: int
    engine: str

    @property
    def ok(self) -> bool:
        """No item failed."""
        return not self.failed

    @property
    def audio_hours_per_minute(self) -> float:
        """Hours of audio processed per minute of wall time (0 when nothing ran)."""
        return (self.audio_s / 3600) / (self.wall_s / 60) if self.wall_s > 0 else 0.0


def worker_sizing(
    items: int,
    *,
    workers: int | None = None,
    threads: int | None = None,
    cpus: int | None = None,
    cpus_per_worker: float | None = None,
) -> tuple[int | None, int]:
    """(workers, encoder threads per worker) for ``items`` items (the module docstring's rule).

    Parameters
    ----------
    items : int
        Items to do.
    workers, threads : int, optional
        The counts asked for; the rule fills in those left None.
    cpus : int, optional
        CPUs of this machine to share out (those available to this process
        when None).
    cpus_per_worker : float, optional
        CPUs an engine reserves for each of its workers on a cluster (Ray);
        the engine then decides the number of workers when ``workers`` is
        None (so the first value returned is None), and each worker's encoder
        threads are its CPUs.

    Examples
    --------
    >>> worker_sizing(1000, cpus=2), worker_sizing(1, cpus=2), worker_sizing(3, cpus=8)
    ((2, 1), (1, 2), (3, 2))
    >>> worker_sizing(1000, cpus_per_worker=1.0), worker_sizing(1000, cpus_per_worker=2.0)
    ((None, 1), (None, 2))
    """
    if cpus_per_worker is not None:
        return workers, threads if threads is not None else max(1, int(cpus_per_worker))
    cpus = usable_cpus() if cpus is None else cpus
    count = workers if workers is not None else max(1, min(cpus, items))
    each = threads if threads is not None else max(1, cpus // max(1, min(count, items)))
    return count, each


def _check_count(value: int | None, name: str) -> None:
    if value is not None:
        check_count(value, name)


def _prepare_output(output: str) -> str:
    """Create the job's output directory if needed; its absolute path."""
    from ..outputs.directory import not_writable, resolve_path

    out = resolve_path(output)
    if not os.path.isdir(out):
        try:
            os.mkdir(out)
        except OSError as exc:
            raise not_writable(out, exc.strerror or str(exc)) from None
    return out


def _unchanged(
    item: JobItem, previous: Entry | None, settings: dict[str, Any], model_sha256: str
) -> bool:
    """The record says ``item`` is done with this input, model and settings."""
    return (
        previous is not None
        and previous.get("input") == item.input
        and previous.get("settings") == settings
        and previous.get("model_sha256") == model_sha256
    )


def _finished(
    item: JobItem,
    previous: Entry | None,
    settings: dict[str, Any],
    model_sha256: str,
    feature_file: str,
) -> bool:
    """True when ``item`` needs no work: its output is complete and nothing it came from changed.

    A ``done`` entry must match the input's size and SHA-256. A ``pending``
    entry (a run was stopped) counts when its output was renamed into place
    after that run started, and the input's size and modification time are
    those the run saw: the item finished but its ``done`` line was not
    written in time.
    """
    if previous is None or not _unchanged(item, previous, settings, model_sha256):
        return False
    try:
        stat = os.stat(item.input)
    except OSError:
        return False
    if previous.get("size") != stat.st_size:
        return False
    if not output_complete(item, settings, model_sha256, feature_file):
        return False
    status = previous.get("status")
    if status == "done":
        return bool(previous.get("sha256") == file_sha256(item.input))
    if status == "pending":
        run_started = previous.get("timings", {}).get("run_started")
        try:
            written = os.stat(os.path.join(item.output, "metadata.json")).st_mtime
        except OSError:
            return False
        return (
            previous.get("mtime_ns") == stat.st_mtime_ns
            and isinstance(run_started, (int, float))
            and written >= run_started
        )
    return False


def run_job(
    output: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]] = (),
    *,
    manifest: str | os.PathLike[str] | None = None,
    spec: RunSpec | None = None,
    model: str | os.PathLike[str] | None = None,
    mode: str = "ave",
    fps: float | None = None,
    half_window: int = DEFAULT_HALF_WINDOW,
    pad_mode: str = "constant",
    options: Mapping[str, object] | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    frames: bool = True,
    overwrite: bool = False,
    force: bool = False,
    engine: str = "local",
    workers: int | None = None,
    engine_options: Mapping[str, Any] | None = None,
    progress: Callable[[JobProgress], None] | None = None,
    notice: Notice | None = None,
) -> JobSummary:
    """Compute the features of many inputs, one output directory each, resumably.

    Each output is what ``synctalk-audio process --audio FILE --output DIR``
    writes for that file. ``OUTPUT/synctalk-job.jsonl`` records every item
    (`jobs.record`); a rerun skips the items whose output is complete and
    whose input, model and settings are unchanged, and does the rest. A bad
    input is recorded as failed and the job goes on. On Ctrl-C (or any
    exception) the engine stops its workers: every finished item stays
    complete and recorded, the one in progress leaves nothing behind.

    Parameters
    ----------
    output : str or os.PathLike
        The job's output directory (created if missing; its parent must exist).
    inputs : sequence of str or os.PathLike
        Audio files and directories (searched recursively), see `plan_job`.
    manifest : str or os.PathLike, optional
        A manifest: one input per line, or CSV / JSON Lines with ``input``
        and optional ``output`` columns.
    spec : RunSpec, optional
        The run's settings, built once (`RunSpec.create`); when given, the
        keywords from ``model`` to ``frames`` are not used.
    model : str or os.PathLike, optional
        The mode's model file (its ``default_model`` when None).
    mode, fps, half_window, pad_mode, options
        The feature mode and its settings, as for `Pipeline`.
    batch_size : int, optional
        Encoder batch size.
    threads : int, optional
        Encoder threads per worker; shared out by `worker_sizing` when None.
        With ``ray``, also the CPUs Ray reserves per actor (unless
        ``engine_options`` give ``cpus_per_worker``).
    max_duration : float or None
        Longest input accepted, seconds (None: no limit).
    frames : bool
        Write frames/frame_%05d.bin too.
    overwrite : bool
        Replace item outputs holding files this tool did not write.
    force : bool
        Redo every item, finished or not.
    engine : str
        An engine of `jobs.engine.ENGINES` (``local``, ``ray``).
    workers : int, optional
        Workers (processes, actors); `worker_sizing` decides when None.
    engine_options : Mapping, optional
        Further keyword arguments of the engine's constructor (for ``ray``:
        ``address``, ``cpus_per_worker``, ``max_retries``, ...; see
        `jobs.ray_engine.RayEngine`).
    progress : callable, optional
        Called with a `JobProgress` when the work starts and after each item.
    notice : callable, optional
        Called with each one-line notice of the planning (what a directory
        search skipped, files found under two names; `plan_job`); when None,
        each is a `UserWarning`.

    Returns
    -------
    JobSummary
        Counts, failures with their errors, audio seconds and wall time.

    Raises
    ------
    ParameterError
        For bad settings or any planning problem (`plan_job`), before anything
        is written; or when another run holds the job's lock.
    ModelError, FileNotFoundError
        If the model cannot be loaded (checked before any work).
    KeyboardInterrupt
        On Ctrl-C (or SIGTERM/SIGHUP under the command); finished items are kept.

    Examples
    --------
    >>> import os, tempfile
    >>> from synctalk_audio.jobs import run_job
    >>> out = os.path.join(tempfile.mkdtemp(), "features")
    >>> summary = run_job(out, ["tests/data/speech_16k.flac", "tests/data/speech_8k_u8.wav"],
    ...                   model="models/audio_encoder.onnx")  # doctest: +SKIP
    >>> sorted(item.key for item in summary.done), summary.ok  # doctest: +SKIP
    (['speech_16k', 'speech_8k_u8'], True)
    """
    _check_count(workers, "workers")
    if spec is None:
        spec = RunSpec.create(
            mode,
            model,
            fps=fps,
            half_window=half_window,
            pad_mode=pad_mode,
            options=options,
            batch_size=batch_size,
            threads=threads,
            max_duration=max_duration,
            frames=frames,
        )
    if spec.model_path is None:
        raise ParameterError(
            "a job needs its model as a file path (each worker opens its own), not an Encoder"
            " object"
        )
    spec = spec.with_absolute_model()
    threads = spec.threads
    feature_mode = spec.mode
    engine_obj = _make_engine(engine, workers, threads, engine_options)
    items = plan_job(output, inputs, manifest=manifest, notice=notice)
    if items and hasattr(engine_obj, "check"):
        engine_obj.check()  # e.g. the Ray cluster answers, before anything is written
    model_path = spec.model_path
    assert model_path is not None
    # The model is checked once here, before any work; the settings recorded
    # come from the spec, not the encoder.
    spec.with_threads(1).open_encoder()
    expected = spec.describe()
    model_sha256 = file_sha256(model_path)
    out = _prepare_output(os.fspath(output))
    items = [dataclasses.replace(i, output=os.path.join(out, i.key)) for i in items]

    record = JobRecord(out)
    with record.locked():
        previous = record.load()
        todo = [
            item
            for item in items
            if force
            or not _finished(
                item, previous.get(item.key), expected, model_sha256, feature_mode.feature_file
            )
        ]
        skipped = len(items) - len(todo)
        keys = {item.key for item in todo}
        adopted = [
            item
            for item in items
            if item.key not in keys and previous.get(item.key, {}).get("status") == "pending"
        ]
        record.append(
            {**previous[i.key], "status": "done", "sha256": file_sha256(i.input)} for i in adopted
        )
        todo.sort(key=lambda i: -_size(i.input))
        count, each = worker_sizing(
            len(todo),
            workers=workers,
            threads=threads,
            cpus_per_worker=getattr(engine_obj, "cpus_per_worker", None),
        )
        if count is not None:
            engine_obj.workers = count
        work = WorkSpec(run=spec.with_threads(each), overwrite=overwrite)
        run_started = time.time()
        base = {"settings": expected, "model_sha256": model_sha256, "error": None}
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
        durations = [declared_duration(item.input) for item in todo]
        state = {"done": 0, "failed": 0, "audio": 0.0, "processed": 0.0}
        done: list[JobItem] = []
        failed: list[tuple[JobItem, str]] = []
        clock = time.perf_counter()

        def report() -> None:
            if progress is not None:
                progress(
                    JobProgress(
                        done=int(state["done"]),
                        failed=int(state["failed"]),
                        total=len(todo),
                        audio_done_s=float(state["audio"]),
                        audio_total_s=float(sum(durations)),
                        elapsed_s=time.perf_counter() - clock,
                    )
                )

        def on_result(index: int, result: Any) -> None:
            item = todo[index]
            if not isinstance(result, ItemResult):  # the engine lost the item (BaseException)
                result = ItemResult(ok=False, error=" ".join(str(result).split()) or "lost")
            entry = {
                **base,
                "status": "done" if result.ok else "failed",
                "input": item.input,
                "output": item.key,
                "size": result.size,
                "mtime_ns": _stat_facts(item.input).get("mtime_ns"),
                "sha256": result.sha256,
                "settings": result.settings if result.ok else expected,
                "error": result.error,
                "duration_s": result.duration_s,
                "frames": result.frames,
                "timings": {
                    "run_started": run_started,
                    "started": result.started,
                    "finished": result.finished,
                    "wall_s": result.wall_s,
                },
            }
            record.append([entry])
            state["done"] += 1
            state["audio"] += result.duration_s if result.ok else durations[index]
            if result.ok:
                state["processed"] += result.duration_s
                done.append(item)
            else:
                state["failed"] += 1
                failed.append((item, result.error or "failed"))
            report()

        report()
        if todo:
            engine_obj.run(todo, work, on_result)
        if count is None:
            count = getattr(engine_obj, "pool_size", None) or 0
        wall_s = time.perf_counter() - clock
        record.compact()
    return JobSummary(
        output=out,
        record=record.path,
        total=len(items),
        skipped=skipped,
        done=done,
        failed=failed,
        audio_s=float(state["processed"]),
        wall_s=wall_s,
        workers=count,
        threads=each,
        engine=engine,
    )


def _make_engine(
    name: str, workers: int | None, threads: int | None, options: Mapping[str, Any] | None
) -> Any:
    """The engine ``name`` built with ``options``, before any work (bad options fail here).

    An engine that reserves CPUs per worker (it has ``cpus_per_worker``)
    reserves ``threads`` CPUs per worker when ``threads`` is given and the
    options do not say otherwise. The number of workers is set on it once
    the items to do are known (`worker_sizing`).
    """
    cls = engine_class(name)
    kwargs = dict(options or {})
    accepted = [p for p in inspect.signature(cls).parameters if p != "workers"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ParameterError(
            f"the {name} engine has no option {', '.join(map(repr, unknown))}: its options are"
            f" {', '.join(accepted) or 'none'} (workers is run_job's own argument)"
        )
    if threads is not None and "cpus_per_worker" in accepted:
        kwargs.setdefault("cpus_per_worker", float(threads))
    return cls(workers=workers, **kwargs)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _stat_facts(path: str) -> dict[str, int | None]:
    try:
        stat = os.stat(path)
    except OSError:
        return {"size": None, "mtime_ns": None}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
