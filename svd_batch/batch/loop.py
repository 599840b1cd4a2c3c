"""The per-job protocol every worker follows, without torch: claim the job, render it, and only while the claim is
still this worker's, export its files (written under temporary names, then renamed) and journal its record. A
worker that lost its claim (its heartbeat went stale, or another worker took the job over) drops the job.

Exports run on a thread while the next job renders, and a job's frame measures on another beside its export (the
encoder is a separate process and OpenCV releases the GIL, so the two overlap: the first video is done sooner); the
renderer is any callable (svd_batch.batch.worker renders on the GPU, the crash tests render noise)."""

from __future__ import annotations

import errno
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from svd_batch.batch.claims import Claim, Claims
from svd_batch.batch.plan import Job
from svd_batch.batch.records import JobRecord, OutputError, OutputFolder, utc_timestamp
from svd_batch.config import ExportConfig, SvdBatchError
from svd_batch.results.export import export_frames, output_name, poster_name, write_poster

log = logging.getLogger(__name__)

Render = Callable[[Job], tuple[JobRecord, "np.ndarray | None"]]
# test hook: every render is noted in this file (one line, job id and worker), so tests can count double renders
RENDER_LOG_ENV = "SVD_BATCH_RENDER_LOG"


class JobLoop:
    def __init__(
        self,
        out: OutputFolder,
        export: ExportConfig,
        claims: Claims | None = None,
        done: Callable[[str], bool] | None = None,
        on_record: Callable[[int, JobRecord], None] | None = None,
        measure: Callable[[np.ndarray, dict], dict[str, float]] | None = None,
    ):
        """`claims`: settles which worker renders a job (None: this process owns the folder, e.g. the bench).
        `done(job_id)`: whether a job needs no more work (asked before taking over a dead worker's job).
        `on_record(n, record)`: called on this thread for each journalled record (tracking, logging).
        `measure(frames, params)`: quality measures computed on the export thread (svd_batch.results.quality)."""
        self.out = out
        self.export = export
        self.claims = claims
        self.done = done or (lambda job_id: False)
        self.on_record = on_record
        self.measure = measure
        self.worker = claims.me.worker_id if claims else ""
        self.render_log = os.environ.get(RENDER_LOG_ENV)

    def run(self, jobs: list[Job], render: Render, progress: bool = True) -> list[JobRecord]:
        records: list[JobRecord] = []
        finishing: deque[Future] = deque()
        exporter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
        measurer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="measure")  # beside the export
        measures_on = measurer if self.measure else None  # no thread hop for a loop without measures
        with exporter, measurer, logging_redirect_tqdm():
            bar = tqdm(total=len(jobs), desc="videos", unit="video", dynamic_ncols=True, disable=not progress)

            def collect() -> None:
                record = finishing.popleft().result()
                bar.update()
                if record is None:
                    return
                if self.on_record:
                    self.on_record(len(records), record)
                bar.set_postfix_str(f"{record.id} {record.status}")
                records.append(record)

            for job in jobs:
                claim = self.claims.try_claim(job.job_id, self.done) if self.claims else None
                if self.claims and claim is None:
                    bar.update()  # done or held by another worker
                    continue
                record, frames = render(job)
                self._note_render(job)
                record.worker = self.worker
                finishing.append(exporter.submit(self.finish, record, frames, claim, measures_on))
                while finishing and (finishing[0].done() or len(finishing) > 2):  # at most one export queued
                    collect()
            while finishing:
                collect()
            bar.close()
        return records

    def finish(
        self, record: JobRecord, frames: np.ndarray | None, claim: Claim | None, measurer: Executor | None = None
    ) -> JobRecord | None:
        """Exports the frames and journals the record (on the export thread), or drops the job if the claim was
        lost: the worker that took it over renders it. `measurer`: where the frame measures run while the video is
        encoded (None: after it, on this thread)."""
        if not self._still_mine(claim, "exporting"):
            return None
        if frames is not None:
            measuring = measurer.submit(self._measure, record, frames) if measurer else None
            self._export(record, frames)  # the two write different fields of the record
            if measuring:
                measuring.result()
            else:
                self._measure(record, frames)
            # the job's own work; its export overlaps the next job, so wall time per video is lower
            record.times["time_total_s"] = sum(t for name, t in record.times.items() if name != "time_total_s")
        if not self._still_mine(claim, "recording"):
            return None  # its files stay: the new holder's export replaces them atomically
        record.finished_at = utc_timestamp()
        self.out.append(record)
        return record

    def _measure(self, record: JobRecord, frames: np.ndarray) -> None:
        if self.measure is None:
            return
        started = time.perf_counter()
        try:
            record.quality.update(self.measure(frames, params=record.params))
        except Exception as exc:  # a measure that fails leaves its columns empty; the video is still good
            log.warning("job %s: quality measures failed: %s", record.job_id, describe_error(exc))
        record.times["time_quality_s"] = record.times.get("time_quality_s", 0.0) + time.perf_counter() - started

    def _export(self, record: JobRecord, frames: np.ndarray) -> None:
        try:
            exported = time.perf_counter()
            target = self.out.videos / output_name(record.job_id, self.export.format)
            export_frames(frames, target, self.export)
            poster = write_poster(frames, self.out.posters / poster_name(record.job_id))
            record.times["time_export_s"] = time.perf_counter() - exported
            record.output = target.relative_to(self.out.root).as_posix()
            record.poster = poster.relative_to(self.out.root).as_posix()
            record.status = "ok"
        except OSError as exc:
            if exc.errno == errno.ENOSPC:  # every later job would fail the same way: stop, keep what is done
                raise OutputError(
                    f"the disk holding {self.out.root} is full ({exc}); free space and rerun: "
                    f"finished jobs are kept and skipped"
                ) from exc
            record.error = f"export failed: {describe_error(exc)}"
        except Exception as exc:
            record.error = f"export failed: {describe_error(exc)}"

    def _still_mine(self, claim: Claim | None, stage: str) -> bool:
        if claim is None or self.claims.still_mine(claim):
            return True
        log.warning(
            "job %s: this worker lost its claim before %s (heartbeat late or taken over); leaving it to the other",
            claim.job_id, stage,
        )  # fmt: skip
        return False

    def _note_render(self, job: Job) -> None:
        if self.render_log:
            with open(self.render_log, "a") as note:  # O_APPEND: one short line per write, whole
                note.write(f"{job.job_id} {self.worker or os.getpid()}\n")


def describe_error(exc: Exception) -> str:
    if isinstance(exc, SvdBatchError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
