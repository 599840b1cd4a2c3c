"""The one module that talks to the accelerator: which device this process can use (CUDA, Ascend NPU, Intel XPU,
Apple MPS), and the few calls a run makes on it: synchronize, free and total memory, peak memory, empty the cache,
and whether an error means it ran out of memory. Built on `torch.accelerator` where the installed torch has it, and
on the backend's own module (`torch.cuda`, `torch.npu`, `torch.xpu`, `torch.mps`) otherwise.

Dry runs ask `nvidia-smi` instead (`probe_gpu`), so they never import torch.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from svd_batch.config import DEVICE_PATTERN, ConfigError

GIB = 2**30
KINDS = ("cuda", "npu", "xpu", "mps")  # accelerators svd-batch knows, besides the CPU
# what each backend says when it runs out of memory (MPS and NPU raise RuntimeError, not torch.OutOfMemoryError)
OOM_MESSAGES = ("out of memory", "MPS backend out of memory", "NPU out of memory", "XPU out of memory")


@dataclass(frozen=True)
class GpuInfo:
    """The accelerator a device setting points at (the name is historical: it is any accelerator, not only GPUs)."""

    name: str
    total_gib: float
    free_gib: float | None = None  # None when unknown; `auto` then judges by the total
    kind: str = "cuda"  # cuda | npu | xpu | mps


def check_device(device: str) -> str:
    if not DEVICE_PATTERN.match(device):
        raise ConfigError(
            f"hardware.device={device!r} is not a device svd-batch knows: use auto, cpu, cuda[:N], npu[:N], xpu[:N] "
            f"or mps"
        )
    return device


def kind_of(device: str) -> str:
    """'cuda' for 'cuda:1', 'cpu' for 'cpu'."""
    return device.split(":")[0]


def index_of(device: str) -> int:
    return int(device.split(":")[1]) if ":" in device else 0


def backend(kind: str) -> Any:
    """The torch module of an accelerator kind. Ascend's lives in the separate torch_npu package."""
    import torch

    if kind == "npu":
        try:
            importlib.import_module("torch_npu")
        except ImportError as exc:
            raise ConfigError(
                "hardware=npu needs Huawei's torch_npu package, which this Python does not have: install the "
                "torch-npu release that matches your torch and CANN toolkit (pip install torch-npu==<torch version>)"
            ) from exc
    return getattr(torch, kind)


def _has_accelerator_api(name: str) -> bool:
    import torch

    return hasattr(torch, "accelerator") and hasattr(torch.accelerator, name)


def current_kind() -> str | None:
    """The accelerator kind torch sees (torch.accelerator where it exists), or None."""
    import torch

    if _has_accelerator_api("current_accelerator"):
        found = torch.accelerator.current_accelerator(check_available=True)
        return found.type if found is not None and found.type in KINDS else None
    for kind in KINDS:
        module = getattr(torch, kind, None)
        if module is not None and module.is_available():
            return kind
    return None


def detect_gpu(device: str = "auto") -> GpuInfo | None:
    """The accelerator torch would use for `device` (auto, cuda[:N], npu[:N], xpu[:N], mps), or None: with `auto`
    when torch sees none, otherwise when that kind is not available."""
    device = check_device(device)
    if device == "cpu":
        return None
    kind = kind_of(device)
    if kind == "auto":
        kind = current_kind()
        if kind is None:
            return None
    module = backend(kind)
    if not module.is_available():
        return None
    index = index_of(device)
    free, total = memory_info(kind, index)
    return GpuInfo(name=_device_name(kind, module, index), total_gib=total / GIB, free_gib=free / GIB, kind=kind)


def _device_name(kind: str, module: Any, index: int) -> str:
    if kind == "mps":
        return "Apple MPS"
    return module.get_device_name(index)


def memory_info(kind: str, index: int = 0) -> tuple[int, int]:
    """(free, total) bytes on the device."""
    module = backend(kind)
    if kind == "mps":  # unified memory: what Metal recommends for this process, minus what it already holds
        total = module.recommended_max_memory()
        return max(0, total - module.driver_allocated_memory()), total
    if hasattr(module, "mem_get_info"):
        return module.mem_get_info(index)
    return _torch_accelerator_memory(index)


def _torch_accelerator_memory(index: int) -> tuple[int, int]:
    import torch

    return torch.accelerator.get_memory_info(index)


def synchronize(device) -> None:
    """Waits for the device's queued work (a no-op on the CPU)."""
    if device.type == "cpu":
        return
    if _has_accelerator_api("synchronize"):
        import torch

        torch.accelerator.synchronize(device)
    else:
        backend(device.type).synchronize()


def reset_peak_memory(device) -> None:
    if device.type == "cpu":
        return
    module = backend(device.type)
    if hasattr(module, "reset_peak_memory_stats"):
        module.reset_peak_memory_stats(device)


def peak_memory_gib(device) -> float | None:
    """The most memory the device held since the last reset, or None where it is not tracked (the CPU; MPS reports
    only what it holds now)."""
    if device.type == "cpu":
        return None
    module = backend(device.type)
    if hasattr(module, "max_memory_allocated"):
        return module.max_memory_allocated(device) / GIB
    if hasattr(module, "driver_allocated_memory"):
        return module.driver_allocated_memory() / GIB
    return None


def empty_cache(device: str) -> None:
    """Returns cached, unused blocks to the device (after running out of memory, or between profiles)."""
    kind = kind_of(device)
    if kind in KINDS:
        module = backend(kind)
        if module.is_available():
            module.empty_cache()


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an error is the device running out of memory, whichever backend raised it."""
    import torch

    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and any(message in str(error) for message in OOM_MESSAGES)


def probe_gpu(device: str = "auto") -> GpuInfo | None:
    """The same answer as detect_gpu from `nvidia-smi`, without importing torch (dry runs). None when there is no
    NVIDIA driver tool on this machine, or the device is not CUDA (other kinds are known to torch only)."""
    device = check_device(device)
    if kind_of(device) not in ("auto", "cuda"):
        return None
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    fields = "--query-gpu=name,memory.total,memory.free"
    query = [smi, fields, "--format=csv,noheader,nounits", f"--id={index_of(device)}"]
    try:
        line = subprocess.run(query, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        name, total_mib, free_mib = (part.strip() for part in line.splitlines()[0].rsplit(",", 2))
        return GpuInfo(name=name, total_gib=float(total_mib) / 1024, free_gib=float(free_mib) / 1024)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
