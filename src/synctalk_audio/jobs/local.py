"""The local engine: a job's items over worker processes on this machine.

Each worker is a separate process started with the 'spawn' method (forking a
process in which ONNX Runtime has started threads is unsafe), which calls
``make_worker()`` once (loading the model once) and then runs one item at a
time, as the driver hands them out: an idle worker gets the next item, so
long and short items balance themselves. With one worker, or one item, the
work runs in the calling process and nothing is started.

Stopping: the workers ignore SIGINT (a Ctrl-C in the terminal reaches the
whole process group, and only the driver decides); when the driver stops,
for whatever reason, it sends each worker SIGTERM, which a worker turns into
KeyboardInterrupt, so an output being written is cleaned up
(`synctalk_audio.outputs.directory.atomic_output_dir`). On Linux a worker
also gets SIGTERM when the driver dies (even by SIGKILL), once for each of
the driver's threads; the clean-up holds back the later ones. A worker that dies
while it holds an item (killed, out of memory, a crash in native code) gives
that item a `WorkerDied` result, and a new worker takes its place. A worker
whose ``make_worker()`` raises (the model does not load) stops the run with
a `WorkerStartError` carrying that error: every worker would fail alike.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from ..errors import WorkerStartError
from ..limits import check_count, usable_cpus
from .engine import CommandOption, WorkerFactory

__all__ = ["LocalEngine", "WorkerDied"]

#: Seconds a stopping worker gets to clean up after SIGTERM before SIGKILL.
STOP_GRACE_S = 10.0


class WorkerDied(RuntimeError):
    """The result of an item whose worker process died while processing it.

    The engine hands an instance to ``on_result`` in place of the worker's
    result (a worker that dies cannot return one).
    """


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def _raise_interrupt(signum: int, frame: Any) -> None:
    """A worker's SIGTERM: stop, once. The later ones are ignored from here on.

    A dead driver's SIGTERMs come in a burst (one per thread); one landing
    between the clean-up's steps, where no `signals.unstoppable` block holds
    it, would cut the clean-up short and leave the item's staging directory.
    The driver still SIGKILLs a worker that has not exited `STOP_GRACE_S` later.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _worker_main(conn: Connection, make_worker: WorkerFactory, parent: int) -> None:
    """A worker process: build the worker once, then answer items until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    _die_with_parent()
    if os.getppid() != parent:  # the driver died before the line above
        return
    try:
        try:
            work = make_worker()
        except Exception as exc:  # tell the driver, which stops the job
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
            return
        conn.send(("ready", None))
        while True:
            message = conn.recv()
            if message is None:
                return
            index, item = message
            conn.send(("result", (index, work(item))))
    except (KeyboardInterrupt, EOFError, BrokenPipeError, ConnectionResetError):
        return  # stopped by the driver, or the driver is gone
    finally:
        # Exiting: a stop now changes nothing, and a KeyboardInterrupt raised
        # in multiprocessing's exit handlers would only print a traceback.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


class _Worker:
    """The driver's handle on one worker process."""

    def __init__(self, context: Any, make_worker: WorkerFactory) -> None:
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_worker_main, args=(child, make_worker, os.getpid()), daemon=True
        )
        self.process.start()
        child.close()
        self.index: int | None = None  # the item it is working on

    def stop(self) -> None:
        """Ask it to exit when idle (it finishes nothing in progress: there is none)."""
        with contextlib.suppress(OSError):
            self.conn.send(None)


class LocalEngine:
    """Items over worker processes on this machine (``--engine local``, the default).

    Parameters
    ----------
    workers : int, optional
        Worker processes; the number of CPUs available by default. At most
        one per item is started; with one, the items run in the calling
        process.

    Raises
    ------
    ParameterError
        If ``workers`` is not a positive integer.

    Examples
    --------
    >>> from synctalk_audio.jobs.local import LocalEngine
    >>> got = {}
    >>> LocalEngine(workers=1).run([1, 2, 3], lambda: abs, got.__setitem__)
    >>> got
    {0: 1, 1: 2, 2: 3}
    """

    name = "local"
    options: tuple[str, ...] = ()
    command_options: tuple[CommandOption, ...] = ()
    #: It shares out this machine's CPUs; it reserves none per worker.
    cpus_per_worker: float | None = None

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None:
            check_count(workers, "workers")
        self.workers: int | None = usable_cpus() if workers is None else workers
        self.pool_size: int | None = None

    def check(self) -> None:
        """Nothing to check: the local engine needs nothing beyond this package."""

    def run(
        self,
        items: Sequence[Any],
        make_worker: WorkerFactory,
        on_result: Callable[[int, Any], None],
    ) -> None:
        """Process every item; ``on_result(i, result)`` once per item, in completion order.

        Raises
        ------
        WorkerStartError
            If ``make_worker`` fails (the message is its error); the job stops.
        """
        count = min(usable_cpus() if self.workers is None else self.workers, len(items))
        if count <= 0:
            return
        self.pool_size = count
        if count == 1:
            try:
                work = make_worker()
            except Exception as exc:
                raise WorkerStartError(f"{type(exc).__name__}: {exc}") from exc
            for index, item in enumerate(items):
                on_result(index, work(item))
            return
        self._run_processes(items, make_worker, on_result, count)

    def _run_processes(
        self,
        items: Sequence[Any],
        make_worker: WorkerFactory,
        on_result: Callable[[int, Any], None],
        count: int,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        workers: list[_Worker] = []
        pending = list(range(len(items) - 1, -1, -1))  # popped from the end: item 0 first
        remaining = len(items)
        try:
            workers = [_Worker(context, make_worker) for _ in range(count)]
            while remaining:
                by_conn = {w.conn: w for w in workers}
                by_sentinel = {w.process.sentinel: w for w in workers}
                for ready in wait([*by_conn, *by_sentinel]):
                    if ready in by_conn:
                        worker = by_conn[ready]
                        try:
                            kind, payload = worker.conn.recv()
                        except (EOFError, OSError):
                            continue  # it died: its sentinel says so
                        if kind == "failed":
                            raise WorkerStartError(payload)
                        if kind == "result":
                            index, result = payload
                            worker.index = None
                            remaining -= 1
                            self._feed(worker, items, pending)
                            on_result(index, result)
                        else:  # ready
                            self._feed(worker, items, pending)
                    else:
                        worker = by_sentinel[ready]
                        if worker not in workers:
                            continue
                        with contextlib.suppress(OSError, EOFError):
                            while worker.conn.poll():  # a result sent just before dying
                                kind, payload = worker.conn.recv()
                                if kind == "result":
                                    index, result = payload
                                    worker.index = None
                                    remaining -= 1
                                    on_result(index, result)
                        worker.process.join()
                        workers.remove(worker)
                        worker.conn.close()
                        if worker.index is not None:
                            lost, worker.index = worker.index, None
                            remaining -= 1
                            why = _describe_exit(worker.process.exitcode)
                            on_result(
                                lost,
                                WorkerDied(f"the worker process died ({why}) while processing it"),
                            )
                        if pending and len(workers) < count:
                            workers.append(_Worker(context, make_worker))
                    break  # the lists changed: wait again
                if not workers and remaining:
                    raise RuntimeError("every worker process died")
            for worker in workers:
                worker.stop()
            for worker in workers:
                worker.process.join(STOP_GRACE_S)
        finally:
            self._terminate(workers)

    @staticmethod
    def _feed(worker: _Worker, items: Sequence[Any], pending: list[int]) -> None:
        if pending:
            index = pending.pop()
            worker.index = index
            worker.conn.send((index, items[index]))
        else:
            worker.stop()

    @staticmethod
    def _terminate(workers: list[_Worker]) -> None:
        """SIGTERM every live worker, wait for it to clean up, SIGKILL if it will not."""
        for worker in workers:
            if worker.process.is_alive():
                with contextlib.suppress(OSError):
                    worker.process.terminate()
        for worker in workers:
            worker.process.join(STOP_GRACE_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            with contextlib.suppress(OSError):
                worker.conn.close()
