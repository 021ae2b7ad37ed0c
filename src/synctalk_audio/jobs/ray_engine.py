"""The Ray engine: a job's items as a Ray Data pipeline over an actor pool.

The items become a dataset of ``(index, item)`` rows, up to
`MAX_ITEMS_PER_BLOCK` rows per block. A pool of actors, each holding one
worker built by ``make_worker()`` (so one encoder session per actor), maps
the rows one at a time (``batch_size=1``); a lost actor costs the block it
was on, whose items run again; the workers write their outputs to
the shared output path themselves. The results stream back to the driver in
completion order and are passed to ``on_result`` there.

A killed actor is restarted by Ray and its unfinished items are run again on
the new one; the driver reports each item once even if Ray delivers it twice.
An item still without a result when the pipeline ends (its worker died on
every attempt) is reported with an `ItemLost` in place of its result, as the
local engine reports a dead worker's item, so a job records it as failed with
its reason and goes on. A worker that cannot be built (the model is missing
on a node) stops the run with a `WorkerStartError` naming the node.

Ray is an optional dependency (``pip install 'synctalk-audio[ray]'``); it is
imported only when a `RayEngine` runs.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError, WorkerStartError
from .engine import CommandOption, WorkerFactory

__all__ = ["ItemLost", "RayEngine", "RayEngineError"]

#: The one-line message when Ray is not installed.
NEED_RAY = "the ray engine needs Ray: pip install 'synctalk-audio[ray]'"


class RayEngineError(RuntimeError):
    """Ray itself failed during a job (the cluster was lost, Ray gave a bad result).

    The items that did finish were reported before this is raised, so a job
    record kept by ``on_result`` is complete for them; a rerun does the rest.
    """


class ItemLost(RuntimeError):
    """The result of an item Ray could not produce (handed to ``on_result`` in its place).

    Its message says why: the worker's error, or that its worker processes
    died on every attempt.
    """


def _import_ray() -> Any:
    """The ``ray`` module, with Ray Data; `ParameterError` naming the extra if missing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import ray
            import ray.data  # noqa: F401
    except ImportError as exc:
        raise ParameterError(NEED_RAY) from exc
    return ray


def _no_auto_init() -> None:
    """Turn Ray's automatic ``ray.init`` off in this process, for good.

    Ray Data leaves threads behind in the driver when a pipeline is stopped
    early (a block prefetcher, a scheduling loop past its join timeout). Their
    next Ray call after the engine disconnected would start a new local Ray
    from that thread, unasked: a stray cluster, and a later ``ray.init`` that
    fails with "called ray.init twice". With automatic init off, that call
    raises in the leftover thread instead. An explicit ``ray.init`` works as
    before.
    """
    with contextlib.suppress(ImportError):
        hook = importlib.import_module("ray._private.auto_init_hook")
        if hasattr(hook, "enable_auto_connect"):
            setattr(hook, "enable_auto_connect", False)  # noqa: B010


#: Names of the driver threads a Ray Data pipeline starts (its scheduling loop,
#: its block prefetcher, the workers that fetch its blocks for the iterator),
#: which `RayEngine.run` sees ended before it disconnects.
PIPELINE_THREADS = ("StreamingExecutor", "Prefetcher", "iter_threaded")
#: Seconds `RayEngine.run` waits for them.
PIPELINE_THREADS_WAIT_S = 30.0


def _stop_pipeline_threads(before: set[threading.Thread]) -> None:
    """Stop and wait for the Ray Data threads started since ``before``.

    A pipeline stopped early (a worker that cannot start, a stop in
    ``on_result``) leaves its block prefetcher parked for good, its block
    fetchers poll for up to 0.1 s more, and its scheduling loop may outlive
    the 2 s Ray Data waits for it. A Ray call from any of them after
    ``ray.shutdown`` makes Ray end the whole process
    ("The core worker has already been shutdown ... The process will exit",
    exit status 1), so the engine ends them first. The prefetcher is told
    to stop through the object its thread runs (Ray Data offers no other
    handle); a thread still running after `PIPELINE_THREADS_WAIT_S` is left.
    """
    deadline = time.monotonic() + PIPELINE_THREADS_WAIT_S
    for thread in threading.enumerate():
        if thread in before or not thread.name.startswith(PIPELINE_THREADS):
            continue
        owner = getattr(getattr(thread, "_target", None), "__self__", None)
        stop = getattr(owner, "stop", None)
        if callable(stop):
            with contextlib.suppress(Exception):
                stop()
        thread.join(max(0.0, deadline - time.monotonic()))


def _split_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``[ray://]HOST:PORT`` address; None for ``auto``/``local``.

    Raises
    ------
    ParameterError
        If the address is neither ``auto``/``local`` nor ``HOST:PORT``.
    """
    if address in ("auto", "local"):
        return None
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")  # [IPv6]:port
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ParameterError(
            f"bad Ray address '{address}': expected HOST:PORT of the head node"
            " (for example 10.0.0.5:6379, the address `ray start --head` prints)"
        )
    return host, int(port)


def check_reachable(address: str, timeout: float) -> None:
    """Fail fast if nothing listens at a Ray address (Ray itself would retry for minutes).

    Parameters
    ----------
    address : str
        ``[ray://]HOST:PORT``, or ``auto``/``local`` (not checked).
    timeout : float
        Seconds to wait for the TCP connection.

    Raises
    ------
    ParameterError
        If the address is malformed or no connection can be made.
    """
    hostport = _split_address(address)
    if hostport is None:
        return
    try:
        with socket.create_connection(hostport, timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {timeout:g} s"
        raise ParameterError(
            f"cannot reach the Ray cluster at {address} ({reason}): start its head node with"
            " `ray start --head` or check --address"
        ) from exc


#: Most items in one Ray Data block (one task of an actor). Ray's cost per
#: block (scheduling, the object store, the driver's executor) is several
#: milliseconds of the two cores a small machine has; eight items per block
#: cut it eightfold, and a lost actor redoes at most the block it was on.
MAX_ITEMS_PER_BLOCK = 8


def _blocks(items: int, workers: int) -> int:
    """Blocks for ``items`` items: at least four per actor while items last, at most 8 items each.

    >>> _blocks(1000, 2), _blocks(30, 2), _blocks(5, 2)
    (125, 10, 5)
    """
    per_block = max(1, min(MAX_ITEMS_PER_BLOCK, items // (4 * max(1, workers))))
    return max(1, -(-items // per_block))


class _ActorWorker:
    """The Ray Data UDF: one worker per actor, one item per call."""

    def __init__(self, factory_blob: bytes) -> None:
        from ray import cloudpickle

        self._work: Callable[[Any], Any] | None = None
        self._broken = ""
        try:
            make_worker: WorkerFactory = cloudpickle.loads(factory_blob)
            self._work = make_worker()
        except Exception as exc:  # e.g. the model is missing on this node
            # Each item this actor gets then comes back with this message as
            # its start error, and the driver stops the run (a raise here
            # would only make Ray restart the actor, and fail the same way,
            # without a readable message).
            self._broken = f"the worker could not start on {socket.gethostname()}: " + (
                f"{type(exc).__name__}: {exc}"
            )

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ray import cloudpickle

        dumps: Callable[[Any], bytes] = cloudpickle.dumps  # untyped in Ray
        results: list[bytes] = []
        errors: list[str] = []
        for payload in batch["item"]:
            if self._work is None:
                results.append(b"")
                errors.append("")
                continue
            try:
                results.append(dumps(self._work(cloudpickle.loads(payload))))
                errors.append("")
            except Exception as exc:  # the worker broke its "never raises" promise
                results.append(b"")
                errors.append(f"{type(exc).__name__}: {exc}")
        return {
            "index": np.asarray(batch["index"], dtype=np.int64),
            "result": np.array(results, dtype=object),
            "error": np.array(errors, dtype=object),
            "start_error": np.array([self._broken] * len(results), dtype=object),
        }


def report_rows(
    rows: Iterable[Mapping[str, Any]],
    count: int,
    on_result: Callable[[int, Any], None],
    loads: Callable[[bytes], Any],
) -> None:
    """Pass each row's result to ``on_result`` once per index; an `ItemLost` for the rest.

    Parameters
    ----------
    rows : iterable of mapping
        ``{"index": int, "result": bytes, "error": str}`` in completion order,
        and optionally ``"start_error": str``, the error of a worker that
        could not be built; a row may come twice if Ray ran an item again
        after losing a worker.
    count : int
        The number of items; indices are ``0 .. count - 1``.
    on_result : callable
        Called as ``on_result(index, result)`` for the first row of each index;
        when the rows end, as ``on_result(index, ItemLost(reason))`` for each
        index that had none (its worker raised, or Ray gave up on it).
    loads : callable
        Turns a row's ``result`` bytes back into the worker's result.

    Stops reading ``rows`` as soon as every index has a result.

    Raises
    ------
    RayEngineError
        If a row's index is out of range.
    WorkerStartError
        At the first row with a ``start_error``: the run stops there.
    """
    done = np.zeros(count, dtype=bool)
    remaining = count
    failed: dict[int, str] = {}
    if remaining == 0:
        return
    for row in rows:
        index = int(row["index"])
        if not 0 <= index < count:
            raise RayEngineError(f"Ray returned a result for item {index} of {count}")
        start_error = str(row.get("start_error") or "")
        if start_error:
            raise WorkerStartError(start_error)
        if done[index]:
            continue  # a second delivery after a retry: reported already
        error = str(row["error"])
        if error:
            failed.setdefault(index, error)
            continue
        done[index] = True
        failed.pop(index, None)
        on_result(index, loads(row["result"]))
        remaining -= 1
        if remaining == 0:
            # Every item has its result: stop reading. What Ray does after
            # this (tearing down the pool, cancelling an actor still starting)
            # is no concern of the job's, and may surface as an error.
            return
    for index in np.flatnonzero(~done).tolist():
        on_result(
            index,
            ItemLost(
                failed.get(index)
                or "lost by Ray: its worker process died on every attempt (killed, out of"
                " memory, or a crash on this input)"
            ),
        )


class RayEngine:
    """Runs a job's items on a Ray cluster (or a local Ray) as a Ray Data pipeline.

    Parameters
    ----------
    address : str or None
        The head node's ``HOST:PORT`` (as ``ray start --head`` prints), ``auto``
        for a Ray already started on this machine, or None: use ``RAY_ADDRESS``
        if set, else start a Ray on this machine for the job and stop it after.
        If this process is already connected to Ray (``ray.init`` was called),
        that connection is used and kept. When the engine disconnects, Ray's
        automatic ``ray.init`` on first use is turned off in this process, so
        Ray Data threads left behind cannot start a stray local Ray; an explicit
        ``ray.init`` still works.
    workers : int or None
        Actors in the pool, each with its own worker (model session), at most
        one per item. None: as many as the cluster's CPUs allow at
        ``cpus_per_worker`` each. After `run`, ``pool_size`` is the number used.
    cpus_per_worker : float
        CPUs Ray reserves for each actor. Ray exports the count to the actor
        as ``OMP_NUM_THREADS``; ONNX Runtime does not read it, so the worker
        factory must be given it as its encoder's thread count (`run_job`
        does, by `worker_sizing`).
    max_retries : int
        How many times an item is run again after its actor died (a killed
        process, a lost node) before the job gives up on it; dead actors are
        always restarted.
    quiet : bool
        Hide Ray's progress bars, its info logging and the workers' output.
    connect_timeout : float
        Seconds to wait when checking that ``address`` answers.

    Raises
    ------
    ParameterError
        On a bad option value.
    """

    name = "ray"
    options: tuple[str, ...] = (
        "address",
        "cpus_per_worker",
        "max_retries",
        "quiet",
        "connect_timeout",
    )
    command_options: tuple[CommandOption, ...] = (
        CommandOption(
            "address",
            "HOST:PORT",
            "the Ray head node's HOST:PORT (as `ray start --head` prints); default:"
            " RAY_ADDRESS, else a Ray started on this machine for the job",
        ),
    )

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_worker: float = 1.0,
        max_retries: int = 3,
        quiet: bool = True,
        connect_timeout: float = 10.0,
    ) -> None:
        if address is not None:
            _split_address(address)  # malformed: say so before any work
        if workers is not None and workers < 1:
            raise ParameterError(f"workers must be at least 1, got {workers}")
        if not cpus_per_worker > 0:
            raise ParameterError(f"cpus_per_worker must be positive, got {cpus_per_worker}")
        if max_retries < 0:
            raise ParameterError(f"max_retries must be 0 or more, got {max_retries}")
        if not connect_timeout > 0:
            raise ParameterError(f"connect_timeout must be positive, got {connect_timeout}")
        self.address = address
        self.workers = workers
        self.cpus_per_worker = float(cpus_per_worker)
        self.max_retries = max_retries
        self.quiet = quiet
        self.connect_timeout = float(connect_timeout)
        self.pool_size: int | None = None

    def check(self) -> None:
        """Fail now, before a job writes anything, if Ray is missing or ``address`` is silent.

        Raises
        ------
        ParameterError
            If Ray is not installed, or nothing answers at ``address``.
        """
        ray = _import_ray()
        if self.address is not None and not ray.is_initialized():
            check_reachable(self.address, self.connect_timeout)

    def run(
        self,
        items: Sequence[Any],
        make_worker: WorkerFactory,
        on_result: Callable[[int, Any], None],
    ) -> None:
        """Process every item on Ray; ``on_result(i, result)`` once per item, in this thread.

        An item Ray could not produce gets an `ItemLost` as its result.

        Raises
        ------
        ParameterError
            If Ray is not installed or the cluster cannot be reached.
        RayEngineError
            If Ray itself fails (the items finished before were reported).
        """
        ray = _import_ray()
        if not items:
            return
        with self._connected(ray), self._quiet_logging(), self._data_context(ray):
            rows: Iterator[Mapping[str, Any]] = iter(())
            before = set(threading.enumerate())
            try:
                rows = self._pipeline(ray, items, make_worker)
                report_rows(rows, len(items), on_result, ray.cloudpickle.loads)
            except ray.exceptions.RayError as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise RayEngineError(
                    f"the Ray job failed: {first} (Ray's logs have the details); the"
                    " items that finished were kept, run the job again to redo the others"
                ) from exc
            finally:
                close = getattr(rows, "close", None)
                if close is not None:
                    # Stops the pipeline if on_result raised, or after the last
                    # result; Ray's errors while stopping change no result.
                    with contextlib.suppress(ray.exceptions.RayError):
                        close()
                _stop_pipeline_threads(before)

    @contextlib.contextmanager
    def _connected(self, ray: Any) -> Iterator[None]:
        """Connect to (or start) Ray for the job; disconnect (or stop it) after."""
        if ray.is_initialized():
            yield
            return
        if self.address is not None:
            check_reachable(self.address, self.connect_timeout)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ray.init(
                    address=self.address,
                    include_dashboard=False,
                    logging_level=logging.ERROR if self.quiet else logging.INFO,
                    log_to_driver=not self.quiet,
                )
        except ConnectionError as exc:
            raise ParameterError(
                f"cannot connect to the Ray cluster at {self.address}: {exc}; check that"
                " --address is the head node's HOST:PORT and the same Ray version runs there"
            ) from exc
        try:
            yield
        finally:
            _no_auto_init()
            ray.shutdown()

    @contextlib.contextmanager
    def _quiet_logging(self) -> Iterator[None]:
        """Ray Data's logging off while the job runs (when quiet).

        Its errors too: a task lost with its actor is logged with a traceback
        although Ray retries it, and items that fail for good end the run with
        a `RayEngineError` naming them.
        """
        logger = logging.getLogger("ray.data")
        level = logger.level
        if self.quiet:
            logger.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            logger.setLevel(level)

    @contextlib.contextmanager
    def _data_context(self, ray: Any) -> Iterator[None]:
        """A copy of Ray Data's current settings, adjusted for the job, in force meanwhile."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context = ray.data.DataContext.get_current().copy()
        context.enable_progress_bars = not self.quiet
        context.print_on_execution_start = not self.quiet
        context.execution_options.preserve_order = False
        # An item whose actor died more than max_retries times, or whose worker
        # raised, drops out of the pipeline instead of stopping it; report_rows
        # names it at the end.
        context.max_errored_blocks = -1
        with ray.data.DataContext.current(context):
            yield

    def _pipeline(
        self, ray: Any, items: Sequence[Any], make_worker: WorkerFactory
    ) -> Iterator[Mapping[str, Any]]:
        """The dataset of results, as an iterator of rows in completion order."""
        workers = self.workers
        if workers is None:
            cpus = float(ray.cluster_resources().get("CPU", 1.0))
            workers = max(1, int(cpus // self.cpus_per_worker))
        workers = min(workers, len(items))
        self.pool_size = workers
        dumps = ray.cloudpickle.dumps
        rows = [{"index": i, "item": dumps(item)} for i, item in enumerate(items)]
        with warnings.catch_warnings():
            # Ray 2.60 marks passing max_restarts/max_task_retries this way as
            # deprecated (to be removed in 2.64, hence the extra's upper bound)
            # yet offers no other way to bound the retries of an actor pool.
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = ray.data.from_items(
                rows, override_num_blocks=_blocks(len(rows), workers)
            ).map_batches(
                _ActorWorker,
                fn_constructor_args=(dumps(make_worker),),
                batch_size=1,
                batch_format="numpy",
                # One task at a time per actor: a task queued behind one that
                # kills its actor would fail with it and spend a retry, so an
                # innocent item could be lost beside a crashing one.
                compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
                num_cpus=self.cpus_per_worker,
                max_restarts=-1,
                max_task_retries=self.max_retries,
            )
        return iter(dataset.iter_rows())
