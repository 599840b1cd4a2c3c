"""Provenance: what made a folder's videos (svd-batch's version and git revision, Python, torch, CUDA/cuDNN, diffusers,
transformers, the device and its driver, the attention kernels, the resolved hardware profile), written as
`environment.json` beside the videos and into the W&B config, so a result can be reproduced or told apart."""

from __future__ import annotations

import dataclasses
import platform
import shutil
import subprocess
from enum import Enum
from pathlib import Path
from typing import Any

from svd_batch.engine import accelerator
from svd_batch.engine.artifacts import package_version
from svd_batch.engine.hardware import Hardware

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def describe_environment(hardware: Hardware, unet=None) -> dict[str, Any]:
    """Every field is present; what this machine cannot tell is None. `unet`: the loaded UNet, whose attention
    processors are named."""
    import torch

    cuda = torch.version.cuda if hardware.is_cuda else None
    return {
        "svd_batch": _installed("svd-batch"),  # None when run from a checkout without installing: see git_revision
        "git_revision": git_revision(PACKAGE_DIR),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": cuda,
        "cudnn": torch.backends.cudnn.version() if hardware.is_cuda and torch.backends.cudnn.is_available() else None,
        "diffusers": _installed("diffusers"),
        "transformers": _installed("transformers"),
        "triton": _installed("triton"),
        "flash_attn_4": _installed("flash-attn-4"),  # hardware.spatial_attention=fa4 runs only where it is
        "device": hardware.device,
        "gpu": device_name(hardware),
        "driver": driver_version(hardware),
        "attention": attention_backends(hardware, unet),
        "hardware": _plain(dataclasses.asdict(hardware)),
    }


def git_revision(folder: Path) -> str | None:
    """`<commit>` (with `+dirty` when tracked files changed) of the checkout svd-batch runs from; None when it was
    installed from a wheel or git is missing."""
    git = shutil.which("git")
    if git is None or not (folder.parent / ".git").exists():
        return None
    try:
        commit = subprocess.run([git, "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        status = subprocess.run(
            [git, "status", "--porcelain", "--untracked-files=no"], cwd=folder, capture_output=True, text=True,
            timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def device_name(hardware: Hardware) -> str | None:
    if not hardware.on_accelerator:
        return None
    gpu = accelerator.detect_gpu(hardware.device)
    return gpu.name if gpu else None


def driver_version(hardware: Hardware) -> str | None:
    """The NVIDIA driver's version from nvidia-smi; None elsewhere."""
    if hardware.is_cuda and (smi := shutil.which("nvidia-smi")):
        index = accelerator.index_of(hardware.device)
        query = [smi, "--query-gpu=driver_version", "--format=csv,noheader", f"--id={index}"]
        try:
            done = subprocess.run(query, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return None


def attention_backends(hardware: Hardware, unet=None) -> dict[str, Any]:
    """The SDPA backends the profile asks for, the ones torch has switched on, and the UNet's attention processors."""
    import torch

    paths = hardware.fast_paths
    sdpa = {
        "flash": torch.backends.cuda.flash_sdp_enabled(),
        "efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
        "cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
        "math": torch.backends.cuda.math_sdp_enabled(),
    }
    try:
        processors = sorted({type(p).__name__ for p in unet.attn_processors.values()}) if unet is not None else []
    except AttributeError:  # a compiled artifact in place of the module
        processors = []
    return {
        "spatial": paths.spatial_attention.value,
        "temporal": paths.temporal_attention.value,
        "single_token_cross_attention": paths.single_token_cross_attention,
        "sdpa_enabled": sdpa if hardware.is_cuda else None,
        "processors": processors,
    }


def _installed(package: str) -> str | None:
    version = package_version(package)
    return None if version == "none" else version


def _plain(value: Any) -> Any:
    """JSON-ready: enums as their values."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
