"""Multirun sweeps: one table of the sweep's jobs when they are done (printed by the sweeper in
hydra_plugins/svd_batch_sweeper).

Each multirun job returns its run's summary or raises svd-batch's error (run.py); the launcher (basic, submitit
local or SLURM) hands back every job's result, and this sweeper lists them all (ok with their videos, or failed with
the reason) before Hydra reports the first failure.
"""

from __future__ import annotations

from hydra.core.utils import JobReturn, JobStatus


def job_table(returns: list[JobReturn]) -> str:
    """One line per job: the overrides that tell it from the others, then ok (videos) or FAILED (reason)."""
    shared = set.intersection(*(set(job.overrides or []) for job in returns)) if returns else set()
    lines = [f"multirun: {len(returns)} job(s)"]
    for number, job in enumerate(returns):
        overrides = " ".join(o for o in job.overrides or [] if o not in shared) or "(no overrides)"
        if job.status is JobStatus.COMPLETED:
            summary = job.return_value or {}
            outcome = f"ok      {summary.get('jobs_ok', '?')} video(s) ok, {summary.get('jobs_failed', '?')} failed"
            if summary.get("output_dir"):
                outcome += f"  {summary['output_dir']}"
        else:
            try:
                _ = job.return_value  # raises the job's exception
                reason = "unknown"
            except Exception as exc:  # the job's own error, to show beside its overrides
                reason = f"{type(exc).__name__}: " + " ".join(line.strip() for line in str(exc).splitlines())
            outcome = f"FAILED  {reason}"
        lines.append(f"  #{number}  {overrides}  ->  {outcome}")
    return "\n".join(lines)
