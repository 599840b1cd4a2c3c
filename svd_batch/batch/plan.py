"""Planning: manifest rows x sweep grid -> Jobs. Pure: reads image bytes for fingerprints, writes nothing.

A job's id is a hash of everything that determines its output (image content, resolved parameters, model identity),
so the same job is never done twice and a changed parameter is a new job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svd_batch.batch.manifest import ManifestError, ManifestRow, is_url
from svd_batch.config import SAMPLE_PARAM_NAMES, ModelConfig, ModelInit, SampleParams, check_sample_params


@dataclass(frozen=True)
class Job:
    job_id: str
    item_id: str
    image: str  # absolute path or URL
    params: SampleParams  # fully resolved: decode_chunk_size is set
    model: str  # model identity, part of the job id

    def params_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.params)


def model_identity(model: ModelConfig, dtype: str, approximation: str = "") -> str:
    """What, besides the image and the parameters, decides a video's pixels (an approximate profile's tag too)."""
    # the tiny model's folder depends on the machine's cache path, but its weights are seeded, so leave it out
    location = model.path if model.init is ModelInit.pretrained else model.init.value
    parts = [model.name, location or "", model.variant or "", model.revision or "", dtype]
    return ":".join(parts + [approximation] if approximation else parts)


def expand_grid(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of the axes, in a deterministic order (first axis slowest)."""
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(axes[n] for n in names))]


def image_fingerprint(image: str) -> str:
    """Content hash of a local image; the URL or path itself when the bytes are not at hand."""
    if is_url(image):
        return "url:" + image
    try:
        return "sha256:" + hashlib.sha256(Path(image).read_bytes()).hexdigest()
    except OSError:
        return "unreadable:" + image  # the job still exists, and fails with a clear error when it runs


# the chaining settings decide nothing in a one-segment video: left out of its id, which stays what it was before
# svd-batch could chain segments (folders written then resume as they were)
CHAINING_PARAMS = ("segments", "color_match")


def job_id_for(fingerprint: str, params: SampleParams, model: str) -> str:
    values = dataclasses.asdict(params)
    if params.segments == 1:
        values = {k: v for k, v in values.items() if k not in CHAINING_PARAMS}
    payload = json.dumps({"image": fingerprint, "params": values, "model": model}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def row_params(
    rows: list[ManifestRow], sample: SampleParams, grid_axes: dict[str, list[Any]]
) -> Iterator[tuple[ManifestRow, SampleParams]]:
    """Each row at each grid point; a row's own parameter columns override both `sample` and the grid."""
    points = expand_grid(grid_axes)
    for row in rows:
        for point in points:
            yield row, dataclasses.replace(sample, **{**point, **row.overrides})


def plan_jobs(
    rows: list[ManifestRow],
    sample: SampleParams,
    grid_axes: dict[str, list[Any]],
    model: str,
    default_decode_chunk_size: int,
    fingerprint: Callable[[str], str] = image_fingerprint,
) -> list[Job]:
    """One job per (row, grid point), identical jobs once. `fingerprint` gives an image's content hash (a cached
    one: svd_batch.batch.fingerprints)."""
    jobs: dict[str, Job] = {}
    problems: list[str] = []
    fingerprints: dict[str, str] = {}  # an image is read once, however many grid points it has
    for row, params in row_params(rows, sample, grid_axes):
        if row.image not in fingerprints:
            fingerprints[row.image] = fingerprint(row.image)
        if params.decode_chunk_size is None:
            params = dataclasses.replace(params, decode_chunk_size=default_decode_chunk_size)
        for problem in check_sample_params(params):
            problems.append(f"line {row.line} ({row.item_id}): {problem}")
        job_id = job_id_for(fingerprints[row.image], params, model)
        # identical jobs (a row override that pins a swept parameter, a repeated row) are done once
        jobs.setdefault(job_id, Job(job_id, row.item_id, row.image, params, model))
    if problems:
        raise ManifestError("some jobs have invalid parameters:\n  " + "\n  ".join(sorted(set(problems))))
    return list(jobs.values())


def compiled_graph_shapes(params: Iterable[SampleParams]) -> dict[str, set[tuple[int, ...]]]:
    """The main input shape of each graph the videos run through, as compiled artifacts are stored by: the UNet's
    (CFG batch, frames, latent and image-latent channels, height/8, width/8) and the VAE decoder's per decode chunk
    (frames, latent channels, height/8, width/8), the last chunk shorter where the frames do not divide."""
    shapes: dict[str, set[tuple[int, ...]]] = {"unet": set(), "vae_decoder": set()}
    for p in params:
        height, width = p.height // 8, p.width // 8
        shapes["unet"].add((2 if p.max_guidance_scale > 1 else 1, p.num_frames, 8, height, width))
        if p.decode_chunk_size:
            chunk = min(p.decode_chunk_size, p.num_frames)
            shapes["vae_decoder"].add((chunk, 4, height, width))
            if p.num_frames % chunk:
                shapes["vae_decoder"].add((p.num_frames % chunk, 4, height, width))
    return shapes


def describe_plan(jobs: list[Job], grid_axes: dict[str, list[Any]], seconds_per_job: float | None) -> str:
    items = len({job.item_id for job in jobs})
    lines = [f"{len(jobs)} job(s): {items} image(s) x {len(expand_grid(grid_axes))} grid point(s)"]
    lines += [f"  grid {name} = {values}" for name, values in grid_axes.items()] or ["  grid: none"]
    if seconds_per_job is not None:
        lines.append(
            f"  estimated time: {format_duration(seconds_per_job * len(jobs))} (~{seconds_per_job:.1f} s per job)"
        )
    lines.append(f"  {'job_id':16}  {'id':20}  " + "  ".join(SAMPLE_PARAM_NAMES))
    for job in jobs:
        values = "  ".join(str(getattr(job.params, n)) for n in SAMPLE_PARAM_NAMES)
        lines.append(f"  {job.job_id:16}  {job.item_id[:20]:20}  {values}")
    return "\n".join(lines)


# Measured seconds per video for a reference workload, scaled by frames x pixels x steps. GPU: SVD-XT on one H100
# (25 frames, 576x1024, 25 steps; resident 18.9 s, compiled h100 12.3 s, model offload 22.3 s). CPU: the tiny
# model on 2 cores.
_REFERENCE_COST = {
    "gpu": (18.9, 25 * 576 * 1024 * 25),
    "gpu_compiled": (12.3, 25 * 576 * 1024 * 25),
    "gpu_offload": (22.3, 25 * 576 * 1024 * 25),
    "cpu_tiny": (0.9, 8 * 128 * 128 * 8),
}


def estimate_seconds_per_job(params: list[SampleParams], reference: str | None) -> float | None:
    """A rough mean cost per job, from a measured reference scaled linearly by the work each job asks for."""
    if not params or reference not in _REFERENCE_COST:
        return None
    seconds, units = _REFERENCE_COST[reference]
    work = [p.segments * p.num_frames * p.height * p.width * p.num_inference_steps for p in params]
    return seconds * sum(work) / units / len(params)


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


# SVD-XT 1.1 was fine-tuned at fixed micro-conditioning (Stability's model card): other values are out of its training
FIXED_CONDITIONING_MODELS = ("svd_xt_1_1", "stable-video-diffusion-img2vid-xt-1-1")
FIXED_CONDITIONING = {"fps": 6, "motion_bucket_id": 127}


def fixed_conditioning_warning(model: ModelConfig, jobs: list[Job]) -> str | None:
    """A warning, once per run, when a plan sweeps fps or motion_bucket_id on a model fine-tuned at fixed values."""
    if not any(name in f"{model.name} {model.path or ''}" for name in FIXED_CONDITIONING_MODELS):
        return None
    swept = [name for name in FIXED_CONDITIONING if len({getattr(job.params, name) for job in jobs}) > 1]
    if not swept:
        return None
    fixed = ", ".join(f"{name}={value}" for name, value in FIXED_CONDITIONING.items())
    return (
        f"model {model.name} was fine-tuned at fixed conditioning ({fixed}): sweeping {' and '.join(swept)} on it "
        f"changes less, or less predictably, than on svd/svd_xt; compare on model=svd_xt, or keep {fixed}"
    )
