"""Runs jobs on one prepared pipeline: renders each video on the GPU and turns any failure (a bad image, running out
of GPU memory) into a failed record; claiming, export and the journal follow svd_batch.batch.loop."""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
import traceback
from collections.abc import Callable

import numpy as np
import torch

from svd_batch.batch.claims import Claims
from svd_batch.batch.images import fit_image, load_image
from svd_batch.batch.loop import JobLoop, describe_error
from svd_batch.batch.plan import Job
from svd_batch.batch.records import JobRecord, OutputFolder
from svd_batch.config import CompileScope, Config, Placement, SampleParams, SvdBatchError
from svd_batch.engine.compiled import Compiler
from svd_batch.engine.hardware import Hardware
from svd_batch.engine.pipeline import Generation, VideoGenerator
from svd_batch.engine.prepare import prepare_pipeline
from svd_batch.results.tracking import Tracker

log = logging.getLogger(__name__)


class BatchRunner:
    """Runs jobs on one prepared pipeline. Export and bookkeeping of a job run on a thread while the GPU generates
    the next one; stage times are still measured per job."""

    def __init__(
        self,
        config: Config,
        hardware: Hardware,
        pipe,
        out: OutputFolder,
        tracker: Tracker | None = None,
        compiler: Compiler | None = None,
        claims: Claims | None = None,
        done: Callable[[str], bool] | None = None,
    ):
        """`claims` and `done`: see svd_batch.batch.loop.JobLoop (None: this process owns the folder)."""
        self.config = config
        self.hardware = hardware
        self.compiler = compiler
        self.generator = VideoGenerator(prepare_pipeline(pipe, hardware, compiler))
        self.out = out
        self.tracker = tracker
        self.offloaded = False  # set once an out-of-memory fallback has switched to model offload
        self.loop = JobLoop(out, config.export, claims, done, on_record=self._log_record)

    def run_jobs(self, jobs: list[Job], progress: bool = True) -> list[JobRecord]:
        """Claims, renders, exports and journals each job (svd_batch.batch.loop); returns the records journalled."""
        return self.loop.run(jobs, self.generate, progress)

    def _log_record(self, index: int, record: JobRecord) -> None:
        if self.tracker:
            self.tracker.log_job(index, record, self.out.root / record.output if record.ok else None)
        if not record.ok:
            log.warning("job %s (%s) failed: %s", record.job_id, record.id, record.error)

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


class OutOfMemory(SvdBatchError):
    pass


def release_cuda_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _describe(exc: Exception, job: Job | None = None) -> str:
    if job is not None and not isinstance(exc, SvdBatchError):
        log.debug("job %s failed:\n%s", job.job_id, traceback.format_exc())
    return describe_error(exc)
