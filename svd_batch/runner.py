"""The batch run, top to bottom: config -> plan -> pipeline -> jobs -> export + index + tracking."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from svd_batch.config import Config, ModelInit, Placement, SvdBatchError
from svd_batch.export import export_frames, output_name
from svd_batch.hardware import Hardware, apply_hardware, describe, detect_gpu, resolve_hardware
from svd_batch.images import fit_image, load_image
from svd_batch.manifest import bundled_manifest, read_manifest
from svd_batch.models import load_pipeline
from svd_batch.pipeline import VideoGenerator
from svd_batch.plan import (
    Job,
    describe_plan,
    estimate_seconds_per_job,
    format_duration,
    model_identity,
    plan_jobs,
)
from svd_batch.records import JobRecord, OutputFolder
from svd_batch.summary import format_summary, summarize
from svd_batch.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    jobs: list[Job]
    records: list[JobRecord]  # of the jobs this run did
    index: pd.DataFrame | None  # None for a dry run
    summary: dict
    output_dir: Path | None
    tracking_dir: Path | None = None


def run(config: Config, group: str | None = None) -> RunResult:
    started = time.perf_counter()
    manifest = Path(config.manifest) if config.manifest else bundled_manifest()
    rows = read_manifest(manifest)
    hardware = resolve_hardware(config.hardware, detect_gpu(config.hardware.device))
    log.info(describe(hardware))
    jobs = plan_jobs(
        rows,
        config.sample,
        config.sweep.grid.axes(),
        model_identity(config.model, hardware.dtype),
        hardware.decode_chunk_size,
    )
    per_job = estimate_seconds_per_job(jobs, _cost_reference(config, hardware))
    plan_text = describe_plan(jobs, config.sweep.grid.axes(), per_job)
    if config.dry_run:
        print(f"dry run, manifest {manifest}:\n{plan_text}")
        return RunResult(jobs=jobs, records=[], index=None, summary={"jobs_planned": len(jobs)}, output_dir=None)

    out = OutputFolder(Path(config.output_dir).expanduser())
    out.prepare()
    OmegaConf.save(OmegaConf.structured(config), out.root / "config.yaml")
    done = out.completed_ids() if config.resume else set()
    pending = [job for job in jobs if job.job_id not in done]
    log.info(
        "%d job(s) planned, %d already done in %s, %d to run",
        len(jobs),
        len(jobs) - len(pending),
        out.root,
        len(pending),
    )
    if per_job is not None and pending:
        log.info("estimated time: %s", format_duration(per_job * len(pending)))

    model_load_s = 0.0
    generator = None
    if pending:
        loaded = time.perf_counter()
        pipe = load_pipeline(config.model, hardware.torch_dtype)
        generator = VideoGenerator(apply_hardware(pipe, hardware))
        model_load_s = time.perf_counter() - loaded
        log.info("model %s loaded in %.1f s", config.model.name, model_load_s)

    tracker = Tracker(config.tracking, out.root, _plain(config), group=group)
    records: list[JobRecord] = []
    with logging_redirect_tqdm():
        progress = tqdm(pending, desc="videos", unit="video", dynamic_ncols=True)
        for index, job in enumerate(progress):
            record = run_job(job, generator, config, out, hardware)
            out.append(record)
            records.append(record)
            tracker.log_job(index, record, out.root / record.output if record.ok else None)
            progress.set_postfix_str(f"{job.item_id} {record.status}")
            if not record.ok:
                log.warning("job %s (%s) failed: %s", job.job_id, job.item_id, record.error)
    index = out.write_index()

    summary = summarize(
        records, skipped=len(jobs) - len(pending), wall_s=time.perf_counter() - started, model_load_s=model_load_s
    )
    log.info("%s\n  output      %s", format_summary(summary, [r for r in records if not r.ok]), out.index_path)
    tracker.finish(summary)
    return RunResult(
        jobs=jobs, records=records, index=index, summary=summary, output_dir=out.root, tracking_dir=tracker.run_path
    )


def run_job(job: Job, generator: VideoGenerator, config: Config, out: OutputFolder, hardware: Hardware) -> JobRecord:
    """Runs one job; any failure becomes a failed record, so one bad image never stops the rest."""
    record = JobRecord(
        job_id=job.job_id,
        id=job.item_id,
        image=job.image,
        status="failed",
        params=job.params_dict(),
        model=job.model,
        hardware=hardware.name,
    )
    started = time.perf_counter()
    try:
        params = job.params
        image = fit_image(load_image(job.image, config.image_timeout_s), params.width, params.height, config.image_fit)
        record.times["time_load_image_s"] = time.perf_counter() - started
        generation = generator.generate(image, params)
        record.times["time_encode_s"] = generation.times.encode_s
        record.times["time_denoise_s"] = generation.times.denoise_s
        record.times["time_decode_s"] = generation.times.decode_s
        record.peak_vram_gib = generation.peak_vram_gib

        exported = time.perf_counter()
        target = out.videos / output_name(job.job_id, config.export.format)
        export_frames(generation.frames, target, config.export)
        record.times["time_export_s"] = time.perf_counter() - exported
        record.output = target.relative_to(out.root).as_posix()
        record.status = "ok"
    except SvdBatchError as exc:
        record.error = str(exc)
    except Exception as exc:  # the rest of the batch goes on; the traceback goes to the debug log
        record.error = f"{type(exc).__name__}: {exc}"
        log.debug("job %s failed:\n%s", job.job_id, traceback.format_exc())
    record.times["time_total_s"] = time.perf_counter() - started
    return record


def _cost_reference(config: Config, hardware: Hardware) -> str | None:
    if config.model.init is ModelInit.tiny:
        return "cpu_tiny" if hardware.device == "cpu" else None
    if not hardware.is_cuda:
        return None
    return "gpu" if hardware.placement is Placement.resident else "gpu_offload"


def _plain(config: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(config), resolve=True, enum_to_str=True)
