"""Runs jobs on one prepared pipeline: renders each video on the GPU and turns any failure (a bad image, running out
of GPU memory) into a failed record; claiming, export and the journal follow svd_batch.batch.loop."""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from PIL import Image

from svd_batch.batch.claims import Claims
from svd_batch.batch.images import fit_image, load_image
from svd_batch.batch.lookahead import Lookahead
from svd_batch.batch.loop import JobLoop, describe_error
from svd_batch.batch.plan import Job, compiled_graph_shapes
from svd_batch.batch.records import JobRecord, OutputFolder
from svd_batch.config import CompileScope, Config, Placement, SampleParams, SvdBatchError
from svd_batch.engine import accelerator
from svd_batch.engine.compiled import Compiler
from svd_batch.engine.hardware import Hardware
from svd_batch.engine.pipeline import Generation, StageOutOfMemory, VideoGenerator
from svd_batch.engine.prepare import prepare_pipeline
from svd_batch.results.quality import FRAME_ONLY, first_frame_psnr, frame_metrics
from svd_batch.results.report import GridBuilder
from svd_batch.results.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass
class JobInputs:
    """What a job renders from, prepared ahead (svd_batch.batch.lookahead)."""

    image: Image.Image | None
    latents: torch.Tensor | None  # VideoGenerator.initial_latents
    load_s: float  # reading and fitting the image
    error: Exception | None = None  # what went wrong preparing them (a missing or corrupt image, ...)


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
        grids: GridBuilder | None = None,
    ):
        """`claims` and `done`: see svd_batch.batch.loop.JobLoop (None: this process owns the folder). `grids`: told
        of each recorded job, to make the comparison grids it completes."""
        self.config = config
        self.hardware = hardware
        self.compiler = compiler
        self.generator = VideoGenerator(prepare_pipeline(pipe, hardware, compiler))
        self.out = out
        self.tracker = tracker
        self.grids = grids
        self.offloaded = hardware.placement is not Placement.resident  # an offload fallback switches it on
        self.chunked = hardware.forward_chunking
        quality = config.quality
        self.metrics = tuple(quality.metrics) if quality.enabled else ()
        measure = partial(frame_metrics, wanted=self.metrics) if set(self.metrics) & set(FRAME_ONLY) else None
        self.loop = JobLoop(out, config.export, claims, done, on_record=self._log_record, measure=measure)

    def run_jobs(self, jobs: list[Job], progress: bool = True) -> list[JobRecord]:
        """Claims, renders, exports and journals each job (svd_batch.batch.loop); returns the records journalled.
        Each job's image and starting noise are prepared on a thread while the job before it renders."""
        with Lookahead(jobs, self.prepare) as inputs:
            return self.loop.run(jobs, lambda job: self.generate(job, inputs.take(job)), progress)

    def start_compiling(self, jobs: list[Job]) -> None:
        """Before the first video: loads the stored compiled graphs the jobs run through (on the loader thread), and
        starts building the missing ones in the background, the first job's first."""
        if self.compiler is None:
            return
        distinct: dict[tuple, SampleParams] = {}  # a job per set of graph shapes: they decide the calls' arguments
        for job in jobs:
            shapes = compiled_graph_shapes([job.params])
            distinct.setdefault(tuple(tuple(sorted(s)) for s in shapes.values()), job.params)
        self.compiler.prefetch(compiled_graph_shapes(distinct.values()))
        try:
            for params in distinct.values():
                for function, calls in self.generator.graph_arguments(params).items():
                    for args in calls:
                        self.compiler.build_ahead(function, args)
        except Exception as exc:  # only sooner: the videos' own calls start what is still missing
            reason = describe_error(exc)
            log.warning("compiled graphs not built ahead (%s); they start building at the first video's calls", reason)

    def prepare(self, job: Job) -> JobInputs:
        """The job's conditioning image, loaded and fitted, and its starting noise; a failure is kept for `generate`
        to report."""
        started = time.perf_counter()
        try:
            params = job.params
            image = fit_image(
                load_image(job.image, self.config.image_timeout_s), params.width, params.height, self.config.image_fit
            )
            load_s = time.perf_counter() - started
            return JobInputs(image, self.generator.initial_latents(params), load_s)
        except Exception as exc:  # reported by generate, on the job's record
            return JobInputs(None, None, time.perf_counter() - started, exc)

    def _log_record(self, index: int, record: JobRecord) -> None:
        if self.tracker:
            self.tracker.log_job(index, record, self.out.root / record.output if record.ok else None)
        if self.grids:
            self.grids.job_recorded(record)
        if not record.ok:
            log.warning("job %s (%s) failed: %s", record.job_id, record.id, record.error)

    def generate(self, job: Job, inputs: JobInputs | None = None) -> tuple[JobRecord, np.ndarray | None]:
        """Renders the frames from the job's inputs (prepared now when not given); any failure becomes a failed
        record."""
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
        if inputs is None:
            inputs = self.prepare(job)
        record.times["time_load_image_s"] = inputs.load_s
        started = time.perf_counter()
        try:
            if inputs.error is not None:
                raise inputs.error
            generation, used, record.fallback = self.generate_fitting(inputs.image, job.params, inputs.latents)
            record.params = dataclasses.asdict(used)
        except Exception as exc:  # one bad job never stops the rest
            record.error = _describe(exc, job)
            record.times["time_total_s"] = inputs.load_s + time.perf_counter() - started
            return record, None
        record.times["time_encode_s"] = generation.times.encode_s
        record.times["time_denoise_s"] = generation.times.denoise_s
        record.times["time_decode_s"] = generation.times.decode_s
        record.peak_vram_gib = generation.peak_vram_gib
        self.measure_against_input(record, generation, inputs.image)
        return record, generation.frames

    def measure_against_input(self, record: JobRecord, generation: Generation, image) -> None:
        """The measures that need the conditioning image: first-frame PSNR, and CLIP similarity through the loaded
        image encoder (one batched call on the device). The frame-only ones run on the export thread."""
        started = time.perf_counter()
        try:
            if "first_frame_psnr" in self.metrics:
                reference = np.asarray(image.convert("RGB"))
                record.quality["first_frame_psnr"] = first_frame_psnr(generation.frames, reference)
            if "subject_similarity" in self.metrics:
                similarity = self.generator.subject_similarity(generation.frames, image, generation.device_frames)
                record.quality["subject_similarity"] = similarity
        except Exception as exc:  # a measure that fails leaves its column empty; the video is still good
            log.warning("job %s: quality measures failed: %s", record.job_id, _describe(exc))
        if self.metrics:
            record.times["time_quality_s"] = time.perf_counter() - started

    def generate_fitting(
        self, image, params: SampleParams, latents: torch.Tensor | None = None
    ) -> tuple[Generation, SampleParams, str]:
        """Generates; when the device runs out of memory, retries with the fallback that can help the stage that ran
        out (svd_batch.engine.pipeline.StageOutOfMemory), never one already applied. Returns what was used and what
        changed."""
        changes: list[str] = []
        while True:
            try:
                return self.generator.generate(image, params, latents), params, "; ".join(changes)
            except StageOutOfMemory as oom:
                release_memory(self.hardware.device)
                fallback = self.fallback_for(oom.stage, params)
                if fallback is None:
                    tried = "; ".join(changes) or "no fallback can help that stage"
                    raise OutOfMemory(
                        f"out of device memory while {oom.stage}, even after: {tried}. Lower num_frames, "
                        f"height/width, use hardware=lowvram, or free the device; then rerun with retry_failed=true"
                    ) from None
                params, change = fallback
                changes.append(change)

    def fallback_for(self, stage: str, params: SampleParams) -> tuple[SampleParams, str] | None:
        """decoding -> halve the decode chunk (then offload); denoising -> model offload + forward chunking (the
        decode chunk is left alone); encoding -> model offload. None when nothing left can help."""
        if stage == "decoding" and params.decode_chunk_size > 1:
            smaller = max(1, params.decode_chunk_size // 2)
            return dataclasses.replace(
                params, decode_chunk_size=smaller
            ), f"decode_chunk_size {params.decode_chunk_size} -> {smaller}"
        if not self.offloaded and self.can_offload():
            log.warning("out of device memory while %s: switching to model offload for the rest of the run", stage)
            self.generator.pipe.enable_model_cpu_offload(device=self.hardware.device)
            self.offloaded = True
            if stage == "denoising":
                self.generator.pipe.unet.enable_forward_chunking()
                self.chunked = True
                return params, "model offload + forward chunking"
            return params, "model offload"
        if stage == "denoising" and self.offloaded and not self.chunked:
            self.generator.pipe.unet.enable_forward_chunking()
            self.chunked = True
            return params, "forward chunking"
        return None

    def can_offload(self) -> bool:
        hw = self.hardware
        return (
            hw.on_accelerator
            and hw.kind != "mps"  # unified memory: moving weights to the CPU frees nothing
            and hw.placement is Placement.resident
            and hw.compile_unet is not CompileScope.full  # offload hooks cannot run inside a whole-UNet graph
        )


class OutOfMemory(SvdBatchError):
    pass


def release_memory(device: str) -> None:
    gc.collect()
    accelerator.empty_cache(device)


def _describe(exc: Exception, job: Job | None = None) -> str:
    if job is not None and not isinstance(exc, SvdBatchError):
        log.debug("job %s failed:\n%s", job.job_id, traceback.format_exc())
    return describe_error(exc)
