"""One compiled SVD-XT UNet step (CFG batch 2 x 25 frames, 576x1024, fp16, random weights) with the `h100` profile's
spatial attention on torch's choice (cuDNN) and on FlashAttention-4 (`hardware.spatial_attention=fa4`), compiled in
this process one after the other: ms a step (20 timed after 3), the first call, the attention kernels' share of a
step (torch.profiler over 3 steps), and the two outputs' max difference.
python fa4_step.py OUT_JSON"""

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
from svd_batch.engine.prepare import prepare_pipeline, reset_pipeline

out_path = Path(sys.argv[1])
repo = Path(__file__).resolve().parents[2]
BASE = ["model=svd_xt", "model.init=random", "hardware=h100", "output_dir=/tmp/unused", "cache_dir=/tmp/fa4step"]
VARIANTS = {"default": [], "fa4": ["hardware.spatial_attention=fa4"]}


def hardware(overrides):
    with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
        config = load_config(compose("config", overrides=BASE + overrides))
    return config, resolve_hardware(config.hardware, detect_gpu())


config, hw = hardware([])
pipe = load_pipeline(config.model, torch.float16, "cuda")
unet = pipe.unet
g = torch.Generator("cuda").manual_seed(0)
sample = torch.randn(2, 25, 8, 72, 128, device="cuda", dtype=torch.float16, generator=g)
context = torch.randn(2, 1, 1024, device="cuda", dtype=torch.float16, generator=g)
time_ids = torch.tensor([[6.0, 127.0, 0.02]] * 2, device="cuda", dtype=torch.float16)
t = torch.tensor(500.0, device="cuda")


def step():
    return pipe.unet(sample, t, encoder_hidden_states=context, added_time_ids=time_ids, return_dict=False)[0]


def measure(name):
    started = time.perf_counter()
    output = step()
    torch.cuda.synchronize()
    first = time.perf_counter() - started
    for _ in range(3):
        step()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(20):
        step()
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end) / 20
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    kernels = defaultdict(float)
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            kernels[event.name] += event.device_time / 1e3 / 3
    attention = {k[:120]: round(v, 2) for k, v in kernels.items()
                 if any(s in k.lower() for s in ("fmha", "flash", "attention", "sdpa", "cudnn"))}
    row = {"first_call_s": round(first, 1), "ms": round(ms, 2), "kernel_sum_ms": round(sum(kernels.values()), 1),
           "attention_ms": round(sum(attention.values()), 2), "attention_kernels": attention}
    print(name, json.dumps(row), flush=True)
    return row, output.float()


result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
outputs = {}
with torch.no_grad():
    for name, overrides in VARIANTS.items():
        _, hw = hardware(overrides)
        reset_pipeline(pipe, unet, "cuda")
        started = time.perf_counter()
        prepare_pipeline(pipe, hw, None)  # torch.compile in this process (no artifacts)
        row, outputs[name] = measure(name)
        row["fast_paths"], row["prepare_s"] = hw.fast_paths.tag(), round(time.perf_counter() - started, 1)
        result[name] = row
        out_path.write_text(json.dumps(result, indent=1))
if "fa4" in outputs:
    result["max_diff_fa4_vs_default"] = round((outputs["fa4"] - outputs["default"]).abs().max().item(), 5)
    result["fa4_saves_ms_per_step"] = round(result["default"]["ms"] - result["fa4"]["ms"], 2)
    result["fa4_saves_s_per_video"] = round(result["fa4_saves_ms_per_step"] * 25 / 1000, 3)
print(json.dumps({k: v for k, v in result.items() if k not in VARIANTS}), flush=True)
out_path.write_text(json.dumps(result, indent=1))
