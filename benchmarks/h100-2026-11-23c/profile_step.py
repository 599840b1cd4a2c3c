"""Per-kernel GPU time of one SVD-XT UNet step through the h100 profile's compiled artifact (from a warm cache).

python benchmarks/h100-2026-11-23c/profile_step.py CACHE_DIR OUT_DIR
"""
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from svd_batch.batch.plan import model_identity
from svd_batch.config import load_config
from svd_batch.engine.accelerator import detect_gpu
from svd_batch.engine.artifacts import ArtifactStore
from svd_batch.engine.compiled import example_args
from svd_batch.engine.hardware import resolve_hardware
from svd_batch.engine.models import load_pipeline
from svd_batch.engine.prepare import make_compiler, prepare_pipeline

cache, out = Path(sys.argv[1]), Path(sys.argv[2])
repo = Path(__file__).resolve().parents[2]
with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
    overrides = ["model=svd_xt", "model.init=random", "hardware=h100", "output_dir=/tmp/unused", f"cache_dir={cache}"]
    overrides += sys.argv[3:]
    config = load_config(compose("config", overrides=overrides))
gpu = detect_gpu()
hw = resolve_hardware(config.hardware, gpu)
pipe = load_pipeline(config.model, torch.float16, "cuda")
compiler = make_compiler(hw, model_identity(config.model, hw.dtype), gpu.name)
prepare_pipeline(pipe, hw, compiler)
metas = [m for m in ArtifactStore(compiler.settings.store).find("unet", {"fast_paths": hw.fast_paths.tag()})]
if not metas:
    sys.exit(f"no unet artifact for {hw.fast_paths.tag()} in {cache}")
args = example_args(json.loads(metas[0]["signature"]), "cuda")
unet = pipe.unet
with torch.no_grad():
    step = lambda: unet(args[0], args[1], encoder_hidden_states=args[2], added_time_ids=args[3], return_dict=False)
    started = time.perf_counter()
    step()
    torch.cuda.synchronize()
    first = time.perf_counter() - started
    for _ in range(2):
        step()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        step()
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end) / 10
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
kernels = defaultdict(lambda: [0.0, 0])
for event in prof.events():
    if event.device_type == torch.autograd.DeviceType.CUDA:
        kernels[event.name][0] += event.device_time / 1e3 / 3  # ms per step
        kernels[event.name][1] += 1
rows = sorted(kernels.items(), key=lambda kv: -kv[1][0])
families = defaultdict(float)
for name, (t, _) in rows:
    n = name.lower()
    family = (
        "attention" if any(k in n for k in ("fmha", "flash", "attention", "cudnn_generated_fort_native_sdpa", "sdpa")) else
        "geglu (svd_batch)" if "geglu" in n else
        "gemm" if any(k in n for k in ("gemm", "nvjet", "cutlass", "sm90_xmma")) else
        "conv" if any(k in n for k in ("conv", "implicit", "xmma_fprop", "fprop")) else
        "layout" if any(k in n for k in ("nchwtonhwc", "nhwctonchw", "transpose")) else
        "triton (inductor)" if n.startswith("triton") else "other"
    )  # fmt: skip
    families[family] += t
result = {
    "fast_paths": hw.fast_paths.tag(),
    "first_call_s": round(first, 2),
    "step_ms": round(ms, 1),
    "families_ms": {k: round(v, 1) for k, v in sorted(families.items(), key=lambda kv: -kv[1])},
    "kernels": [{"name": name[:160], "ms_per_step": round(t, 2), "calls_per_step": c // 3} for name, (t, c) in rows[:60]],
}
(out / f"profile-{hw.fast_paths.tag().replace(',', '_').replace('=', '-')}.json").write_text(json.dumps(result, indent=1))
print(json.dumps({k: v for k, v in result.items() if k != "kernels"}))
for row in result["kernels"][:25]:
    print(f"{row['ms_per_step']:8.2f} ms {row['calls_per_step']:4d}x  {row['name'][:110]}")
