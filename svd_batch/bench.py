"""Benchmark: the seed guide's recipes and svd-batch's hardware profiles, side by side, in one process.

    python -m svd_batch.bench                                   # full-size SVD-XT, random weights, one GPU
    python -m svd_batch.bench model=tiny model.init=tiny bench.seed_recipes=[seed_plain] bench.profiles=[cpu] \
        bench.reference=cpu                                     # CPU smoke run on the tiny model

Each configuration renders `warmup_jobs` + `jobs` videos (new seed and motion_bucket_id each, so a recompile would
show). Seed recipes run the guide's code as written (plain pipeline call + diffusers' export_to_video); svd-batch
profiles run through svd-batch's own BatchRunner. Profiles that compile first request their compiled graphs (a
two-step video), so all of them build in parallel in the background; each is timed once its graphs exist.
`bench.sweep.modes=[cold,warm]` also times whole `python run.py` commands over a 24-video sweep, with an empty and
then a warm cache, against the seed recipe's loop over the same videos. Writes bench.json and bench.md into
output_dir after every configuration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import diffusers
import hydra
import numpy as np
import torch
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from svd_batch.batch.manifest import bundled_manifest
from svd_batch.batch.plan import Job, job_id_for, model_identity
from svd_batch.batch.records import JobRecord, OutputFolder
from svd_batch.batch.worker import BatchRunner
from svd_batch.config import Config, SampleParams, SvdBatchError, load_config
from svd_batch.engine import accelerator
from svd_batch.engine.accelerator import detect_gpu
from svd_batch.engine.builders import BuildQueue
from svd_batch.engine.compiled import Compiler
from svd_batch.engine.hardware import Hardware, resolve_hardware
from svd_batch.engine.models import load_pipeline
from svd_batch.engine.pipeline import FirstCallMarks, StageClock, call_arguments
from svd_batch.engine.prepare import make_compiler, reset_pipeline
from svd_batch.results.quality import frame_metrics

log = logging.getLogger(__name__)

SEED_RECIPES = {  # name -> (placement, forward chunking, decode_chunk_size, compile the UNet)
    "seed_plain": ("resident", False, 8, False),
    "seed_offload": ("model_offload", False, 8, False),
    "seed_lowmem": ("model_offload", True, 2, False),
    "seed_compile": ("resident", False, 8, True),
}
MOTIONS = (127, 64, 180, 100)


@dataclass
class SweepSettings:
    """Whole-command runs of `python run.py` over images x settings (README: what a user's sweep costs)."""

    modes: list[str] = field(default_factory=list)  # cold (empty cache), warm (the cache a first run left)
    images: int = 3  # bundled sample images
    motion_bucket_ids: list[int] = field(default_factory=lambda: [64, 96, 127, 180])
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    hardware: str = "auto"
    baseline: str = "seed_offload"  # the seed loop: this recipe's per-video time x the sweep's videos
    cache_dir: str | None = None  # the runs' cache_dir; None: a folder of the bench's own (cold starts empty it)


@dataclass
class BenchSettings:
    seed_recipes: list[str] = field(default_factory=lambda: ["seed_offload", "seed_compile", "seed_lowmem"])
    profiles: list[str] = field(default_factory=lambda: ["h100", "resident"])
    warmup_jobs: int = 1
    jobs: int = 2
    reference: str = "resident"
    peak_tflops: float | None = None
    parallel_builds: int = 6  # compiled-graph builder processes at once, over all profiles
    sweep: SweepSettings = field(default_factory=SweepSettings)


@dataclass
class BenchConfig(Config):
    bench: BenchSettings = field(default_factory=BenchSettings)


ConfigStore.instance().store(name="base_bench", node=BenchConfig)


@dataclass
class Result:
    name: str
    kind: str  # seed | svd-batch | svd-batch, approximate (...)
    # steady state: a seed recipe's median video; for svd-batch the interval between consecutive videos of the batch,
    # each rendered while the previous one exports (what a long sweep costs a video)
    s_per_video: float | None = None
    batch_s_per_video: float | None = None  # svd-batch: the timed batch's wall time / videos, its last export included
    s_min: float | None = None
    s_max: float | None = None
    encode_s: float | None = None
    denoise_s: float | None = None
    decode_s: float | None = None
    export_s: float | None = None
    peak_vram_gib: float | None = None
    warmup_s: float | None = None  # warm-up videos (loading compiled graphs included)
    compile_s: float | None = None  # building this profile's compiled graphs, the longest of them
    decode_chunk_size: int | None = None
    speedup_vs_seed: float | None = None
    floor_fraction: float | None = None
    max_abs_diff: int | None = None  # frames vs the reference configuration, uint8 levels
    psnr_db: float | None = None
    quality_s: float | None = None  # svd-batch's per-video quality measures (svd_batch/results/quality.py)
    # |measure of this configuration's captured video - the reference's|: an approximation in the user's terms
    quality_diff: dict[str, float] | None = None
    segments: int = 1  # chained segments per video (an entry's sample.segments override)
    # s/video over `segments` x the same profile's one-segment s/video: what chaining costs beyond the segments
    vs_one_segment: float | None = None
    skipped: str | None = None


# --- the jobs ---------------------------------------------------------------------------------------------------


def bench_jobs(sample: SampleParams, count: int, model: str, decode_chunk_size: int) -> list[Job]:
    """`count` jobs over the bundled sample images, each with its own seed and motion_bucket_id; the decode chunk
    is the configuration's own unless `sample.decode_chunk_size` pins it."""
    sample = dataclasses.replace(sample, decode_chunk_size=sample.decode_chunk_size or decode_chunk_size)
    # opaque images only: the seed's load_image drops alpha where svd-batch composites it over white
    images = [str(bundled_manifest().parent / name) for name in ("sunset.png", "boat_exif_rotated.jpg")]
    jobs = []
    for k in range(count):
        params = dataclasses.replace(sample, seed=k, motion_bucket_id=MOTIONS[k % len(MOTIONS)])
        jobs.append(Job(job_id_for(f"bench:{k}", params, model), f"bench{k}", images[k % len(images)], params, model))
    return jobs


# --- the seed guide's code --------------------------------------------------------------------------------------


def run_seed_recipe(pipe, name: str, device: str, jobs: list[Job], out: Path, warmup: int) -> tuple[Result, Any]:
    from diffusers.utils import export_to_video, load_image

    placement, chunking, _, compiled = SEED_RECIPES[name]
    result = Result(name=name, kind="seed", decode_chunk_size=jobs[0].params.decode_chunk_size)
    if placement == "model_offload" and device == "cpu":
        result.skipped = "needs a GPU"
        return result, None
    if placement == "model_offload":
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(device)
    if chunking:
        pipe.unet.enable_forward_chunking()
    if compiled:
        pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead", fullgraph=True)

    clock = StageClock(torch.device(device))
    walls, stages, peaks, reference_frames = [], [], [], None
    for index, job in enumerate(jobs):
        p = job.params
        accelerator.reset_peak_memory(clock.device)
        start = clock.now()
        boundaries = {"denoise": pipe.unet, "decode": pipe.vae.decoder}  # first calls end encode, then denoise
        with FirstCallMarks(clock, boundaries) as marks:
            image = load_image(job.image).resize((p.width, p.height))
            frames = pipe(image, generator=torch.manual_seed(p.seed), **call_arguments(p)).frames[0]
        generated = clock.now()
        export_to_video(frames, str(out / f"{name}-{index}.mp4"), fps=7)
        done = clock.now()
        if index < warmup:
            result.warmup_s = done - start
            continue
        if reference_frames is None:
            reference_frames = np.stack([np.asarray(f) for f in frames])
        walls.append(done - start)
        encode_end = marks.get("denoise", generated)
        decode_start = marks.get("decode", generated)
        stages.append((encode_end - start, decode_start - encode_end, generated - decode_start, done - generated))
        peaks.append(accelerator.peak_memory_gib(clock.device))
    _fill_times(result, walls, stages, peaks)
    return result, reference_frames


# --- svd-batch profiles -----------------------------------------------------------------------------------------


class _CapturingRunner(BatchRunner):
    """Keeps the frames of the first timed job, to compare configurations, and when each job's rendering ended
    (its frames are on the host then: the device is done with it)."""

    capture_id: str | None = None
    captured: np.ndarray | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rendered: list[float] = []

    def generate(self, job: Job, inputs=None):
        record, frames = super().generate(job, inputs)
        self.rendered.append(time.perf_counter())
        if job.job_id == self.capture_id:
            self.captured = frames
        return record, frames


def folder_name(name: str) -> str:
    """A file-system-safe folder name for a configuration; long override lists are shortened with a hash."""
    safe = re.sub(r"[^\w.=-]+", "_", name)
    return safe if len(safe) <= 80 else f"{safe[:60]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def request_graphs(pipe, config: Config, hardware: Hardware, compiler: Compiler, job: Job, out: Path) -> bool:
    """Renders a two-step version of `job` (one full and one cached step for step caching), which asks for every
    compiled graph the profile's videos need; they build in the background, all at once."""
    quick = dataclasses.replace(job, params=dataclasses.replace(job.params, num_inference_steps=2))
    request = folder_name(f"request-{config.hardware.name}-{hardware.fast_paths.tag()}")
    with OutputFolder(out / request, "bench") as folder:
        record, frames = BatchRunner(config, hardware, pipe, folder, compiler=compiler).generate(quick)
    if frames is None:
        raise SvdBatchError(f"rendering a two-step video failed: {record.error}")
    return True


def run_profile(
    pipe, name: str, config: Config, hardware: Hardware, jobs: list[Job], out: Path, warmup: int, compiler=None
) -> tuple[Result, np.ndarray | None]:
    kind = f"svd-batch, approximate ({hardware.approximation})" if hardware.approximation else "svd-batch"
    result = Result(
        name=name, kind=kind, decode_chunk_size=jobs[0].params.decode_chunk_size, segments=jobs[0].params.segments
    )
    with OutputFolder(out / folder_name(name), "bench") as folder:
        runner = _CapturingRunner(config, hardware, pipe, folder, compiler=compiler)
        started = time.perf_counter()
        warm = runner.run_jobs(jobs[:warmup], progress=False)
        result.warmup_s = time.perf_counter() - started
        runner.capture_id = jobs[warmup].job_id
        clock = StageClock(torch.device(hardware.device))
        started = clock.now()
        runner.rendered.clear()
        timed = runner.run_jobs(jobs[warmup:], progress=False)
        wall = clock.now() - started
    failed = [r for r in warm + timed if not r.ok]
    if failed:
        raise SvdBatchError(f"profile {name}: job failed: {failed[0].error}")
    _fill_times(
        result, [r.times["time_total_s"] for r in timed], [_stages(r) for r in timed], [r.peak_vram_gib for r in timed]
    )
    result.batch_s_per_video = wall / len(timed)
    result.s_per_video = steady_interval(runner.rendered) if len(timed) > 1 else result.batch_s_per_video
    costs = [r.times["time_quality_s"] for r in timed if "time_quality_s" in r.times]
    result.quality_s = sum(costs) / len(costs) if costs else None
    if compiler is not None:
        builds = [meta["build_s"] for meta in compiler.used_artifacts() if meta.get("build_s") is not None]
        result.compile_s = max(builds) if builds else None
    return result, runner.captured


def steady_interval(rendered: list[float]) -> float:
    """Seconds per video in a long batch: the mean interval between consecutive renderings' ends. The first video of
    the timed batch has no export beside it and the last one's export has no video beside it: both are left out."""
    return (rendered[-1] - rendered[0]) / (len(rendered) - 1)


def _stages(record: JobRecord) -> tuple[float, float, float, float]:
    t = record.times
    return t["time_encode_s"], t["time_denoise_s"], t["time_decode_s"], t["time_export_s"]


def _fill_times(result: Result, walls: list[float], stages: list[tuple], peaks: list[float | None]) -> None:
    result.s_per_video = statistics.median(walls)
    result.s_min, result.s_max = min(walls), max(walls)
    result.encode_s, result.denoise_s, result.decode_s, result.export_s = (
        statistics.mean(s) for s in zip(*stages, strict=True)
    )
    known = [p for p in peaks if p is not None]
    result.peak_vram_gib = max(known) if known else None


# --- compute floor ----------------------------------------------------------------------------------------------


@torch.no_grad()
def count_video_flops(pipe, sample: SampleParams, device: str) -> dict[str, float]:
    """FLOPs of one video: the UNet per step (CFG batch of 2) x steps + the VAE decode of all frames."""
    from torch.utils.flop_counter import FlopCounterMode

    unet, dtype = pipe.unet, pipe.unet.dtype
    f, h, w = sample.num_frames, sample.height // 8, sample.width // 8
    latents = torch.randn(2, f, unet.config.in_channels, h, w, device=device, dtype=dtype)
    embeds = torch.randn(2, 1, unet.config.cross_attention_dim, device=device, dtype=dtype)
    time_ids = torch.tensor([[6, 127, 0.02]] * 2, device=device, dtype=dtype)
    with FlopCounterMode(display=False) as counter:
        unet(latents, torch.tensor(1.0, device=device), encoder_hidden_states=embeds, added_time_ids=time_ids)
    unet_flops = counter.get_total_flops()
    z = torch.randn(f, pipe.vae.config.latent_channels, h, w, device=device, dtype=dtype)
    with FlopCounterMode(display=False) as counter:
        pipe.vae.decode(z, num_frames=f)
    vae_flops = counter.get_total_flops()
    return {
        "unet_tflop_per_step": unet_flops / 1e12,
        "vae_decode_tflop": vae_flops / 1e12,
        "video_tflop": (unet_flops * sample.num_inference_steps + vae_flops) / 1e12,
    }


def measure_peak_tflops(device: str) -> float | None:
    """fp16 dense matmul rate on this accelerator: the ceiling the compute floor is measured against."""
    if device == "cpu":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.float16)
    b = torch.randn_like(a)
    for _ in range(3):
        a @ b
    accelerator.synchronize(a.device)
    started = time.perf_counter()
    for _ in range(20):
        a @ b
    accelerator.synchronize(a.device)
    return 2 * 8192**3 * 20 / (time.perf_counter() - started) / 1e12


# --- the run -----------------------------------------------------------------------------------------------------


def run_bench(base: BenchConfig, profiles: dict[str, Config]) -> dict[str, Any]:
    settings = base.bench
    out = Path(base.output_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    gpu = detect_gpu()
    device = gpu.kind if gpu else "cpu"
    dtype = torch.float16 if gpu else torch.float32
    hardware = {name: resolve_hardware(cfg.hardware, gpu) for name, cfg in profiles.items()}
    model_id = f"{base.model.name}:{base.model.init.value}"
    count = settings.warmup_jobs + settings.jobs

    started = time.perf_counter()
    pipe = load_pipeline(base.model, dtype, device)
    unet = pipe.unet
    meta: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": gpu.name if gpu else platform.processor() or "cpu",
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "model": model_id,
        "build_s": round(time.perf_counter() - started, 1),
        "sample": dataclasses.asdict(base.sample)
        | {"seed": "per job", "motion_bucket_id": "per job", "decode_chunk_size": "per configuration"},
        "warmup_jobs": settings.warmup_jobs,
        "jobs": settings.jobs,
        "parallel_builds": settings.parallel_builds,
    }
    meta |= {k: round(v, 4) for k, v in count_video_flops(pipe, base.sample, device).items()}
    peak = settings.peak_tflops or measure_peak_tflops(device)
    meta["peak_tflops"] = round(peak, 1) if peak else None
    floor_s = meta["video_tflop"] / peak if peak else None
    meta["compute_floor_s"] = round(floor_s, 2) if floor_s else None

    order = [*settings.seed_recipes, *settings.profiles]
    results: dict[str, Result] = {}
    frames: dict[str, np.ndarray] = {}
    report: dict[str, Any] = {}

    def record(result: Result, captured: np.ndarray | None) -> None:
        nonlocal report
        if captured is not None:
            frames[result.name] = captured
        results[result.name] = result
        report = finish_report(meta, [results[n] for n in order if n in results], frames, settings.reference, floor_s)
        write_report(out, report)  # after every configuration, so a cut-short run keeps what it measured
        log.info("bench: %s -> %s", result.name, json.dumps(dataclasses.asdict(result)))

    def attempt(name: str, kind: str, step) -> Any:
        """Runs one step of a configuration; a failure is recorded as the configuration's row and returns None."""
        log.info("bench: %s", name)
        try:
            return step()
        except Exception as exc:  # one broken configuration must not lose the others' numbers
            log.exception("bench: %s failed", name)
            record(Result(name=name, kind=kind, skipped=f"{type(exc).__name__}: {exc}"[:300]), None)
            return None

    for name in settings.seed_recipes:
        reset_pipeline(pipe, unet, device)
        jobs = bench_jobs(base.sample, count, model_id, SEED_RECIPES[name][2])
        if measured := attempt(
            name, "seed", partial(run_seed_recipe, pipe, name, device, jobs, out, settings.warmup_jobs)
        ):
            record(*measured)

    # profiles that compile ask for their graphs first, so every profile's graphs build at once in the background
    queue = BuildQueue(settings.parallel_builds)
    timing = []
    for name in settings.profiles:
        hw, config = hardware[name], profiles[name]
        jobs = bench_jobs(config.sample, count, model_id, hw.decode_chunk_size)  # an entry may set sample.*
        reset_pipeline(pipe, unet, device)
        compiler = make_compiler(hw, model_identity(config.model, hw.dtype), gpu.name if gpu else "cpu", queue)
        if compiler is not None:
            requested = attempt(name, "svd-batch", partial(request_graphs, pipe, config, hw, compiler, jobs[0], out))
            if requested is None:
                continue
        timing.append((name, compiler, jobs))
    # every build finishes before any timing: builds compile on the CPU that launches the timed kernels and autotune
    # on the same GPU (an h100 timed beside five builds read 13.6 s a video against 11.1 alone; benchmarks/
    # h200-2026-12-01b)
    for _, compiler, _ in timing:
        if compiler is not None:
            compiler.wait()
    for name, compiler, jobs in timing:
        reset_pipeline(pipe, unet, device)
        hw, config = hardware[name], profiles[name]
        run = partial(run_profile, pipe, name, config, hw, jobs, out, settings.warmup_jobs, compiler)
        if measured := attempt(name, "svd-batch", run):
            record(*measured)

    if settings.sweep.modes:
        baseline = results.get(settings.sweep.baseline)
        del pipe, unet
        accelerator.empty_cache(device)  # the sweep's own processes get the whole device
        report["sweep"] = run_sweep(
            base, out, baseline.s_per_video if baseline else None, lambda: write_report(out, report)
        )
        write_report(out, report)
    return report


# --- whole commands -------------------------------------------------------------------------------------------------

SWEEP_IMAGES = ("sunset.png", "boat_exif_rotated.jpg", "logo_rgba.png")


def run_sweep(base: BenchConfig, out: Path, seed_s_per_video: float | None, save) -> list[dict[str, Any]]:
    """`python run.py` over images x motion_bucket_id x seed, timed from the command's start: `cold` with an empty
    cache (compiled graphs, inductor and Triton caches all empty), `warm` with the cache the previous run left."""
    sweep = base.bench.sweep
    samples = bundled_manifest().parent
    manifest = out / "sweep-manifest.csv"
    manifest.write_text("image,id\n" + "".join(f"{samples / n},{Path(n).stem}\n" for n in SWEEP_IMAGES[: sweep.images]))
    cache = Path(sweep.cache_dir).expanduser() if sweep.cache_dir else out / "sweep-cache"
    videos = sweep.images * len(sweep.motion_bucket_ids) * len(sweep.seeds)
    rows: list[dict[str, Any]] = []
    for mode in sweep.modes:
        if mode == "cold":
            shutil.rmtree(cache, ignore_errors=True)
        elif not (cache / "compiled" / "artifacts").is_dir():  # warm needs a cache: one untimed run makes it
            _run_command(
                base, manifest, cache, out / "sweep-prime", "h100", sweep.motion_bucket_ids[:1], sweep.seeds[:1]
            )
        row = {"mode": mode, "videos": videos, "hardware_setting": sweep.hardware}
        row |= _run_command(
            base, manifest, cache, out / f"sweep-{mode}", sweep.hardware, sweep.motion_bucket_ids, sweep.seeds
        )
        if seed_s_per_video:
            row["seed_loop_s"] = round(seed_s_per_video * videos, 1)
            row["fraction_of_seed_loop"] = round(row["wall_s"] / row["seed_loop_s"], 3)
        rows.append(row)
        log.info("bench: sweep %s -> %s", mode, json.dumps(row))
        save()
    return rows


def _run_command(base: BenchConfig, manifest: Path, cache: Path, run_dir: Path, hardware: str, motions, seeds):
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [
        sys.executable, str(Path(__file__).resolve().parents[1] / "run.py"),
        f"model={base.model.name}", f"model.init={base.model.init.value}", f"manifest={manifest}", "sweep=none",
        f"sweep.grid.motion_bucket_id=[{','.join(map(str, motions))}]",
        f"sweep.grid.seed=[{','.join(map(str, seeds))}]",
        f"hardware={hardware}", f"cache_dir={cache}", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with (run_dir.parent / f"{run_dir.name}.log").open("w") as log_file:
        returncode = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT).returncode
    wall = time.time() - started
    row: dict[str, Any] = {"returncode": returncode, "wall_s": round(wall, 1)}
    index_path = run_dir / "index.csv"
    if index_path.is_file():
        import pandas as pd

        index = pd.read_csv(index_path)
        finished = pd.to_datetime(index["finished_at"]).map(lambda t: t.timestamp()) - started
        row |= {
            "ok": int((index["status"] == "ok").sum()),
            "first_video_s": round(float(finished.min()), 1),
            "last_video_s": round(float(finished.max()), 1),
            "profile": ",".join(sorted(set(index["hardware"].astype(str)))),
        }
    return row


def finish_report(meta, results: list[Result], frames, reference: str, floor_s: float | None) -> dict[str, Any]:
    seed = next((r for r in results if r.name == "seed_offload" and r.s_per_video), None)
    seed = seed or next((r for r in results if r.kind == "seed" and r.s_per_video), None)
    ref = frames.get(reference)
    measures = ("motion_px", "flicker")
    ref_measures = frame_metrics(ref, measures) if ref is not None else {}
    for r in results:
        single = next((o for o in results if o.name == r.name.split()[0] and o.segments == 1 and o.s_per_video), None)
        if r.segments > 1 and r.s_per_video and single:
            r.vs_one_segment = r.s_per_video / (r.segments * single.s_per_video)
        if r.s_per_video and seed:
            r.speedup_vs_seed = seed.s_per_video / r.s_per_video
        if r.s_per_video and floor_s:
            r.floor_fraction = floor_s / r.s_per_video
        if ref is not None and r.name in frames and frames[r.name].shape == ref.shape:
            diff = np.abs(frames[r.name].astype(np.int16) - ref.astype(np.int16))
            r.max_abs_diff = int(diff.max())
            mse = float((diff.astype(np.float64) ** 2).mean())
            r.psnr_db = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
            measured = frame_metrics(frames[r.name], measures)
            r.quality_diff = {m: round(abs(measured[m] - ref_measures[m]), 3) for m in measured}
    return {
        "meta": meta,
        "baseline": seed.name if seed else None,
        "reference": reference,
        "results": [dataclasses.asdict(r) for r in results],
    }


def write_report(out: Path, report: dict[str, Any]) -> None:
    (out / "bench.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "bench.md").write_text(markdown_table(report))


def markdown_table(report: dict[str, Any]) -> str:
    meta = report["meta"]

    def num(value, digits=2):
        return "" if value is None else f"{value:.{digits}f}"

    lines = [
        f"{meta['model']} on {meta['device']}, torch {meta['torch']}, diffusers {meta['diffusers']}, {meta['date']}",
        f"{meta['sample']['num_frames']} frames, {meta['sample']['height']}x{meta['sample']['width']}, "
        f"{meta['sample']['num_inference_steps']} steps; {meta['warmup_jobs']} warm-up + {meta['jobs']} timed videos "
        f"per configuration; {meta['video_tflop']:.0f} TFLOP per video "
        f"(UNet {meta['unet_tflop_per_step']:.1f} per step, VAE decode {meta['vae_decode_tflop']:.1f})"
        + (
            f"; compute floor {meta['compute_floor_s']:.1f} s at {meta['peak_tflops']:.0f} TFLOP/s"
            if meta.get("compute_floor_s")
            else ""
        ),
        "s/video: a seed recipe's median video (exported in turn, as its loop does); svd-batch's steady state in a "
        "batch: the interval between consecutive videos, each rendered while the previous one exports (batch s/video: "
        "the timed batch's wall time over its videos, the last export included). spread: the timed videos' own times, "
        "encode to export.",
        "",
        "| configuration | kind | decode chunk | s/video | batch s/video | spread | encode | denoise | decode | export "
        "| peak VRAM GiB "
        "| warm-up s | compile s "
        f"| speedup vs {report['baseline']} | of floor | max diff vs {report['reference']} | PSNR dB "
        "| quality s | motion px diff | flicker diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        if r["skipped"]:
            lines.append(f"| {r['name']} | {r['kind']} | | skipped: {r['skipped']} |" + " |" * 16)
            continue
        spread = f"{num(r['s_min'])}-{num(r['s_max'])}"
        floor = "" if r["floor_fraction"] is None else f"{100 * r['floor_fraction']:.0f}%"
        psnr = "" if r["psnr_db"] is None else ("exact" if r["psnr_db"] == float("inf") else num(r["psnr_db"], 1))
        diff = r.get("quality_diff") or {}
        lines.append(
            f"| {r['name']} | {r['kind']} | {r['decode_chunk_size']} | {num(r['s_per_video'])} | "
            f"{num(r.get('batch_s_per_video'))} | {spread} | "
            f"{num(r['encode_s'])} | "
            f"{num(r['denoise_s'])} | {num(r['decode_s'])} | {num(r['export_s'])} | {num(r['peak_vram_gib'])} | "
            f"{num(r['warmup_s'], 1)} | {num(r.get('compile_s'), 0)} | {num(r['speedup_vs_seed'])}x | {floor} | "
            f"{'' if r['max_abs_diff'] is None else r['max_abs_diff']} | {psnr} | {num(r.get('quality_s'))} | "
            f"{num(diff.get('motion_px'))} | {num(diff.get('flicker'))} |"
        )
    chained = [r for r in report["results"] if r.get("vs_one_segment")]
    if chained:
        lines += ["", "Chained segments (sample.segments), against the same profile's one-segment video:", ""]
        lines += [
            f"- {r['name']}: {num(r['s_per_video'])} s/video = {r['vs_one_segment']:.3f} x {r['segments']} x one "
            f"segment ({100 * (r['vs_one_segment'] - 1):+.1f}%)"
            for r in chained
        ]
    if report.get("sweep"):
        lines += [
            "",
            "Whole command `python run.py` over images x motion_bucket_id x seed, timed from the command's start:",
            "",
            "| cache | videos | ok | profile | first video s | last video s | wall s | seed loop s | of seed loop |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in report["sweep"]:
            share = row.get("fraction_of_seed_loop")
            lines.append(
                f"| {row['mode']} | {row['videos']} | {row.get('ok', '')} | {row.get('profile', '')} | "
                f"{num(row.get('first_video_s'), 1)} | {num(row.get('last_video_s'), 1)} | {num(row['wall_s'], 1)} | "
                f"{num(row.get('seed_loop_s'), 1)} | {'' if share is None else f'{100 * share:.0f}%'} |"
            )
    return "\n".join(lines) + "\n"


def load_profile(entry: str, overrides: list[str]) -> Config:
    """A `bench.profiles` entry: a hardware profile's name, optionally followed by overrides of that profile alone,
    e.g. "h100_fast hardware.step_cache_interval=4"."""
    name, *own = entry.split()
    return load_config(hydra.compose(config_name="bench", overrides=[*overrides, f"hardware={name}", *own]))


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
def main(cfg: DictConfig) -> None:
    base: BenchConfig = load_config(cfg)
    overrides = list(HydraConfig.get().overrides.task)
    profiles = {entry: load_profile(entry, overrides) for entry in base.bench.profiles}
    report = run_bench(base, profiles)
    print(markdown_table(report))


if __name__ == "__main__":
    main()
