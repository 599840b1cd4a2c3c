"""Prepares the next job's inputs on a thread while the current job renders.

Reading and fitting an image and drawing a video's starting noise take ~0.1 s of CPU a job (benchmarks/
h200-2026-12-01c); done on the main thread they sit between two videos with the GPU idle. The job loop asks for
jobs in plan order (skipping those another worker holds), so preparing the one after the job just taken keeps
one job's inputs ready without reading the whole plan ahead.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from svd_batch.batch.plan import Job

Inputs = TypeVar("Inputs")


class Lookahead(Generic[Inputs]):
    def __init__(self, jobs: list[Job], prepare: Callable[[Job], Inputs]):
        """`prepare(job)` must not raise: it returns whatever failure it met as part of its result."""
        self.prepare = prepare
        self.following = {job.job_id: later for job, later in zip(jobs, jobs[1:], strict=False)}
        self.ahead: tuple[str, Future[Inputs]] | None = None  # the job after the last one taken
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inputs")

    def take(self, job: Job) -> Inputs:
        """`job`'s inputs (prepared ahead, or now when they were not), and starts preparing the job after it."""
        ready = self.ahead[1] if self.ahead and self.ahead[0] == job.job_id else None
        later = self.following.get(job.job_id)
        # inputs prepared for a job that was skipped (held by another worker) are dropped
        self.ahead = (later.job_id, self.pool.submit(self.prepare, later)) if later else None
        return ready.result() if ready is not None else self.prepare(job)

    def __enter__(self) -> Lookahead[Inputs]:
        return self

    def __exit__(self, *exc) -> None:
        if self.ahead:
            self.ahead[1].cancel()
        self.pool.shutdown(wait=True)
