"""Applies a resolved hardware profile to a loaded pipeline: placement, chunking, the UNet's exact fast paths, step
caching, and compiling (ahead-of-time artifacts reused across processes, or plain torch.compile)."""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path

import torch
from diffusers import StableVideoDiffusionPipeline

from svd_batch.config import CompileScope, Placement
from svd_batch.engine import accelerator, conditioning, flash_attention, step_cache, temporal_blocks, unet_fast
from svd_batch.engine.builders import BuildQueue
from svd_batch.engine.compiled import Compiler, CompileSettings, aot_compile_available
from svd_batch.engine.hardware import FastPaths, Hardware

log = logging.getLogger(__name__)


def make_compiler(
    hw: Hardware, model_identity: str, device_name: str, queue: BuildQueue | None = None
) -> Compiler | None:
    """The run's compiled-artifact manager, when the profile compiles whole graphs ahead of time."""
    if not (hw.compiles and hw.compile_artifacts and hw.compile_cache_dir) or hw.compile_mode:
        return None  # plain torch.compile: the seed's compile recipe (CUDA graphs), regional compile
    if not aot_compile_available():
        log.warning("torch %s has no ahead-of-time compile: compiling in this process instead", torch.__version__)
        return None
    root = Path(hw.compile_cache_dir).expanduser()
    settings = CompileSettings(
        store=root / "artifacts",
        inductor_cache=root / "inductor",
        model=model_identity,
        device=hw.device,
        device_name=device_name,
        dtype=hw.dtype,
        fast_paths=hw.fast_paths,
        backend=hw.compile_backend,
        inductor=hw.inductor,
        background=hw.compile_background,
    )
    return Compiler(settings, queue)


def prepare_pipeline(
    pipe: StableVideoDiffusionPipeline, hw: Hardware, compiler: Compiler | None = None
) -> StableVideoDiffusionPipeline:
    """Places the pipeline as the profile says (the weights are already in `hw.dtype`) and installs its fast paths
    and compiled graphs."""
    if hw.vae_float32:
        pipe.vae.to(torch.float32)  # the pipeline decodes in the VAE's dtype (VideoGenerator.decode)
    if hw.placement is Placement.resident:
        pipe.to(hw.device)
    elif hw.placement is Placement.model_offload:
        pipe.enable_model_cpu_offload(device=hw.device)
    elif hw.placement is Placement.sequential_offload:
        pipe.enable_sequential_cpu_offload(device=hw.device)
    if hw.forward_chunking:
        pipe.unet.enable_forward_chunking()
    whole_unet = hw.compile_unet is CompileScope.full
    if hw.compile_cache_dir and hw.fast_paths.uses_flash_attention_4:  # compiled once, then loaded from there
        flash_attention.use_kernel_cache(Path(hw.compile_cache_dir).expanduser() / "flash_attention_4")
    if hw.fast_paths != FastPaths():
        # with artifacts, the kernels are checked by the process that builds them (or at a first eager call)
        unet_fast.install(pipe.unet, hw.fast_paths, check_kernels=not (whole_unet and compiler))
    unet_fast.install_decoder(pipe.vae.decoder, hw.fast_paths)
    if hw.compiles:
        point_inductor_at_cache(hw)
        skip_first_call_alias_check()
    options = {"mode": hw.compile_mode, "dynamic": False}  # static shapes: a new image or seed never recompiles
    if hw.step_cache_interval > 1:
        full = shallow = None
        if whole_unet and compiler:
            full, shallow = (compiler.call(f, pipe.unet, pipe.unet) for f in ("unet_full_step", "unet_shallow_step"))
        elif whole_unet:
            compile_ = partial(torch.compile, fullgraph=hw.compile_fullgraph, **options)
            full = partial(compile_(step_cache.full_step), pipe.unet)
            shallow = partial(compile_(step_cache.shallow_step), pipe.unet)
        cache = step_cache.StepCache(
            pipe.unet, pipe.scheduler, hw.step_cache_interval, hw.step_cache_guidance, full, shallow
        )
        cache.install()
    elif whole_unet and compiler:
        compiler.install_unet(pipe.unet, hw.compile_unet_parts if hw.unet_graphs_in_parts else 1)
    elif whole_unet:
        pipe.unet = torch.compile(pipe.unet, fullgraph=hw.compile_fullgraph, **options)
    elif hw.compile_unet is CompileScope.blocks:
        for block in (*pipe.unet.down_blocks, pipe.unet.mid_block, *pipe.unet.up_blocks):
            block.compile(fullgraph=hw.compile_fullgraph, **options)
    if hw.compile_vae and compiler:
        compiler.install_vae_decoder(pipe.vae)
    elif hw.compile_vae:
        pipe.vae.decoder.compile(**options)
    return pipe


def point_inductor_at_cache(hw: Hardware) -> None:
    """Inductor's cache under the profile's cache folder (so a second process compiles from it), and room for one
    graph per distinct block shape when blocks are compiled one by one."""
    if hw.compile_cache_dir:
        cache = Path(hw.compile_cache_dir).expanduser() / "inductor"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache)
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)


def skip_first_call_alias_check() -> None:
    """torch runs each compiled graph's first call under a dispatch mode that checks every custom op's outputs for
    aliasing its inputs (torch._functorch.config.check_custom_op_aliasing): every op of the UNet's first step then
    goes through Python, ~0.4 s of a warm start on the H200. svd-batch's one custom op, the fused GEGLU, returns a new
    tensor (tests/test_unet_fast.py)."""
    from torch._functorch import config

    if hasattr(config, "check_custom_op_aliasing"):
        config.check_custom_op_aliasing = False


def reset_pipeline(pipe: StableVideoDiffusionPipeline, unet: torch.nn.Module, device: str) -> None:
    """Back to plain eager modules on `device` with no hooks, chunking, fast paths or compiled code (the benchmark
    runs several profiles on one loaded model)."""
    pipe.remove_all_hooks()
    conditioning.uninstall(pipe)  # the seed recipes run diffusers' own preprocessing
    pipe.unet = unet
    unet_fast.uninstall(unet)
    temporal_blocks.uninstall(pipe.vae)
    for module in (*unet.modules(), *pipe.vae.modules()):
        module.__dict__.pop("forward", None)  # installed dispatchers and step caches
        module._compiled_call_impl = None  # undo Module.compile()
        if hasattr(module, "_chunk_size"):
            module._chunk_size = None  # undo enable_forward_chunking()
    torch._dynamo.reset()
    pipe.to(device)
    accelerator.empty_cache(device)
