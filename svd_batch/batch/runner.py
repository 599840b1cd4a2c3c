"""The batch run, top to bottom: config -> plan -> pipeline -> jobs -> export + index + tracking.

Planning needs no torch: a dry run (and `--cfg job`) stops there in about a second. torch, diffusers and the
model load only in `render`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from svd_batch.batch.claims import Claims
from svd_batch.batch.distributed import current_shard, preferred_order
from svd_batch.batch.fingerprints import CACHE_NAME as FINGERPRINTS_NAME
from svd_batch.batch.fingerprints import FingerprintCache
from svd_batch.batch.manifest import ManifestRow, bundled_manifest, read_manifest
from svd_batch.batch.plan import (
    Job,
    compiled_graph_shapes,
    describe_plan,
    estimate_seconds_per_job,
    fixed_conditioning_warning,
    format_duration,
    model_identity,
    plan_jobs,
    row_params,
)
from svd_batch.batch.records import JobRecord, OutputFolder, utc_timestamp
from svd_batch.config import CompileScope, Config, ConfigError, ModelInit, Placement
from svd_batch.engine.accelerator import GpuInfo, detect_gpu, probe_gpu
from svd_batch.engine.artifacts import ArtifactStore, attention_fields, environment_fields, unet_graph_choices
from svd_batch.engine.builders import BuildQueue
from svd_batch.engine.hardware import FastPaths, Hardware, PlanFacts, describe, fast_paths_of, resolve_hardware
from svd_batch.results.export import partial_name
from svd_batch.results.report import GALLERY_NAME, GridBuilder, make_report
from svd_batch.results.summary import format_summary, summarize
from svd_batch.results.tracking import Tracker

log = logging.getLogger(__name__)
ENVIRONMENT_NAME = "environment.json"


@dataclass
class RunResult:
    jobs: list[Job]
    records: list[JobRecord]  # of the jobs this run did
    index: pd.DataFrame | None  # None for a dry run
    summary: dict
    output_dir: Path | None
    tracking_dir: Path | None = None


@dataclass
class Plan:
    manifest: Path
    jobs: list[Job]
    axes: dict
    hardware: Hardware
    gpu: GpuInfo | None
    seconds_per_job: float | None


def run(config: Config, group: str | None = None) -> RunResult:
    started = time.perf_counter()
    plan = make_plan(config)
    if config.dry_run:
        print(f"dry run, manifest {plan.manifest}:\n{describe_plan(plan.jobs, plan.axes, plan.seconds_per_job)}")
        return RunResult(
            jobs=plan.jobs, records=[], index=None, summary={"jobs_planned": len(plan.jobs)}, output_dir=None
        )
    return render(config, plan, group, started)


def make_plan(config: Config) -> Plan:
    """Manifest x grid -> jobs, with the hardware profile resolved for them. A dry run asks `nvidia-smi` about the
    GPU instead of torch, so it never imports torch."""
    manifest = Path(config.manifest) if config.manifest else bundled_manifest()
    rows = read_manifest(manifest)
    axes = config.sweep.grid.axes()
    gpu = (probe_gpu if config.dry_run else detect_gpu)(config.hardware.device)
    hardware = resolve_hardware(config.hardware, gpu, plan_facts(config, rows, axes, gpu))
    log.info(describe(hardware))
    identity = model_identity(config.model, hardware.dtype, hardware.approximation)
    fingerprints = FingerprintCache(Path(config.cache_dir).expanduser() / FINGERPRINTS_NAME)
    jobs = plan_jobs(rows, config.sample, axes, identity, hardware.decode_chunk_size, fingerprints)
    fingerprints.save()  # for the other workers and the next run: only new or changed images are hashed again
    if warning := fixed_conditioning_warning(config.model, jobs):
        log.warning(warning)
    per_job = estimate_seconds_per_job([job.params for job in jobs], _cost_reference(config, hardware))
    return Plan(manifest, jobs, axes, hardware, gpu, per_job)


def plan_facts(config: Config, rows: list[ManifestRow], axes: dict, gpu: GpuInfo | None) -> PlanFacts | None:
    """What `hardware=auto` needs to decide whether compiling pays: the plan's eager time, and whether compiled
    graphs for its shapes are already cached."""
    hw = config.hardware
    if hw.compile_unet is not CompileScope.auto or gpu is None:
        return None
    params = [p for _, p in row_params(rows, config.sample, axes)]
    reference = None if config.model.init is ModelInit.tiny else "gpu"
    per_video = estimate_seconds_per_job(params, reference)
    cached = False
    if hw.compile_artifacts and hw.compile_cache_dir:
        dtype = "float16" if hw.dtype.value == "auto" else hw.dtype.value
        identity = model_identity(config.model, dtype)
        graphs = unet_graph_choices(hw.compile_unet_parts)  # step caching (approximate) is never auto's choice
        paths = fast_paths_of(hw)
        stored = stored_unet_graphs(hw.compile_cache_dir, identity, dtype, paths, gpu.name, graphs, params)
        cached = all(any(choices) for choices in stored)  # a compiled UNet for every shape, whichever way it is kept
    return PlanFacts(eager_s=per_video * len(params) if per_video else None, compiled_cached=cached, videos=len(params))


def stored_unet_graphs(
    cache_dir: str, identity: str, dtype: str, paths: FastPaths, gpu_name: str, graphs: list[list[str]], params: list
) -> list[list[bool]]:
    """For each of the plan's UNet shapes, which of the ways `graphs` to keep its compiled UNet (each a list of
    compiled functions, svd_batch.engine.artifacts.unet_graph_choices) are wholly stored under `cache_dir`, looked up
    without torch."""
    store = ArtifactStore(Path(cache_dir).expanduser() / "artifacts")
    fields = {
        "model": identity,
        "dtype": dtype,
        "fast_paths": paths.tag(),
        **environment_fields(gpu_name),
        **attention_fields(paths),
    }
    shapes = sorted(compiled_graph_shapes(params)["unet"])
    return [
        [all(store.find(f, {**fields, "shape": list(shape)}) for f in functions) for functions in graphs]
        for shape in shapes
    ]


def builds_for_shape(graphs: list[list[str]], stored: list[bool]) -> int:
    """How many graphs a run builds for one UNet shape (svd_batch.engine.compiled.Compiler.request): none where the
    preferred way is stored; the preferred one where another is; the quickest way's and the preferred one where
    none is."""
    if stored[0]:
        return 0
    if any(stored):
        return len(graphs[0])
    return len(graphs[-1]) + (len(graphs[0]) if len(graphs) > 1 else 0)


def start_builders(config: Config, hardware: Hardware, jobs: list[Job], gpu: GpuInfo | None) -> BuildQueue | None:
    """Compiled-graph builders on standby, where this run will build some of its UNet's graphs: started before this
    process imports torch, they import it while the model loads (svd_batch.engine.builders). One for each graph the
    run will build (svd_batch.engine.compiled.Compiler.request) and one for a VAE decoder, up to the number that run
    at once."""
    hw = hardware
    if not (hw.compile_unet is CompileScope.full and hw.compile_artifacts and hw.compile_background) or (
        hw.compile_mode or not hw.compile_cache_dir
    ):
        return None
    identity = model_identity(config.model, hw.dtype)  # as the compiler keys its graphs
    graphs = hw.unet_graphs
    gpu_name = gpu.name if gpu else "cpu"
    stored = stored_unet_graphs(
        hw.compile_cache_dir, identity, hw.dtype, hw.fast_paths, gpu_name, graphs, [job.params for job in jobs]
    )
    builds = sum(builds_for_shape(graphs, choices) for choices in stored)
    if not builds:
        return None
    queue = BuildQueue()
    queue.start_standby(builds + 1, Path(hw.compile_cache_dir).expanduser() / "artifacts" / "standby.log")
    return queue


def render(config: Config, plan: Plan, group: str | None, started: float) -> RunResult:
    """Loads the model once and renders the jobs that no other worker has done or holds; then the index, and (the
    last worker of the folder to finish) the grids and gallery; then the summary."""
    hardware, jobs = plan.hardware, plan.jobs
    shard = current_shard(config.shard)
    if shard.count > 1 and hardware.on_accelerator and ":" not in hardware.device and hardware.kind != "mps":
        hardware = dataclasses.replace(hardware, device=f"{hardware.kind}:{shard.local_index}")  # a device each
    output_dir = Path(shard.from_main(config.output_dir)).expanduser()
    claims = Claims(output_dir, config.workers.lease_s)
    with OutputFolder(output_dir, claims.me.worker_id, stale_after_s=config.workers.lease_s) as out:
        save_config(out.root, claims.me.worker_id, config)
        pending = select_pending(preferred_order(jobs, shard), out, config)
        free = set(claims.unclaimed([job.job_id for job in pending]))
        open_jobs = [job for job in pending if job.job_id in free]
        held = len(pending) - len(open_jobs)
        log.info(
            "%d job(s) planned, %d to run in %s%s",
            len(jobs), len(pending), out.root, f", {held} of them held by other workers" if held else "",
        )  # fmt: skip
        if plan.seconds_per_job is not None and open_jobs:
            log.info("estimated time: %s", format_duration(plan.seconds_per_job * len(open_jobs)))

        builders = start_builders(config, hardware, open_jobs, plan.gpu) if open_jobs else None
        if open_jobs:  # torch, diffusers and transformers load here: dry runs and no-op resumes never pay for them
            from svd_batch.batch.worker import BatchRunner
            from svd_batch.engine.environment import describe_environment
            from svd_batch.engine.models import load_pipeline
            from svd_batch.engine.prepare import make_compiler

        group = group or config.tracking.group or out.root.name  # the workers of one folder share a W&B group
        model_load_s = 0.0
        pipe = None
        with shard.main_first(), ThreadPoolExecutor(1, thread_name_prefix="load") as loader:
            # every launched process enters, also one with nothing to do; W&B starts while the weights load
            if open_jobs:
                device = _build_device(hardware)
                loading = loader.submit(_timed, load_pipeline, config.model, hardware.torch_dtype, device)
            tracker = Tracker(config.tracking, out.root, _plain(config), group=group)
            if open_jobs:
                try:
                    pipe, model_load_s = loading.result()
                except Exception as exc:  # out of memory while building the model on the device
                    hardware = offload_instead(exc, hardware, config, "building the model")
                    pipe, model_load_s = _timed(load_pipeline, config.model, hardware.torch_dtype, "cpu")
                log.info("model %s loaded in %.1f s", config.model.name, model_load_s)

        identity = model_identity(config.model, hardware.dtype)
        gpu_name = plan.gpu.name if plan.gpu else "cpu"
        compiler = make_compiler(hardware, identity, gpu_name, builders) if open_jobs else None
        if builders and compiler is None:  # no ahead-of-time compile here after all
            builders.close_standby()
        records: list[JobRecord] = []
        grids = None  # each comparison grid is made once this worker has done all its jobs, while the rest render
        if config.report.grids:
            grids = GridBuilder(out.root, config.report, config.export, out.index_table(), pending, hardware.name)
        try:
            if open_jobs:
                done = finished_since(out, config, utc_timestamp())
                try:
                    batch = BatchRunner(config, hardware, pipe, out, tracker, compiler, claims, done, grids)
                except Exception as exc:  # out of memory while placing the weights on the device
                    hardware = offload_instead(exc, hardware, config, "placing the model")
                    pipe.to("cpu")
                    batch = BatchRunner(config, hardware, pipe, out, tracker, None, claims, done, grids)
                batch.start_compiling(open_jobs)  # the first video finds its graphs loaded, loading, or building
                environment = describe_environment(hardware, batch.generator.pipe.unet)
                save_environment(out.root, environment)
                tracker.add_config({"environment": environment})
                claims.start()
                records = batch.run_jobs(open_jobs)
                tracker.log_table()  # W&B writes it while the grids, index and report are made
        except BaseException:  # Ctrl-C or a fatal error: stop the builders too
            if compiler:
                compiler.close(wait=False)
            if grids:
                grids.close(cancel=True)
            raise
        finally:
            claims.stop()  # this worker holds no claim any more
            if grids:
                grids.close()
        if compiler:
            compiler.close(wait=True)  # a build still running is finished, so the next run starts warm
        shard.wait_for_everyone()  # launched processes finish together; process 0 makes the report
        with out.report_lock():
            index = out.write_index()  # from every worker's journal
            last = shard.is_main if shard.state is not None else not claims.others_alive()
            if last and report_outdated(out):
                report = make_report(out.root, config.report, config.export)
                tracker.log_report(report["grids"], report["gallery"])

    summary = summarize(
        records, skipped=len(jobs) - len(pending), wall_s=time.perf_counter() - started, model_load_s=model_load_s
    )
    log.info("%s\n  output      %s", format_summary(summary, [r for r in records if not r.ok]), out.index_path)
    tracker.finish(summary)
    return RunResult(
        jobs=jobs, records=records, index=index, summary=summary, output_dir=out.root, tracking_dir=tracker.run_path
    )


def report_outdated(out: OutputFolder) -> bool:
    """Whether some journal is newer than the gallery (or the report is missing)."""
    gallery = out.root / GALLERY_NAME
    journals = [p.stat().st_mtime for p in out.journal_files()]
    return not gallery.exists() or (bool(journals) and max(journals) > gallery.stat().st_mtime)


def offload_instead(error: Exception, hardware: Hardware, config: Config, stage: str) -> Hardware:
    """Running out of device memory while the model is built or placed: with `auto`, model offload instead (logged);
    with a named profile, a clear error naming the profile that fits. Any other error is raised as it is."""
    from svd_batch.engine import accelerator

    if not accelerator.is_out_of_memory(error) or hardware.placement is not Placement.resident:
        raise error
    accelerator.empty_cache(hardware.device)
    free = accelerator.memory_info(hardware.kind, accelerator.index_of(hardware.device))[0] / accelerator.GIB
    if config.hardware.name != "auto":
        raise ConfigError(
            f"out of device memory while {stage} on {hardware.device} with hardware={hardware.name} "
            f"({free:.1f} GiB free now): the weights do not fit resident; use hardware=offload (about 11 GiB for "
            f"SVD-XT), hardware=lowvram or lowmem (about 7.6 GiB), or hardware=auto, which falls back by itself"
        ) from None
    log.warning(
        "out of device memory while %s on %s with %s (%.1f GiB free now): hardware=auto falls back to model offload",
        stage, hardware.device, hardware.name, free,
    )  # fmt: skip
    return dataclasses.replace(
        hardware,
        name="auto:offload",
        placement=Placement.model_offload,
        compile_unet=CompileScope.none,
        compile_vae=False,
        reason=f"{hardware.reason}; out of memory while {stage} -> model offload",
    )


def save_config(root: Path, worker_id: str, config: Config) -> None:
    """The resolved config of each run that writes to the folder: configs/<worker>.yaml."""
    (root / "configs").mkdir(exist_ok=True)
    OmegaConf.save(OmegaConf.structured(config), root / "configs" / f"{worker_id}.yaml")


def save_environment(root: Path, environment: dict) -> None:
    """environment.json: what made the videos (svd_batch.engine.environment), written atomically by each run that
    renders; with several workers, the newest one's (each worker's is in its W&B config)."""
    path = root / ENVIRONMENT_NAME
    partial = partial_name(path)
    partial.write_text(json.dumps({**environment, "written_at": utc_timestamp()}, indent=1, default=str))
    os.replace(partial, path)


def select_pending(jobs: list[Job], out: OutputFolder, config: Config) -> list[Job]:
    """Which planned jobs to run: all (resume=false), only earlier failures (retry_failed), or the ones with no
    record yet. A job whose video was deleted since counts as not done."""
    if not config.resume:
        return jobs
    states = out.job_states()
    if config.retry_failed:
        return [job for job in jobs if states.get(job.job_id) == "failed"]
    skipped_failures = sum(states.get(job.job_id) == "failed" for job in jobs)
    if skipped_failures:
        log.info("%d job(s) failed in an earlier run and are skipped; retry_failed=true runs them", skipped_failures)
    return [job for job in jobs if job.job_id not in states]


def finished_since(out: OutputFolder, config: Config, since: str) -> Callable[[str], bool]:
    """Whether a job needs no more work, by the journals as they are now (asked before taking over a dead worker's
    job): recorded at all; with retry_failed, recorded ok or failed again since `since`; with resume=false,
    recorded since `since`."""

    def done(job_id: str) -> bool:
        record = out.records().get(job_id)
        if record is None or (record.ok and not (out.root / record.output).exists()):
            return False
        if not config.resume or (config.retry_failed and not record.ok):
            return record.finished_at >= since
        return True

    return done


def _timed(function, *args):
    started = time.perf_counter()
    return function(*args), time.perf_counter() - started


def _build_device(hardware: Hardware) -> str:
    return hardware.device if hardware.placement is Placement.resident else "cpu"


def _cost_reference(config: Config, hardware: Hardware) -> str | None:
    if config.model.init is ModelInit.tiny:
        return "cpu_tiny" if hardware.device == "cpu" else None
    if not hardware.is_cuda:
        return None
    if hardware.placement is not Placement.resident:
        return "gpu_offload"
    return "gpu_compiled" if hardware.compile_unet is CompileScope.full and not hardware.approximation else "gpu"


def _plain(config: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(config), resolve=True, enum_to_str=True)
