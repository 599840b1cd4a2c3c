"""A worker for the crash tests: svd-batch's real claim -> export -> journal protocol (svd_batch.batch.loop) on an
output folder, rendering noise instead of running the model, so that a process starts in about a second and can be
killed many times. It can also kill itself at a chosen point, the way SQLite's crash tests do:

python -m tests.crash_worker OUT JOBS [--crash rename|append] [--at N] [--render-s S]

--crash rename: SIGKILL just before the N-th rename of a finished file into place (a video or poster)
--crash append: write half of the N-th journal line, then SIGKILL (a torn record)
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

import numpy as np

from svd_batch.batch.claims import Claims
from svd_batch.batch.loop import JobLoop
from svd_batch.batch.plan import Job
from svd_batch.batch.records import JobRecord, OutputFolder, journal_line
from svd_batch.config import ExportConfig, ExportFormat, SampleParams

FRAMES, SIZE = 4, 32


def planned_jobs(count: int) -> list[Job]:
    params = [SampleParams(FRAMES, 2, SIZE, SIZE, seed=i) for i in range(count)]
    return [Job(f"job{i:03d}", f"item{i}", "noise", p, "noise") for i, p in enumerate(params)]


def render(job: Job, seconds: float) -> tuple[JobRecord, np.ndarray]:
    time.sleep(seconds)
    frames = np.random.default_rng(job.params.seed).integers(0, 256, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    record = JobRecord(job.job_id, job.item_id, job.image, "failed", job.params_dict(), job.model, "crash-test")
    return record, frames


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_at_rename(at: int) -> None:
    replace, calls = os.replace, [0]

    def counting_replace(source, target):
        calls[0] += 1
        if calls[0] == at and Path(target).parent.name in ("videos", "posters"):
            die()
        return replace(source, target)

    os.replace = counting_replace


def crash_at_append(at: int) -> None:
    append, calls = OutputFolder.append, [0]

    def torn_append(self, record):
        calls[0] += 1
        if calls[0] < at:
            return append(self, record)
        line = journal_line(record)
        with self.journal_path.open("a", encoding="utf-8") as journal:
            journal.write(line[: len(line) // 2])
            journal.flush()
            os.fsync(journal.fileno())
        die()

    OutputFolder.append = torn_append


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("jobs", type=int)
    parser.add_argument("--crash", choices=["rename", "append"])
    parser.add_argument("--at", type=int, default=1)
    parser.add_argument("--render-s", type=float, default=0.05)
    args = parser.parse_args()
    if args.crash == "rename":
        crash_at_rename(args.at)
    elif args.crash == "append":
        crash_at_append(args.at)

    claims = Claims(args.out, lease_s=60)
    with OutputFolder(args.out, claims.me.worker_id) as out:
        jobs = [job for job in planned_jobs(args.jobs) if job.job_id not in out.job_states()]
        claims.start()
        try:
            loop = JobLoop(out, ExportConfig(format=ExportFormat.mp4, fps=4), claims, lambda j: j in out.job_states())
            loop.run(jobs, lambda job: render(job, args.render_s), progress=False)
        finally:
            claims.stop()
        out.write_index()


if __name__ == "__main__":
    main()
