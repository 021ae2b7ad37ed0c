"""The execution-engine seam: how a job's items are spread over workers.

An engine knows nothing of audio, modes or output files. It receives a list
of items, a picklable factory that builds one worker (a callable holding,
for example, one encoder session) in each process or actor it starts, and a
callback. Each worker is called once per item and returns a picklable result;
it must not raise (errors are part of the result). The engine calls
``on_result(index, result)`` in the calling thread, in completion order,
exactly once per item, so the caller can keep its progress and job record
there.

`Engine` declares everything a job uses of an engine. A new engine is one
module with a class following it, and one line registering it: an entry of
`ENGINES` (``ENGINES["name"] = "package.module:Class"``, imported only when
chosen, or the class itself).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

from ..errors import ParameterError, WorkerStartError

__all__ = [
    "ENGINES",
    "CommandOption",
    "Engine",
    "WorkerFactory",
    "WorkerStartError",
    "engine_class",
    "make_engine",
]

#: Builds one worker inside a worker process or actor; called once there.
WorkerFactory = Callable[[], Callable[[Any], Any]]


@dataclasses.dataclass(frozen=True)
class CommandOption:
    """A constructor keyword of an engine that ``synctalk-audio process`` offers as an option.

    Attributes
    ----------
    name : str
        The keyword; the option is ``--NAME`` (``_`` as ``-``), a string.
    metavar : str
        How the help shows its value (``HOST:PORT``).
    help : str
        What it is; the help prefixes "with --engine NAME: ".
    """

    name: str
    metavar: str
    help: str


class Engine(Protocol):
    """Runs ``worker(item)`` for every item, reporting each result once.

    A job builds an engine as ``cls(workers=N, **options)`` (N None: the
    engine or the job decides), calls `check` before it writes anything,
    sets `workers` once it knows how many items are left to do (unless the
    engine reserves CPUs per worker and sizes its own pool), calls `run`, and
    reads `pool_size` after it.
    """

    @property
    def name(self) -> str:
        """The name ``--engine`` selects it by."""
        ...

    @property
    def options(self) -> tuple[str, ...]:
        """The constructor's keywords besides ``workers``: what a job's ``engine_options``
        may give (anything else is refused before any work)."""
        ...

    @property
    def command_options(self) -> tuple[CommandOption, ...]:
        """Those of `options` the command offers as options of the same name
        (``address`` as ``--address``); given with another engine, refused."""
        ...

    #: Workers to use; None lets the engine decide (an engine that reserves
    #: CPUs per worker sizes its own pool). A job sets it before `run`.
    workers: int | None

    @property
    def cpus_per_worker(self) -> float | None:
        """CPUs the engine reserves for each worker on a cluster (each worker's encoder
        then gets that many threads); None for an engine that shares out this
        machine's CPUs (the job sizes its workers: `worker_sizing`)."""
        ...

    @property
    def pool_size(self) -> int | None:
        """The workers the last `run` used (None before a run)."""
        ...

    def check(self) -> None:
        """Raise `ParameterError` if the engine cannot run (its dependency is
        missing, its cluster does not answer); called before anything is written."""
        ...

    def run(
        self,
        items: Sequence[Any],
        make_worker: WorkerFactory,
        on_result: Callable[[int, Any], None],
    ) -> None:
        """Process every item; ``on_result(i, result)`` once per item index ``i``.

        Returns when every item has a result. An item the engine could not
        produce (its worker died) gets an exception in place of its result.
        If ``make_worker()`` raises, the engine stops its workers and raises
        `WorkerStartError` with that error's type and message (the first
        failure ends the run: every worker would fail the same way). If
        ``on_result`` raises (for example on Ctrl-C), the engine stops its
        workers and re-raises.
        """
        ...


#: ``--engine`` name -> "module:class" (imported only when selected, so an
#: optional engine's dependency is needed only by those who choose it), or
#: the class itself.
ENGINES: dict[str, str | type[Any]] = {
    "local": "synctalk_audio.jobs.local:LocalEngine",
    "ray": "synctalk_audio.jobs.ray_engine:RayEngine",
}


#: What `Engine` declares, checked on each engine a job builds.
MEMBERS = (
    "name",
    "options",
    "command_options",
    "workers",
    "cpus_per_worker",
    "pool_size",
    "check",
    "run",
)


def engine_class(name: str) -> type[Any]:
    """The engine class registered as ``name`` (a class following `Engine`).

    Raises
    ------
    ParameterError
        If no engine has that name; the message lists those that do.
    """
    target = ENGINES.get(name)
    if target is None:
        raise ParameterError(f"unknown engine '{name}': expected one of {', '.join(ENGINES)}")
    if isinstance(target, str):
        module, _, cls = target.partition(":")
        target = getattr(importlib.import_module(module), cls)
    return cast("type[Any]", target)


def make_engine(
    name: str,
    workers: int | None = None,
    threads: int | None = None,
    options: dict[str, Any] | None = None,
) -> Engine:
    """The engine ``name`` built with ``options``, before any work (bad options fail here).

    An engine that reserves CPUs per worker (``cpus_per_worker`` is one of
    its `Engine.options`) reserves ``threads`` CPUs per worker when
    ``threads`` is given and the options do not say otherwise.

    Raises
    ------
    ParameterError
        For an unknown engine, an option it does not have, or a bad value.
    TypeError
        If the engine lacks a member `Engine` declares (the message names it).
    """
    cls = engine_class(name)
    kwargs = dict(options or {})
    accepted: tuple[str, ...] = tuple(getattr(cls, "options", ()))
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ParameterError(
            f"the {name} engine has no option {', '.join(map(repr, unknown))}: its options are"
            f" {', '.join(accepted) or 'none'} (workers is run_job's own argument)"
        )
    if threads is not None and "cpus_per_worker" in accepted:
        kwargs.setdefault("cpus_per_worker", float(threads))
    engine = cls(workers=workers, **kwargs)
    missing = [member for member in MEMBERS if not hasattr(engine, member)]
    if missing:
        raise TypeError(
            f"engine {name} ({cls.__module__}.{cls.__qualname__}) lacks"
            f" {', '.join(missing)}: an engine must have every member of"
            " synctalk_audio.jobs.engine.Engine"
        )
    built: Engine = engine
    return built
