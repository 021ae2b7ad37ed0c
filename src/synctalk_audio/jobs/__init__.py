"""Jobs over many inputs: planning, the job record, and the engines that run them.

`run_job` is the entry point (``synctalk-audio process`` with several inputs,
a directory or ``--manifest`` calls it): `jobs.plan` maps inputs to output
directories and checks them, `jobs.record` keeps the resumable record,
`jobs.work` is the per-item worker an engine runs, and `jobs.engine` is the
seam engines plug into (`jobs.local`, ``jobs.ray_engine``).
"""

from __future__ import annotations

from .plan import JobItem, plan_job
from .run import JobProgress, JobSummary, run_job, worker_sizing

__all__ = ["JobItem", "JobProgress", "JobSummary", "plan_job", "run_job", "worker_sizing"]
