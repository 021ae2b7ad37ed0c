"""A job: many inputs, one output directory each, resumable, on any engine.

`run_job` is three steps, each its own module: plan (`jobs.plan`: the items
and their outputs, every check before any work), resume (`jobs.resume`:
which items are finished, proved by their outputs' metadata.json or the
record `jobs.record`), and execute (`jobs.execute`: the rest handed to an
engine of `jobs.engine.ENGINES`, ``local`` worker processes or ``ray``, with
a `WorkSpec` as the worker factory, each result recorded as it arrives).
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
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..encoders import file_sha256
from ..errors import ModelError, ParameterError
from ..limits import DEFAULT_MAX_DURATION, check_count, usable_cpus
from ..modes import DEFAULT_HALF_WINDOW
from ..spec import RunSpec
from .engine import make_engine
from .execute import JobProgress, execute
from .plan import JobItem, Notice, plan_job
from .record import JobRecord
from .resume import resume
from .work import WorkSpec

__all__ = ["JobProgress", "JobSummary", "run_job", "worker_sizing"]


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
    backend: str | None = None,
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
    proves, by its metadata.json, that it was made from the input as it is
    now with the same model and settings (`jobs.resume`), and does the rest. A bad
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
    backend : str, optional
        The encoder's backend (`encoders.BACKENDS`); the default one when None.
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
    FileNotFoundError, ModelError
        If the model file is missing or not a file (checked before any work;
        the model itself is opened only by the workers).
    WorkerStartError
        If a worker cannot be built (the model does not load): the first
        failure stops the job with that one error.
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
            backend=backend,
            max_duration=max_duration,
            frames=frames,
        )
    spec = spec.with_absolute_model()
    engine_obj = make_engine(engine, workers, spec.threads, dict(engine_options or {}))
    items = plan_job(output, inputs, manifest=manifest, notice=notice)
    if items:
        engine_obj.check()  # e.g. the Ray cluster answers, before anything is written
    model_sha256 = _model_sha256(spec)
    settings = spec.describe()  # what metadata.json will say, without opening the model
    out = _prepare_output(os.fspath(output))
    items = [dataclasses.replace(i, output=os.path.join(out, i.key)) for i in items]

    record = JobRecord(out)
    with record.locked():
        left = resume(
            items, record.load(), settings, model_sha256, spec.mode.feature_file, force=force
        )
        record.append(left.adopted)
        todo = sorted(left.todo, key=lambda i: -_size(i.input))
        count, each = worker_sizing(
            len(todo),
            workers=workers,
            threads=spec.threads,
            cpus_per_worker=engine_obj.cpus_per_worker,
        )
        if count is not None:
            engine_obj.workers = count
        outcome = execute(
            todo,
            engine_obj,
            WorkSpec(run=spec.with_threads(each), overwrite=overwrite),
            record,
            settings=settings,
            model_sha256=model_sha256,
            progress=progress,
        )
        used = engine_obj.pool_size  # what it used; what was asked when it did not run
        record.compact()
    return JobSummary(
        output=out,
        record=record.path,
        total=len(items),
        skipped=len(left.finished),
        done=outcome.done,
        failed=outcome.failed,
        audio_s=outcome.audio_s,
        wall_s=outcome.wall_s,
        workers=used if used is not None else count or 0,
        threads=each,
        engine=engine,
    )


def _model_sha256(spec: RunSpec) -> str:
    """The SHA-256 of the spec's model file, checked to be a file (it is not opened as a model).

    A model that is there but does not load fails the job when its first
    worker starts (`WorkerStartError`), with that one error.
    """
    path = spec.model_path
    if path is None:
        raise ParameterError(
            "a job needs its model as a file path (each worker opens its own), not an Encoder"
            " object"
        )
    if not os.path.exists(path):
        spec.open_encoder()  # the mode's own "not found" message and hint; nothing to load
        raise FileNotFoundError(f"encoder model not found: {path}")
    if not os.path.isfile(path):
        raise ModelError(f"encoder model {path} is not a regular file; give the model's file")
    return file_sha256(path)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
