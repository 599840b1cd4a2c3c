"""FlashAttention-4 (the optional `flash-attn-4` package's CuTe kernels, Hopper and Blackwell) as an attention
backend: `hardware.spatial_attention=fa4`.

The kernel is wrapped as a torch custom op, so a compiled graph (and its saved artifact) calls it as one opaque
kernel, on the (batch, tokens, heads, head dim) layout diffusers' projections already have. Importing the package
(its compiler stack) takes seconds, and FlashAttention-4 compiles its kernel just in time at a process's first call:
`start_loading` does both on a thread of its own while the process loads its model and compiled graphs, and the op's
first call waits for it; `use_kernel_cache` keeps the compiled kernel under svd-batch's cache folder, so later
processes load it instead of compiling it again.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

# (device, dtype) -> the package imported and its kernel loaded, on the loading thread
_loading: dict[tuple[torch.device, torch.dtype], Future] = {}


def use_kernel_cache(cache_dir: Path) -> None:
    """FlashAttention-4 keeps its compiled kernels in `cache_dir` (read when the package is first imported; a cache
    the user configured is left as it is)."""
    os.environ.setdefault("FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED", "1")
    os.environ.setdefault("FLASH_ATTENTION_CUTE_DSL_CACHE_DIR", str(cache_dir))


def unavailable_reason(device: torch.device) -> str | None:
    """Why FlashAttention-4 cannot run on `device` (None: it can), without importing it."""
    if device.type != "cuda":
        return "it needs a CUDA GPU"
    major = torch.cuda.get_device_capability(device)[0]
    if major not in (9, 10):
        return f"it runs on Hopper and Blackwell GPUs (compute capability 9.x or 10.x), not {major}.x"
    if importlib.util.find_spec("flash_attn") is None or importlib.util.find_spec("flash_attn.cute") is None:
        return "the flash-attn-4 package is not installed (pip install 'svd-batch[fa4]')"
    return None


def start_loading(device: torch.device, dtype: torch.dtype) -> Future:
    """Imports FlashAttention-4 and compiles (or loads from its cache) its kernel for `dtype` on a thread, once a
    process."""
    key = (device, dtype)
    if key not in _loading:
        _loading[key] = ThreadPoolExecutor(1, thread_name_prefix="flash-attention-4").submit(_warm_up, device, dtype)
    return _loading[key]


def _warm_up(device: torch.device, dtype: torch.dtype) -> None:
    flash_attn_func = _flash_attn_func()
    q = torch.randn(1, 256, 1, 64, device=device, dtype=dtype)
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        flash_attn_func(q, q, q)  # same head dim, dtype and flags as the UNet's calls: the same compiled kernel


@functools.cache
def _flash_attn_func():
    from flash_attn.cute import flash_attn_func

    return flash_attn_func


def _loaded(device: torch.device, dtype: torch.dtype):
    future = _loading.get((device, dtype))
    try:
        if future is not None:
            future.result()
        return _flash_attn_func()
    except Exception as exc:
        raise RuntimeError(
            f"FlashAttention-4 did not load ({type(exc).__name__}: {exc}): reinstall it (pip install "
            "'svd-batch[fa4]') or set hardware.spatial_attention=default"
        ) from exc


@torch.library.custom_op("svd_batch::flash_attention_4", mutates_args=())
def flash_attention_4(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Softmax attention with the default 1/sqrt(head dim) scale: (batch, tokens, heads, head dim) in and out."""
    return _loaded(query.device, query.dtype)(query, key, value)[0]


@flash_attention_4.register_fake
def _(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return query.new_empty(*query.shape[:-1], value.shape[-1])
