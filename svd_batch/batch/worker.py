"""Runs jobs on one prepared pipeline: renders each video, exports it on a worker thread while the GPU renders the
next one, journals it, and turns any failure (a bad image, running out of GPU memory) into a failed record."""

from __future__ import annotations

import dataclasses
import errno
import gc
import logging
import time
import traceback
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from svd_batch.batch.images import fit_image, load_image
from svd_batch.batch.plan import Job
from svd_batch.batch.records import JobRecord, OutputError, OutputFolder, utc_timestamp
from svd_batch.config import CompileScope, Config, Placement, SampleParams, SvdBatchError
from svd_batch.engine.compiled import Compiler
from svd_batch.engine.hardware import Hardware
from svd_batch.engine.pipeline import Generation, VideoGenerator
from svd_batch.engine.prepare import prepare_pipeline
from svd_batch.results.export import export_frames, output_name, poster_name, write_poster
from svd_batch.results.tracking import Tracker

log = logging.getLogger(__name__)


class BatchRunner:
    """Runs jobs on one prepared pipeline. Export and bookkeeping of a job run on a worker thread while the GPU
    generates the next one; stage times are still measured per job."""

    def __init__(
        self,
        config: Config,
        hardware: Hardware,
        pipe,
        out: OutputFolder,
        tracker: Tracker | None = None,
        compiler: Compiler | None = None,
    ):
        self.config = config
        self.hardware = hardware
        self.compiler = compiler
        self.generator = VideoGenerator(prepare_pipeline(pipe, hardware, compiler))
        self.out = out
        self.tracker = tracker
        self.offloaded = False  # set once an out-of-memory fallback has switched to model offload

    def run_jobs(self, jobs: list[Job], progress: bool = True) -> list[JobRecord]:
        records: list[JobRecord] = []
        finishing: deque[Future] = deque()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export") as exporter, logging_redirect_tqdm():
            bar = tqdm(total=len(jobs), desc="videos", unit="video", dynamic_ncols=True, disable=not progress)
            for job in jobs:
                record, frames = self.generate(job)
                finishing.append(exporter.submit(self.finish, record, frames))
                while finishing and (finishing[0].done() or len(finishing) > 2):  # at most one export queued
                    records.append(self._collect(finishing.popleft(), len(records), bar))
            while finishing:
                records.append(self._collect(finishing.popleft(), len(records), bar))
            bar.close()
        return records

    def generate(self, job: Job) -> tuple[JobRecord, np.ndarray | None]:
        """Loads the image and renders the frames; any failure becomes a failed record."""
        record = JobRecord(
            job_id=job.job_id,
            id=job.item_id,
            image=job.image,
            status="failed",
            params=job.params_dict(),
            model=job.model,
            hardware=self.hardware.name,
        )
        if self.compiler:
            self.compiler.poll()  # compiled graphs finished in the background take over from this video on
        started = time.perf_counter()
        try:
            params = job.params
            image = fit_image(
                load_image(job.image, self.config.image_timeout_s), params.width, params.height, self.config.image_fit
            )
            record.times["time_load_image_s"] = time.perf_counter() - started
            generation, used, record.fallback = self.generate_fitting(image, params)
            record.params = dataclasses.asdict(used)
        except Exception as exc:  # one bad job never stops the rest
            record.error = _describe(exc, job)
            record.times["time_total_s"] = time.perf_counter() - started
            return record, None
        record.times["time_encode_s"] = generation.times.encode_s
        record.times["time_denoise_s"] = generation.times.denoise_s
        record.times["time_decode_s"] = generation.times.decode_s
        record.peak_vram_gib = generation.peak_vram_gib
        return record, generation.frames

    def generate_fitting(self, image, params: SampleParams) -> tuple[Generation, SampleParams, str]:
        """Generates; on running out of GPU memory, retries with halved decode chunks, then with model offload and
        forward chunking (kept for the rest of the run). Returns what was used and what changed."""
        changes: list[str] = []
        while True:
            try:
                return self.generator.generate(image, params), params, "; ".join(changes)
            except torch.cuda.OutOfMemoryError:
                release_cuda_memory()
            if params.decode_chunk_size > 1:
                smaller = max(1, params.decode_chunk_size // 2)
                changes.append(f"decode_chunk_size {params.decode_chunk_size} -> {smaller}")
                params = dataclasses.replace(params, decode_chunk_size=smaller)
            elif self.can_offload():
                log.warning("out of GPU memory: switching to model offload + forward chunking for the rest of the run")
                self.generator.pipe.enable_model_cpu_offload(device=self.hardware.device)
                self.generator.pipe.unet.enable_forward_chunking()
                self.offloaded = True
                changes.append("model offload + forward chunking")
            else:
                tried = "; ".join(changes) or "no fallback available"
                raise OutOfMemory(
                    f"out of GPU memory even after: {tried}. Lower num_frames, height/width, use hardware=lowvram, "
                    f"or free the GPU; then rerun with retry_failed=true"
                ) from None

    def can_offload(self) -> bool:
        hw = self.hardware
        return (
            hw.is_cuda
            and hw.placement is Placement.resident
            and hw.compile_unet is not CompileScope.full  # offload hooks cannot run inside a whole-UNet graph
            and not self.offloaded
        )

    def finish(self, record: JobRecord, frames: np.ndarray | None) -> JobRecord:
        """Exports the frames and journals the record (on the export thread)."""
        if frames is not None:
            try:
                exported = time.perf_counter()
                target = self.out.videos / output_name(record.job_id, self.config.export.format)
                export_frames(frames, target, self.config.export)
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
                record.error = f"export failed: {_describe(exc)}"
            except Exception as exc:
                record.error = f"export failed: {_describe(exc)}"
            # the job's own work; its export overlaps the next job, so wall time per video is lower
            record.times["time_total_s"] = sum(t for name, t in record.times.items() if name != "time_total_s")
        record.finished_at = utc_timestamp()
        self.out.append(record)
        return record

    def _collect(self, future: Future, index: int, bar: tqdm) -> JobRecord:
        record = future.result()
        if self.tracker:
            self.tracker.log_job(index, record, self.out.root / record.output if record.ok else None)
        if not record.ok:
            log.warning("job %s (%s) failed: %s", record.job_id, record.id, record.error)
        bar.set_postfix_str(f"{record.id} {record.status}")
        bar.update()
        return record


class OutOfMemory(SvdBatchError):
    pass


def release_cuda_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _describe(exc: Exception, job: Job | None = None) -> str:
    if isinstance(exc, SvdBatchError):
        return str(exc)
    if job is not None:
        log.debug("job %s failed:\n%s", job.job_id, traceback.format_exc())
    return f"{type(exc).__name__}: {exc}"
