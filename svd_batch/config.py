"""Typed settings for svd-batch.

The dataclasses below are registered in Hydra's ConfigStore as the schema of `conf/config.yaml`, so a typo'd key,
a value of the wrong type or an unknown enum member fails while the config is composed, before anything loads.
`load_config` turns the composed DictConfig into these objects and checks the ranges a type cannot express.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING, DictConfig, OmegaConf


class SvdBatchError(Exception):
    """An error whose message tells the user what is wrong and how to fix it (printed without a traceback)."""


class ConfigError(SvdBatchError):
    pass


class ModelInit(Enum):
    pretrained = "pretrained"  # from_pretrained(path): a hub id or a local diffusers-format folder
    random = "random"  # the published full-size architecture with random weights (benchmarks, no download)
    tiny = "tiny"  # a tiny SVD pipeline the project builds and saves once, then loads like a real one


class Precision(Enum):
    auto = "auto"
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


class Placement(Enum):
    auto = "auto"
    resident = "resident"  # pipe.to(device): everything stays on the GPU
    model_offload = "model_offload"  # enable_model_cpu_offload: one component on the GPU at a time
    sequential_offload = "sequential_offload"  # enable_sequential_cpu_offload: layer by layer, slowest, least memory


class CompileScope(Enum):
    auto = "auto"  # hardware=auto: compiled when an artifact exists or the plan is long enough to pay for it
    none = "none"
    full = "full"  # torch.compile(unet): one graph, fastest steady state, needs the UNet resident
    blocks = "blocks"  # each down/mid/up block compiled in place: works under offload hooks


class AttentionBackend(Enum):
    default = "default"  # torch's choice (cuDNN or flash on recent NVIDIA GPUs)
    efficient = "efficient"  # memory-efficient kernel: about 2x flash for SVD's 14-25-frame temporal attention
    flash = "flash"
    cudnn = "cudnn"
    math = "math"
    fa4 = "fa4"  # FlashAttention-4 (optional flash-attn-4 package; Hopper and Blackwell GPUs)


class FitPolicy(Enum):
    crop = "crop"  # scale to cover, centre-crop the overflow
    pad = "pad"  # scale to fit, pad the rest (letterbox)
    stretch = "stretch"  # resize to the target size, ignoring aspect ratio


class ExportFormat(Enum):
    mp4 = "mp4"
    gif = "gif"
    webp = "webp"
    png = "png"  # a folder of lossless frames


class LoopMode(Enum):
    none = "none"
    pingpong = "pingpong"  # the frames, then the same frames backwards without repeating either end


class TrackingMode(Enum):
    offline = "offline"
    online = "online"
    disabled = "disabled"


@dataclass
class ModelConfig:
    name: str = MISSING
    path: str | None = None  # hub id or local folder; the tiny model lives under cache_dir
    variant: str | None = None  # e.g. "fp16" for the hub's half-precision weight files
    revision: str | None = None
    init: ModelInit = ModelInit.pretrained
    # the variant's native video shape; `sample.*` defaults to these
    num_frames: int = 14
    num_inference_steps: int = 25
    height: int = 576
    width: int = 1024


@dataclass
class HardwareConfig:
    name: str = MISSING
    device: str = "auto"  # auto | cpu | cuda[:N] | npu[:N] | xpu[:N] | mps (svd_batch/engine/accelerator.py)
    dtype: Precision = Precision.auto
    placement: Placement = Placement.auto
    forward_chunking: bool = False  # unet.enable_forward_chunking(): smaller feed-forward activations
    vae_float32: bool = False  # the VAE in float32 where float16 decoding overflows or is unsupported (MPS)
    decode_chunk_size: int | None = None  # frames per VAE decode call; None lets the profile pick
    compile_unet: CompileScope = CompileScope.none
    compile_mode: str | None = None  # torch.compile mode, e.g. "reduce-overhead" (CUDA graphs)
    compile_fullgraph: bool = False
    compile_vae: bool = False  # compile the VAE decoder (about 2x faster decode on an H100); auto: with the UNet
    compile_cache_dir: str | None = None  # inductor's cache and the compiled artifacts live here
    # save whole-graph compiled UNet / VAE decoder as artifacts under compile_cache_dir, keyed by model, dtype,
    # shapes, GPU and library versions; a later process loads them in seconds instead of compiling
    compile_artifacts: bool = False
    # build missing artifacts in a separate process while the first videos render eagerly (false: wait for them)
    compile_background: bool = True
    # with compile_artifacts: the whole UNet as this many consecutive graphs (1-4), built at once by as many
    # processes, so that a cold start has it compiled sooner (svd_batch/engine/unet_parts.py)
    compile_unet_parts: int = 1
    compile_backend: str = "inductor"  # torch.compile backend; "aot_eager" skips code generation (tests, debugging)
    inductor: dict[str, Any] = field(default_factory=dict)  # torch._inductor options for the compiled graphs
    # exact fast paths for the UNet (svd_batch/engine/unet_fast.py), each measured alone by the benchmark
    cross_attention_shortcut: bool = False  # cross-attention to SVD's single image token without attention
    temporal_attention: AttentionBackend = AttentionBackend.default  # SDPA backend of the frame-axis layers
    spatial_attention: AttentionBackend = AttentionBackend.default
    fused_geglu: bool = False  # one Triton kernel for the GEGLU projection (CUDA; elsewhere the plain math)
    fused_qkv: bool = False  # self-attention's query, key and value projections as one matrix multiply
    # the temporal res blocks of the UNet and the VAE decoder with per-frame norm statistics and 2-D convolutions
    # (svd_batch/engine/temporal_blocks.py): the same arithmetic in a shape compiled graphs run faster
    temporal_blocks_2d: bool = False
    # with temporal_blocks_2d: the VAE decoder's group norms (its temporal blocks' too) with statistics per row as
    # well: one per (frame, group) is 256 for an 8-frame chunk, too few to keep a GPU's memory busy
    vae_norms_in_rows: bool = False
    # the UNet's spatial group norms with statistics per channel, combined per group: the reduction reads whole rows
    # of channels-last memory instead of a few channels strided through every pixel
    group_norms_per_channel: bool = False
    # with temporal_blocks_2d: the UNet's temporal res blocks' norms per (channel, frame), combined per group
    temporal_norms_per_channel: bool = False
    # with temporal_blocks_2d: the VAE decoder's temporal blocks' norms (with vae_norms_in_rows, all its group norms)
    # per channel as well, combined per group
    vae_norms_per_channel: bool = False
    # with temporal_blocks_2d: the UNet's / the VAE decoder's (3, 1, 1) frame convolutions as Conv3d in channels-last-3d
    # memory (the layout their input already has), instead of a Conv2d over (frames, pixels)
    temporal_convs_3d: bool = False
    vae_convs_3d: bool = False
    # approximate (opt-in): run the whole UNet every N-th step and only its shallowest level in between (DeepCache);
    # 1 is exact. step_cache_guidance also skips the unconditional CFG half on the in-between steps.
    step_cache_interval: int = 1
    step_cache_guidance: bool = False


@dataclass
class SampleParams:
    """The arguments of one `StableVideoDiffusionPipeline.__call__`, named as diffusers names them."""

    num_frames: int = II("model.num_frames")
    num_inference_steps: int = II("model.num_inference_steps")
    height: int = II("model.height")
    width: int = II("model.width")
    fps: int = 7
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.02
    min_guidance_scale: float = 1.0
    max_guidance_scale: float = 3.0
    decode_chunk_size: int | None = None  # None: the hardware profile's value
    seed: int = 42
    # longer videos (svd_batch/engine/segments.py): segment k > 1 is conditioned on segment k-1's last frame, with a
    # seed derived from `seed`; frames = segments x (num_frames - 1) + 1
    segments: int = 1
    color_match: str = "mean_std"  # none | mean_std | histogram: later segments to the first one's colours (Lab)


COLOR_MATCH_MODES = ("none", "mean_std", "histogram")
MAX_SEGMENTS = 32  # 32 x 24 + 1 frames at 576x1024 is 1.4 GB of uint8 frames in memory
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|(cuda|npu|xpu)(:\d+)?)$")  # hardware.device
SAMPLE_PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SampleParams))
# what a comparison grid can tile: the parameters, and what a multirun sweeps besides them (the model, the profile)
REPORT_AXES: tuple[str, ...] = (*SAMPLE_PARAM_NAMES, "model", "hardware")
SAMPLE_PARAM_TYPES: dict[str, type] = {
    "num_frames": int,
    "num_inference_steps": int,
    "height": int,
    "width": int,
    "fps": int,
    "motion_bucket_id": int,
    "noise_aug_strength": float,
    "min_guidance_scale": float,
    "max_guidance_scale": float,
    "decode_chunk_size": int,
    "seed": int,
    "segments": int,
    "color_match": str,
}


@dataclass
class GridConfig:
    """Values to sweep, per parameter; unset parameters keep their `sample` value.

    One typed field per parameter, so `sweep.grid.seed=[0,1]` needs no `+` and a typo'd name fails at composition.
    The Cartesian product runs in one process with the model loaded once, in the order of these fields.
    """

    num_frames: list[int] | None = None
    num_inference_steps: list[int] | None = None
    height: list[int] | None = None
    width: list[int] | None = None
    fps: list[int] | None = None
    motion_bucket_id: list[int] | None = None
    noise_aug_strength: list[float] | None = None
    min_guidance_scale: list[float] | None = None
    max_guidance_scale: list[float] | None = None
    decode_chunk_size: list[int] | None = None
    seed: list[int] | None = None
    segments: list[int] | None = None
    color_match: list[str] | None = None

    def axes(self) -> dict[str, list[Any]]:
        """The swept parameters and their values, in field order."""
        return {name: list(values) for name in SAMPLE_PARAM_NAMES if (values := getattr(self, name)) is not None}


@dataclass
class SweepConfig:
    name: str = "none"
    grid: GridConfig = field(default_factory=GridConfig)


@dataclass
class ExportConfig:
    format: ExportFormat = ExportFormat.mp4
    fps: int = 7  # playback rate of the file (the seed guide exports at 7)
    crf: int = 18  # H.264 quality for mp4: lower is better, 18 is visually lossless
    loop: LoopMode = LoopMode.none  # pingpong: a seamless loop (2F-2 frames) for any format


@dataclass
class WorkersConfig:
    """Any number of workers (terminals, machines, array tasks, multirun jobs) may share one output folder; each
    claims a job before rendering it (svd_batch/batch/claims.py)."""

    # a worker's claims count as abandoned when its heartbeat is older than this; it renews every quarter of it
    lease_s: float = 180.0


@dataclass
class QualityConfig:
    """Per-job measures of what each video shows (svd_batch/results/quality.py): index columns, W&B, the summary."""

    enabled: bool = True
    metrics: list[str] = field(
        default_factory=lambda: ["motion_px", "subject_similarity", "first_frame_psnr", "flicker", "join_jump"]
    )


@dataclass
class ReportConfig:
    grids: bool = True  # comparison grid videos per image (output_dir/grids/)
    gallery: bool = True  # output_dir/index.html
    rows: str | None = None  # grid rows: a parameter, `model` or `hardware`; None: the swept one with most values
    cols: str | None = None  # along the columns; None: the next swept one
    max_tile_width: int = 256  # tiles are scaled down to this width
    # python -m svd_batch.report only: measure the videos that lack quality measures (svd_batch/results/backfill.py)
    quality: bool = False


@dataclass
class ShardConfig:
    """This run's share of the plan when independent jobs split it (e.g. a SLURM array:
    `-m hydra/launcher=slurm shard.index=0,1,2,3 shard.count=4 output_dir=runs/big`)."""

    index: int = 0
    count: int = 1


@dataclass
class TrackingConfig:
    mode: TrackingMode = TrackingMode.offline
    project: str = "svd-batch"
    entity: str | None = None
    group: str | None = None  # multirun jobs default to one group per sweep
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    log_videos: bool = True


@dataclass
class Config:
    model: ModelConfig = MISSING
    hardware: HardwareConfig = MISSING
    sample: SampleParams = field(default_factory=SampleParams)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    manifest: str | None = None  # CSV of images; None runs the sample images bundled with svd-batch
    # None: a run's own folder (outputs/DATE/TIME), or in a multirun the sweep's folder, shared by all its jobs
    output_dir: str | None = None
    image_fit: FitPolicy = FitPolicy.crop
    image_timeout_s: float = 20.0  # for http(s) images
    cache_dir: str = "~/.cache/svd-batch"
    dry_run: bool = False
    resume: bool = True  # skip jobs that already have a row in output_dir (ok or failed)
    retry_failed: bool = False  # run only the jobs that failed before


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="hardware", name="base_hardware", node=HardwareConfig)
    cs.store(group="sweep", name="base_sweep", node=SweepConfig)


register_configs()


# --- range checks that a type cannot express -------------------------------------------------------------------


def check_sample_param(name: str, value: Any) -> str | None:
    """Returns why `value` is not valid for parameter `name`, or None when it is."""
    if name == "decode_chunk_size" and value is None:
        return None
    expected = SAMPLE_PARAM_TYPES[name]
    if expected is str:
        if value not in COLOR_MATCH_MODES:
            return f"{name} must be one of {', '.join(COLOR_MATCH_MODES)}, got {value!r}"
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} must be a number, got {value!r}"
    if expected is int and (isinstance(value, float) and not value.is_integer()):
        return f"{name} must be a whole number, got {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be finite, got {value!r}"
    if name in ("height", "width") and (value < 64 or value % 64):
        return f"{name} must be a positive multiple of 64 (SVD's latent grid), got {value}; e.g. 576x1024"
    if name == "motion_bucket_id" and not 0 <= value <= 255:
        return f"motion_bucket_id must be in 0..255 (more motion when higher; 127 is the default), got {value}"
    if name == "noise_aug_strength" and not 0.0 <= value <= 1.0:
        return f"noise_aug_strength must be in 0.0..1.0 (0.02 is the default), got {value}"
    if name in ("num_frames", "num_inference_steps", "fps", "decode_chunk_size") and value < 1:
        return f"{name} must be at least 1, got {value}"
    if name in ("min_guidance_scale", "max_guidance_scale") and value < 0:
        return f"{name} must be at least 0, got {value}"
    if name == "segments" and not 1 <= value <= MAX_SEGMENTS:
        return f"segments must be in 1..{MAX_SEGMENTS} (1 is a single SVD call), got {value}"
    if name == "seed" and not 0 <= value < 2**63:
        return f"seed must be in 0..2**63-1, got {value}"
    return None


def coerce_sample_param(name: str, value: Any) -> Any:
    """Converts a valid value to the parameter's Python type (CSV cells and grid values arrive loosely typed)."""
    if value is None:
        return None
    return SAMPLE_PARAM_TYPES[name](value)


def check_sample_params(params: SampleParams) -> list[str]:
    problems = [check_sample_param(name, getattr(params, name)) for name in SAMPLE_PARAM_NAMES]
    problems = [p for p in problems if p]
    if not problems and params.max_guidance_scale < params.min_guidance_scale:
        problems.append(
            f"max_guidance_scale ({params.max_guidance_scale}) must be >= min_guidance_scale "
            f"({params.min_guidance_scale})"
        )
    return problems


def load_config(cfg: DictConfig) -> Config:
    """Turns a composed config into typed settings, refusing bad values with a message that names the fix."""
    try:
        config: Config = OmegaConf.to_object(cfg)  # resolves interpolations and checks types
    except Exception as exc:  # omegaconf raises several error types; all mean the config is malformed
        raise ConfigError(f"invalid config: {exc}") from exc

    problems = [f"sample.{p}" for p in check_sample_params(config.sample)]
    for name, values in config.sweep.grid.axes().items():
        if not values:
            problems.append(f"sweep.grid.{name} is empty: give at least one value, e.g. sweep.grid.{name}=[a,b]")
        problems += [f"sweep.grid.{p}" for v in values if (p := check_sample_param(name, v))]
    if config.export.fps < 1:
        problems.append(f"export.fps must be at least 1, got {config.export.fps}")
    if not 0 <= config.export.crf <= 51:
        problems.append(f"export.crf must be in 0..51, got {config.export.crf}")
    if config.model.init is ModelInit.pretrained and not config.model.path:
        problems.append("model.path is empty: set it to a hub id or a local diffusers folder (model.path=DIR)")
    for axis in ("rows", "cols"):
        name = getattr(config.report, axis)
        if name is not None and name not in REPORT_AXES:
            problems.append(f"report.{axis}={name!r} is not a parameter; use one of {', '.join(REPORT_AXES)}")
    if not 0 <= config.shard.index < config.shard.count:
        problems.append(f"shard.index must be in 0..shard.count-1, got {config.shard.index} of {config.shard.count}")
    if not 1 <= config.hardware.compile_unet_parts <= 4:
        problems.append(
            f"hardware.compile_unet_parts must be 1 to 4 (1 = the whole UNet as one graph), got "
            f"{config.hardware.compile_unet_parts}"
        )
    if config.hardware.step_cache_interval < 1:
        problems.append(
            f"hardware.step_cache_interval must be at least 1 (1 = exact), got {config.hardware.step_cache_interval}"
        )
    if config.hardware.step_cache_guidance and config.hardware.step_cache_interval < 2:
        problems.append(
            "hardware.step_cache_guidance needs hardware.step_cache_interval >= 2 (it changes the cached steps)"
        )
    if not DEVICE_PATTERN.match(config.hardware.device):
        problems.append(
            f"hardware.device={config.hardware.device!r} is not a device svd-batch knows: use auto, cpu, cuda[:N], "
            f"npu[:N], xpu[:N] or mps"
        )
    known = ("motion_px", "subject_similarity", "first_frame_psnr", "flicker", "join_jump")
    for metric in config.quality.metrics:
        if metric not in known:
            problems.append(
                f"quality.metrics: {metric!r} is not a measure svd-batch has; use any of {', '.join(known)}"
            )
    if config.workers.lease_s <= 0:
        problems.append(f"workers.lease_s must be positive, got {config.workers.lease_s}")
    if config.image_timeout_s <= 0:
        problems.append(f"image_timeout_s must be positive, got {config.image_timeout_s}")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    return config
