"""The execution-engine seam: how a job's items are spread over workers.

An engine knows nothing of audio, modes or output files. It receives a list
of items, a picklable factory that builds one worker (a callable holding,
for example, one encoder session) in each process or actor it starts, and a
callback. Each worker is called once per item and returns a picklable result;
it must not raise (errors are part of the result). The engine calls
``on_result(index, result)`` in the calling thread, in completion order,
exactly once per item, so the caller can keep its progress and job record
there. A new engine is one module with a class following `Engine` and one
line in `ENGINES`. An engine may also have a ``check()`` method, which a job
calls before it writes anything: it raises `ParameterError` if the engine
cannot run (its dependency is missing, its cluster does not answer).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..errors import ParameterError

#: Builds one worker inside a worker process or actor; called once there.
WorkerFactory = Callable[[], Callable[[Any], Any]]


class Engine(Protocol):
    """Runs ``worker(item)`` for every item, reporting each result once."""

    #: The name ``--engine`` selects it by.
    name: str

    def run(
        self,
        items: Sequence[Any],
        make_worker: WorkerFactory,
        on_result: Callable[[int, Any], None],
    ) -> None:
        """Process every item; ``on_result(i, result)`` once per item index ``i``.

        Returns when every item has a result. If ``on_result`` raises (for
        example on Ctrl-C), the engine stops its workers and re-raises.
        """
        ...


#: ``--engine`` name -> "module:class", imported only when selected (so an
#: optional engine's dependency is needed only by those who choose it).
ENGINES: dict[str, str] = {
    "local": "synctalk_audio.jobs.local:LocalEngine",
    "ray": "synctalk_audio.jobs.ray_engine:RayEngine",
}


def engine_class(name: str) -> type[Any]:
    """The engine class registered as ``name``.

    Raises
    ------
    ParameterError
        If no engine has that name; the message lists those that do.
    """
    target = ENGINES.get(name)
    if target is None:
        raise ParameterError(f"unknown engine '{name}': expected one of {', '.join(ENGINES)}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]
