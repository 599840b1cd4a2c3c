"""Per-kernel GPU time of one compiled SVD-XT UNet step and one compiled 8-frame VAE decode, for a hardware profile
(torch.compile in this process, the profile's fast paths installed).
python step_profile.py OUT_JSON [overrides...]"""
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from svd_batch.config import load_config
from svd_batch.engine.accelerator import detect_gpu
from svd_batch.engine.hardware import resolve_hardware
from svd_batch.engine.models import load_pipeline
from svd_batch.engine.prepare import prepare_pipeline

out = Path(sys.argv[1])
repo = Path(__file__).resolve().parents[2]
with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
    overrides = ["model=svd_xt", "model.init=random", "hardware=h100", "output_dir=/tmp/unused", "cache_dir=/tmp/pc"]
    config = load_config(compose("config", overrides=overrides + sys.argv[2:]))
hw = resolve_hardware(config.hardware, detect_gpu())
pipe = load_pipeline(config.model, torch.float16, "cuda")
prepare_pipeline(pipe, hw, None)
g = torch.Generator("cuda").manual_seed(0)
sample = torch.randn(2, 25, 8, 72, 128, device="cuda", dtype=torch.float16, generator=g)
context = torch.randn(2, 1, 1024, device="cuda", dtype=torch.float16, generator=g)
time_ids = torch.tensor([[6.0, 127.0, 0.02]] * 2, device="cuda", dtype=torch.float16)
t = torch.tensor(500.0, device="cuda")
latents = torch.randn(8, 4, 72, 128, device="cuda", dtype=torch.float16, generator=g) / 0.18215


def family(name: str) -> str:
    n = name.lower()
    if any(k in n for k in ("fmha", "flash", "sdpa", "attention")):
        return "attention"
    if "nchwtonhwc" in n or "nhwctonchw" in n:
        return "layout conversion"
    if n.startswith("triton"):
        if "group_norm" in n:
            return "triton: group norm"
        if "layer_norm" in n:
            return "triton: layer norm"
        if "gelu" in n or "geglu" in n:
            return "triton: gelu"
        return "triton: other"
    if "fprop" in n or "conv" in n or "implicit" in n:
        return "convolution"
    if any(k in n for k in ("nvjet", "gemm", "cutlass", "sm90")):
        return "gemm"
    return "other"


def measure(name, fn, repeats):
    started = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    first = time.perf_counter() - started
    for _ in range(2):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end) / repeats
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
    kernels = defaultdict(lambda: [0.0, 0])
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            kernels[event.name][0] += event.device_time / 1e3 / 3
            kernels[event.name][1] += 1
    rows = sorted(kernels.items(), key=lambda kv: -kv[1][0])
    families = defaultdict(float)
    for k, (v, _) in rows:
        families[family(k)] += v
    print(f"{name}: first call {first:.1f} s, {ms:.1f} ms", {k: round(v, 1) for k, v in families.items()}, flush=True)
    return {
        "first_call_s": round(first, 1), "ms": round(ms, 1), "kernel_sum_ms": round(sum(v for v, _ in kernels.values()), 1),
        "families_ms": {k: round(v, 1) for k, v in sorted(families.items(), key=lambda kv: -kv[1])},
        "kernels": [{"name": k[:160], "ms": round(v, 3), "calls": c // 3} for k, (v, c) in rows[:90]],
    }


result = {"fast_paths": hw.fast_paths.tag(), "overrides": sys.argv[2:], "device": torch.cuda.get_device_name()}
with torch.no_grad():
    result["unet_step"] = measure(
        "unet", lambda: pipe.unet(sample, t, encoder_hidden_states=context, added_time_ids=time_ids, return_dict=False), 10
    )
    out.write_text(json.dumps(result, indent=1))
    result["vae_decode_8"] = measure("vae", lambda: pipe.vae.decode(latents, num_frames=8), 5)
out.write_text(json.dumps(result, indent=1))
