"""Jobs over many inputs: planning, the job record, and the engines that run them.

`run_job` is the entry point (``synctalk-audio process`` with several inputs,
a directory or ``--manifest`` calls it), and composes three steps: `jobs.plan`
maps inputs to output directories and checks them, `jobs.resume` finds the
items already finished (from their outputs' metadata.json and the record
`jobs.record` keeps), and `jobs.execute` hands the rest to an engine and
records each result. `jobs.work` is the per-item worker an engine runs, and
`jobs.engine` declares what an engine provides (`Engine`) and where engines
are registered (`ENGINES`: `jobs.local`, ``jobs.ray_engine``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plan import JobItem, plan_job
    from .run import JobProgress, JobSummary, run_job, worker_sizing

__all__ = ["JobItem", "JobProgress", "JobSummary", "plan_job", "run_job", "worker_sizing"]

#: Where each public name lives. Imported on first use: the single-file
#: command imports ``jobs.engine`` (for ``--engine``) but runs no job.
_HOMES = {
    "JobItem": "plan",
    "plan_job": "plan",
    "JobProgress": "run",
    "JobSummary": "run",
    "run_job": "run",
    "worker_sizing": "run",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
