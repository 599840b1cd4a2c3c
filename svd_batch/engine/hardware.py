"""Hardware profiles: resolve `hardware=...` (`auto` included) into concrete settings.

Pure: no torch, no GPU calls. The caller passes what it knows of the GPU (svd_batch.engine.accelerator) and of the
plan (PlanFacts), so dry runs, real runs and tests decide the same way. svd_batch.engine.prepare applies the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from svd_batch.config import AttentionBackend, CompileScope, ConfigError, HardwareConfig, Placement, Precision
from svd_batch.engine.accelerator import GpuInfo, check_device, kind_of
from svd_batch.engine.artifacts import unet_graph_choices

# Measured SVD-XT peaks (25 frames, 576x1024, fp16, one H100): resident 15.1 GiB, model offload with decode chunk 8
# 11.0 GiB, low-memory recipe 7.55 GiB. `auto` picks the fastest profile that fits the GPU's free memory.
RESIDENT_MIN_GIB = 20.0
OFFLOAD_MIN_GIB = 13.0
# Compiling SVD-XT's UNet in the background while the first videos render: 87 s from asking to running, in three parts
# at once, plus ~10-14 s of its first compiled call timing kernels, on one H200 with 16 cores (the whole graph: 160 s;
# benchmarks/h200-2026-12-02g/; 186 s on an H100, h100-2026-11-23c/). `auto` compiles when the plan would keep the GPU
# busy longer than that anyway.
COMPILE_SECONDS = 110.0


@dataclass(frozen=True)
class FastPaths:
    """The UNet's exact fast paths (svd_batch.engine.unet_fast); the defaults leave diffusers' computation as is."""

    single_token_cross_attention: bool = False
    temporal_attention: AttentionBackend = AttentionBackend.default
    spatial_attention: AttentionBackend = AttentionBackend.default
    fused_geglu: bool = False
    fused_qkv: bool = False
    temporal_blocks_2d: bool = False  # also in the VAE decoder (svd_batch.engine.temporal_blocks)
    vae_norms_in_rows: bool = False  # with temporal_blocks_2d: the VAE decoder's group norms' statistics per row
    group_norms_per_channel: bool = False  # the UNet's other group norms: statistics per channel, then per group
    temporal_norms_per_channel: bool = False  # with temporal_blocks_2d: the UNet's temporal blocks' norms likewise
    vae_norms_per_channel: bool = False  # with temporal_blocks_2d: the VAE decoder's group norms likewise
    temporal_convs_3d: bool = False  # with temporal_blocks_2d: the UNet's frame convolutions in channels-last-3d
    vae_convs_3d: bool = False  # with temporal_blocks_2d: the VAE decoder's likewise

    @property
    def uses_flash_attention_4(self) -> bool:
        """Whether either attention kind asks for the optional FlashAttention-4 (svd_batch.engine.flash_attention)."""
        return AttentionBackend.fa4 in (self.spatial_attention, self.temporal_attention)

    def tag(self) -> str:
        """A short description for logs and compiled-artifact keys."""
        temporal_2d = self.temporal_blocks_2d
        named = [
            (self.single_token_cross_attention, "xattn1"),
            (self.temporal_attention is not AttentionBackend.default, f"temporal={self.temporal_attention.value}"),
            (self.spatial_attention is not AttentionBackend.default, f"spatial={self.spatial_attention.value}"),
            (self.fused_geglu, "geglu"),
            (self.fused_qkv, "qkv"),
            (temporal_2d, "temporal2d"),
            (temporal_2d and self.temporal_norms_per_channel, "tn-per-channel"),
            (temporal_2d and self.temporal_convs_3d, "tconv-3d"),
            (self.group_norms_per_channel, "gn-per-channel"),
        ]
        return ",".join(name for on, name in named if on) or "none"

    def vae_tag(self) -> str:
        """The VAE decoder's share of the fast paths, for its compiled-artifact key."""
        if not self.temporal_blocks_2d:
            return "none"
        named = [
            (True, "temporal2d"),
            (self.vae_norms_in_rows, "norms-in-rows"),
            (self.vae_norms_per_channel, "norms-per-channel"),
            (self.vae_convs_3d, "convs-3d"),
        ]
        return ",".join(name for on, name in named if on)


@dataclass(frozen=True)
class PlanFacts:
    """What `hardware=auto` weighs besides the GPU."""

    eager_s: float | None  # the plan's estimated time without compiling (None: unknown)
    compiled_cached: bool  # compiled graphs for this model, settings and shape are already in the cache
    videos: int = 0


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
    compile_artifacts: bool = False
    compile_background: bool = True
    compile_unet_parts: int = 1
    compile_backend: str = "inductor"
    inductor: dict[str, Any] = field(default_factory=dict)
    fast_paths: FastPaths = field(default_factory=FastPaths)
    vae_float32: bool = False

    @property
    def torch_dtype(self):
        import torch  # only callers that run the model ask for it

        return getattr(torch, self.dtype)

    @property
    def approximation(self) -> str:
        """'' for exact profiles; else a tag that becomes part of each job's identity (its pixels differ)."""
        if self.step_cache_interval == 1:
            return ""
        return f"stepcache{self.step_cache_interval}" + ("+guidance" if self.step_cache_guidance else "")

    @property
    def kind(self) -> str:
        """cpu | cuda | npu | xpu | mps"""
        return kind_of(self.device)

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def on_accelerator(self) -> bool:
        return self.kind != "cpu"

    @property
    def compiles(self) -> bool:
        return self.compile_unet is not CompileScope.none or self.compile_vae

    @property
    def unet_graphs(self) -> list[list[str]]:
        """The ways the compiled UNet may be stored, the preferred first, each as its compiled functions
        (svd_batch.engine.compiled)."""
        if self.step_cache_interval > 1:
            return [["unet_full_step", "unet_shallow_step"]]
        return unet_graph_choices(self.compile_unet_parts if self.unet_graphs_in_parts else 1)

    @property
    def unet_graphs_in_parts(self) -> bool:
        """Whether the whole UNet compiles as consecutive parts: saved artifacts of the exact forward only."""
        return (
            self.compile_unet_parts > 1
            and self.compile_unet is CompileScope.full
            and self.compile_artifacts
            and self.step_cache_interval == 1
        )


def fast_paths_of(cfg: HardwareConfig) -> FastPaths:
    return FastPaths(
        single_token_cross_attention=cfg.cross_attention_shortcut,
        temporal_attention=cfg.temporal_attention,
        spatial_attention=cfg.spatial_attention,
        fused_geglu=cfg.fused_geglu,
        fused_qkv=cfg.fused_qkv,
        temporal_blocks_2d=cfg.temporal_blocks_2d,
        vae_norms_in_rows=cfg.vae_norms_in_rows,
        group_norms_per_channel=cfg.group_norms_per_channel,
        temporal_norms_per_channel=cfg.temporal_norms_per_channel,
        vae_norms_per_channel=cfg.vae_norms_per_channel,
        temporal_convs_3d=cfg.temporal_convs_3d,
        vae_convs_3d=cfg.vae_convs_3d,
    )


def resolve_hardware(cfg: HardwareConfig, gpu: GpuInfo | None, plan: PlanFacts | None = None) -> Hardware:
    """Fills every `auto` field from the GPU (None: no GPU) and, for compiling, from the plan."""
    device = check_device(cfg.device)
    if device == "auto":
        device = gpu.kind if gpu else "cpu"
    kind = kind_of(device)
    if kind != "cpu" and (gpu is None or gpu.kind != kind):
        what = "a CUDA GPU" if kind == "cuda" else f"an accelerator of kind {kind!r}"
        raise ConfigError(
            f"hardware={cfg.name} needs {what} (hardware.device={device}), but torch sees none; use hardware=auto "
            f"or hardware=cpu (the tiny model runs on a CPU; full-size SVD needs an accelerator)"
        )

    placement, dtype, chunking, decode_chunk = cfg.placement, cfg.dtype, cfg.forward_chunking, cfg.decode_chunk_size
    compile_unet, compile_vae = cfg.compile_unet, cfg.compile_vae
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
            name, reason = "auto:cpu", "hardware=auto: no accelerator found -> the 'cpu' profile (float32)"
    elif placement is Placement.auto and kind == "mps":  # unified memory: offloading to the CPU frees nothing
        placement = Placement.resident
        if cfg.name == "auto":
            name, reason = "auto:mps", f"hardware=auto: {gpu.name} -> the 'mps' profile (resident, unified memory)"
    elif placement is Placement.auto:
        memory = gpu.free_gib if gpu.free_gib is not None else gpu.total_gib
        where = f"{gpu.name} with {memory:.0f} GiB {'free' if gpu.free_gib is not None else 'in total'}"
        if memory >= RESIDENT_MIN_GIB:
            placement, profile = Placement.resident, "resident"
        elif memory >= OFFLOAD_MIN_GIB:
            placement, profile = Placement.model_offload, "offload"
        else:
            placement, profile, chunking = Placement.model_offload, "lowmem", True
            decode_chunk = decode_chunk or 2
        why = ""
        if compile_unet is CompileScope.auto and placement is Placement.resident and kind == "cuda":
            compiled, why = compile_pays(plan)
            if compiled:
                compile_unet, profile = CompileScope.full, "h100"
        name, reason = f"auto:{profile}", f"hardware=auto: {where} -> the '{profile}' profile{why}"
    if compile_unet is CompileScope.auto:  # not resident, or no GPU: nothing to compile
        compile_unet = CompileScope.none
    if cfg.compile_unet is CompileScope.auto:
        compile_vae = compile_vae and compile_unet is CompileScope.full  # auto compiles both or neither
    if dtype is Precision.auto:
        dtype = Precision.float16
    if compile_unet is CompileScope.full and placement is not Placement.resident:
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
        compile_unet=compile_unet,
        compile_mode=cfg.compile_mode,
        compile_fullgraph=cfg.compile_fullgraph,
        compile_vae=compile_vae,
        compile_cache_dir=cfg.compile_cache_dir,
        reason=reason,
        step_cache_interval=cfg.step_cache_interval,
        step_cache_guidance=cfg.step_cache_guidance,
        compile_artifacts=cfg.compile_artifacts,
        compile_background=cfg.compile_background,
        compile_unet_parts=cfg.compile_unet_parts,
        compile_backend=cfg.compile_backend,
        inductor=dict(cfg.inductor),
        vae_float32=cfg.vae_float32,
        # auto's fast paths were measured on CUDA; elsewhere it is the plain profile
        fast_paths=FastPaths() if cfg.name == "auto" and kind != "cuda" else fast_paths_of(cfg),
    )


def compile_pays(plan: PlanFacts | None) -> tuple[bool, str]:
    """Whether `auto` compiles, and why (for the log)."""
    if plan is None:
        return False, " (eager: nothing known about the plan)"
    if plan.compiled_cached:
        return True, " (compiled: the compiled graphs for this model and shape are cached)"
    if plan.eager_s is None:
        return False, " (eager: the plan's length is unknown)"
    minutes = plan.eager_s / 60
    if plan.eager_s >= COMPILE_SECONDS:
        return True, (
            f" (compiled: {plan.videos} videos take ~{minutes:.0f} min eagerly, longer than the "
            f"~{COMPILE_SECONDS / 60:.0f} min compile, which runs in the background while the first videos render)"
        )
    return False, (
        f" (eager: {plan.videos} videos take ~{minutes:.1f} min, less than compiling would take, "
        f"~{COMPILE_SECONDS / 60:.0f} min; hardware=h100 compiles anyway and caches it for later runs)"
    )


def describe(hw: Hardware) -> str:
    settings = [
        f"device={hw.device}",
        f"dtype={hw.dtype}",
        f"placement={hw.placement.value}",
        f"decode_chunk_size={hw.decode_chunk_size}",
    ]
    if hw.forward_chunking:
        settings.append("forward_chunking")
    if hw.vae_float32:
        settings.append("vae float32")
    if hw.compile_unet is not CompileScope.none:
        mode = f", mode={hw.compile_mode}" if hw.compile_mode else ""
        parts = f", {hw.compile_unet_parts} parts" if hw.unet_graphs_in_parts else ""
        settings.append(f"compiled unet ({hw.compile_unet.value}{mode}{parts})")
    if hw.compile_vae:
        settings.append("compiled vae decoder")
    if hw.compiles and hw.compile_artifacts:
        settings.append("compiled graphs cached as artifacts")
    if hw.fast_paths != FastPaths():
        settings.append(f"unet fast paths: {hw.fast_paths.tag()}")
    if hw.approximation:
        settings.append(
            f"APPROXIMATE: full UNet every {hw.step_cache_interval} steps, cached deep features in between"
            + (", guidance reused" if hw.step_cache_guidance else "")
        )
    return f"{hw.reason} ({', '.join(settings)})"
