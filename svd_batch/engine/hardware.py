"""Hardware profiles: resolve `hardware=auto` from the machine, then apply a profile to a loaded pipeline."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import StableVideoDiffusionPipeline

from svd_batch.config import CompileScope, ConfigError, HardwareConfig, Placement, Precision
from svd_batch.engine.step_cache import StepCachedUNet

GIB = 2**30
# Measured SVD-XT peaks (25 frames, 576x1024, fp16, one H100): resident 15.1 GiB, model offload with decode chunk 8
# 11.0 GiB, low-memory recipe 7.55 GiB. `auto` picks the fastest profile that fits with some headroom.
RESIDENT_MIN_GIB = 20.0
OFFLOAD_MIN_GIB = 13.0


@dataclass(frozen=True)
class GpuInfo:
    name: str
    total_gib: float


@dataclass(frozen=True)
class Hardware:
    """A fully resolved profile: nothing is `auto` any more."""

    name: str
    device: str
    dtype: str  # float32 | float16 | bfloat16
    placement: Placement
    forward_chunking: bool
    decode_chunk_size: int
    compile_unet: CompileScope
    compile_mode: str | None
    compile_fullgraph: bool
    compile_vae: bool
    compile_cache_dir: str | None
    reason: str  # why this profile, for the log
    step_cache_interval: int = 1
    step_cache_guidance: bool = False

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def approximation(self) -> str:
        """'' for exact profiles; else a tag that becomes part of each job's identity (its pixels differ)."""
        if self.step_cache_interval == 1:
            return ""
        return f"stepcache{self.step_cache_interval}" + ("+guidance" if self.step_cache_guidance else "")

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


def detect_gpu(device: str = "cuda") -> GpuInfo | None:
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(torch.device(device if device.startswith("cuda") else "cuda"))
    return GpuInfo(name=props.name, total_gib=props.total_memory / GIB)


def resolve_hardware(cfg: HardwareConfig, gpu: GpuInfo | None) -> Hardware:
    """Fills every `auto` field from the detected GPU (None: no GPU). Pure, so the choice is easy to test."""
    device = cfg.device
    if device == "auto":
        device = "cuda" if gpu else "cpu"
    if device.startswith("cuda") and gpu is None:
        raise ConfigError(
            f"hardware={cfg.name} needs a CUDA GPU, but torch sees none; use hardware=auto or "
            f"hardware=cpu (the tiny model runs on a CPU; full-size SVD needs a GPU)"
        )
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"hardware.device={device!r} is not supported: use auto, cpu, cuda or cuda:N")

    placement, dtype, chunking, decode_chunk = cfg.placement, cfg.dtype, cfg.forward_chunking, cfg.decode_chunk_size
    name, reason = cfg.name, f"hardware={cfg.name}"
    if device == "cpu":
        if placement in (Placement.model_offload, Placement.sequential_offload):
            raise ConfigError(
                f"hardware={cfg.name}: placement={placement.value} offloads to a GPU, but the device "
                f"is the CPU; use placement=resident"
            )
        placement = Placement.resident if placement is Placement.auto else placement
        dtype = Precision.float32 if dtype is Precision.auto else dtype
        if cfg.name == "auto":
            name, reason = "auto:cpu", "hardware=auto: no CUDA GPU found -> the 'cpu' profile (float32)"
    elif placement is Placement.auto:
        total = gpu.total_gib
        if total >= RESIDENT_MIN_GIB:
            placement, profile = Placement.resident, "resident"
        elif total >= OFFLOAD_MIN_GIB:
            placement, profile = Placement.model_offload, "offload"
        else:
            placement, profile, chunking = Placement.model_offload, "lowmem", True
            decode_chunk = decode_chunk or 2
        name, reason = f"auto:{profile}", f"hardware=auto: {gpu.name} with {total:.0f} GiB -> the '{profile}' profile"
    if dtype is Precision.auto:
        dtype = Precision.float16
    if cfg.compile_unet is CompileScope.full and placement is not Placement.resident:
        raise ConfigError(
            f"hardware={cfg.name}: compile_unet=full needs placement=resident (offload hooks break the "
            f"graph); use compile_unet=blocks with offloading"
        )
    return Hardware(
        name=name,
        device=device,
        dtype=dtype.value,
        placement=placement,
        forward_chunking=chunking,
        decode_chunk_size=decode_chunk or 8,
        compile_unet=cfg.compile_unet,
        compile_mode=cfg.compile_mode,
        compile_fullgraph=cfg.compile_fullgraph,
        compile_vae=cfg.compile_vae,
        compile_cache_dir=cfg.compile_cache_dir,
        reason=reason,
        step_cache_interval=cfg.step_cache_interval,
        step_cache_guidance=cfg.step_cache_guidance,
    )


def apply_hardware(pipe: StableVideoDiffusionPipeline, hw: Hardware) -> StableVideoDiffusionPipeline:
    """Places the pipeline as the profile says; the weights are already in `hw.dtype`."""
    if hw.placement is Placement.resident:
        pipe.to(hw.device)
    elif hw.placement is Placement.model_offload:
        pipe.enable_model_cpu_offload(device=hw.device)
    elif hw.placement is Placement.sequential_offload:
        pipe.enable_sequential_cpu_offload(device=hw.device)
    if hw.forward_chunking:
        pipe.unet.enable_forward_chunking()
    if hw.compile_unet is not CompileScope.none or hw.compile_vae:
        prepare_compile(hw)
    options = {"mode": hw.compile_mode, "dynamic": False}  # static shapes: a new image or seed never recompiles
    if hw.step_cache_interval > 1:
        pipe.unet = StepCachedUNet(pipe.unet, pipe.scheduler, hw.step_cache_interval, hw.step_cache_guidance)
        if hw.compile_unet is CompileScope.full:
            pipe.unet.compile(fullgraph=hw.compile_fullgraph, **options)  # the full and the shallow step
    elif hw.compile_unet is CompileScope.full:
        pipe.unet = torch.compile(pipe.unet, fullgraph=hw.compile_fullgraph, **options)
    elif hw.compile_unet is CompileScope.blocks:
        for block in (*pipe.unet.down_blocks, pipe.unet.mid_block, *pipe.unet.up_blocks):
            block.compile(fullgraph=hw.compile_fullgraph, **options)
    if hw.compile_vae:
        pipe.vae.decoder.compile(**options)
    return pipe


def prepare_compile(hw: Hardware) -> None:
    """Points inductor at a persistent cache (so a second process compiles in seconds) and allows one graph per
    distinct block shape (the UNet's blocks differ in width and resolution)."""
    if hw.compile_cache_dir:
        cache = Path(hw.compile_cache_dir).expanduser()
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache)
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)


def describe(hw: Hardware) -> str:
    settings = [
        f"device={hw.device}",
        f"dtype={hw.dtype}",
        f"placement={hw.placement.value}",
        f"decode_chunk_size={hw.decode_chunk_size}",
    ]
    if hw.forward_chunking:
        settings.append("forward_chunking")
    if hw.compile_unet is not CompileScope.none:
        settings.append(f"compiled unet ({hw.compile_unet.value}, mode={hw.compile_mode})")
    if hw.compile_vae:
        settings.append("compiled vae decoder")
    if hw.approximation:
        settings.append(
            f"APPROXIMATE: full UNet every {hw.step_cache_interval} steps, cached deep features in between"
            + (", guidance reused" if hw.step_cache_guidance else "")
        )
    return f"{hw.reason} ({', '.join(settings)})"
