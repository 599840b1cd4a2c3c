"""What GPU this process can use: through torch for real runs, or through `nvidia-smi` for dry runs, which must not
pay for importing torch. Both answer with the same GpuInfo, so `hardware=auto` decides the same way."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

GIB = 2**30


@dataclass(frozen=True)
class GpuInfo:
    name: str
    total_gib: float
    free_gib: float | None = None  # None when unknown; `auto` then judges by the total


def detect_gpu(device: str = "auto") -> GpuInfo | None:
    """The CUDA GPU torch would use for `device` (auto, cuda, cuda:N), or None."""
    if device not in ("auto", "cuda") and not device.startswith("cuda:"):
        return None
    import torch  # only real runs get here

    if not torch.cuda.is_available():
        return None
    index = torch.device(device if device.startswith("cuda") else "cuda").index or 0
    free, total = torch.cuda.mem_get_info(index)
    return GpuInfo(name=torch.cuda.get_device_name(index), total_gib=total / GIB, free_gib=free / GIB)


def probe_gpu(device: str = "auto") -> GpuInfo | None:
    """The same answer as detect_gpu from `nvidia-smi`, without importing torch (dry runs). None when there is no
    NVIDIA driver tool on this machine."""
    if device not in ("auto", "cuda") and not device.startswith("cuda:"):
        return None
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    index = int(device.split(":")[1]) if device.startswith("cuda:") else 0
    query = [smi, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits", f"--id={index}"]
    try:
        line = subprocess.run(query, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        name, total_mib, free_mib = (part.strip() for part in line.splitlines()[0].rsplit(",", 2))
        return GpuInfo(name=name, total_gib=float(total_mib) / 1024, free_gib=float(free_mib) / 1024)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
