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

from .plan import JobItem, plan_job
from .run import JobProgress, JobSummary, run_job, worker_sizing

__all__ = ["JobItem", "JobProgress", "JobSummary", "plan_job", "run_job", "worker_sizing"]
