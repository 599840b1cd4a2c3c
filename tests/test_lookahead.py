"""The job loop's one-job-ahead preparation of inputs (svd_batch.batch.lookahead)."""

from __future__ import annotations

import threading

from svd_batch.batch.lookahead import Lookahead
from svd_batch.batch.plan import Job
from svd_batch.config import SampleParams


def jobs(count: int) -> list[Job]:
    return [Job(f"job{k}", f"item{k}", f"image{k}.png", SampleParams(), "tiny") for k in range(count)]


def recording_prepare(calls: list[tuple[str, str]]):
    def prepare(job: Job) -> str:
        calls.append((job.job_id, threading.current_thread().name))
        return f"inputs of {job.job_id}"

    return prepare


def test_each_jobs_inputs_are_prepared_once_and_all_but_the_first_on_the_thread():
    calls: list[tuple[str, str]] = []
    plan = jobs(4)
    with Lookahead(plan, recording_prepare(calls)) as inputs:
        taken = [inputs.take(job) for job in plan]
    assert taken == [f"inputs of job{k}" for k in range(4)]
    threads = dict(calls)  # job1's may be recorded before job0's: it starts on the thread as job0 is taken
    assert len(calls) == 4 and sorted(threads) == ["job0", "job1", "job2", "job3"]
    assert threads["job0"] == threading.current_thread().name
    assert all(threads[f"job{k}"].startswith("inputs") for k in (1, 2, 3))


def test_a_skipped_job_is_prepared_for_nothing_and_the_next_one_now():
    calls: list[tuple[str, str]] = []
    plan = jobs(4)
    with Lookahead(plan, recording_prepare(calls)) as inputs:
        assert inputs.take(plan[0]) == "inputs of job0"
        # job1 is held by another worker: the loop never takes it
        assert inputs.take(plan[2]) == "inputs of job2"
        assert inputs.take(plan[3]) == "inputs of job3"
    prepared = [job_id for job_id, _ in calls]
    assert sorted(prepared) == ["job0", "job1", "job2", "job3"]  # job1 for nothing, each once
    assert ("job2", threading.current_thread().name) in calls  # not prepared ahead: job1 was
