"""Achieved memory bandwidth of each Triton kernel of one compiled SVD-XT UNet step and one compiled 8-frame VAE
decode: which of inductor's kernels run far below memory speed, and their source, so that a fix can aim at them.

`../h200-2026-12-01c/kernel_bandwidth.py` asked inductor itself (TORCHINDUCTOR_PROFILE), which fails at the first
compile on torch 2.11 (`benchmark_compiled_module()` missing `args`, `call1-log.txt`). This one only has inductor
record each kernel's bytes (TORCHINDUCTOR_BENCHMARK_KERNEL=1 puts `kernel_num_gb` into every kernel's metadata), times
the kernels with torch.profiler and divides. Compiles in this process with a fresh inductor cache.
python kernel_bandwidth.py OUT_DIR [overrides...]"""

import json
import os
import re
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

out = Path(sys.argv[1])
shutil.rmtree("/tmp/kb2", ignore_errors=True)  # the run's cache_dir: inductor's cache goes under it, fresh
os.environ["TORCHINDUCTOR_BENCHMARK_KERNEL"] = "1"
os.environ["TORCHINDUCTOR_FX_GRAPH_CACHE"] = "0"  # generate every kernel here, with its metadata

import torch  # noqa: E402  (after the environment inductor reads at import)
from hydra import compose, initialize_config_dir  # noqa: E402

from svd_batch.config import load_config  # noqa: E402
from svd_batch.engine.accelerator import detect_gpu  # noqa: E402
from svd_batch.engine.hardware import resolve_hardware  # noqa: E402
from svd_batch.engine.models import load_pipeline  # noqa: E402
from svd_batch.engine.prepare import prepare_pipeline  # noqa: E402

PEAK_GBS = float(os.environ.get("PEAK_GBS", "4800"))  # H200 HBM3e; an H100 SXM: 3350
repo = Path(__file__).resolve().parents[2]
overrides = [
    "model=svd_xt",
    "model.init=random",
    "hardware=h100",
    "hardware.compile_artifacts=false",  # torch.compile in this process: its kernels land in CACHE
    "hardware.compile_background=false",
    "output_dir=/tmp/unused",
    "cache_dir=/tmp/kb2",
]
with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
    config = load_config(compose("config", overrides=overrides + sys.argv[2:]))
hw = resolve_hardware(config.hardware, detect_gpu())
pipe = load_pipeline(config.model, torch.float16, "cuda")
prepare_pipeline(pipe, hw, None)
CACHE = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])  # set by prepare_pipeline: <cache_dir>/compiled/inductor
g = torch.Generator("cuda").manual_seed(0)
sample = torch.randn(2, 25, 8, 72, 128, device="cuda", dtype=torch.float16, generator=g)
context = torch.randn(2, 1, 1024, device="cuda", dtype=torch.float16, generator=g)
time_ids = torch.tensor([[6.0, 127.0, 0.02]] * 2, device="cuda", dtype=torch.float16)
t = torch.tensor(500.0, device="cuda")
latents = torch.randn(8, 4, 72, 128, device="cuda", dtype=torch.float16, generator=g) / 0.18215
NAME, GB = re.compile(r"'kernel_name': '(triton_\w+)'"), re.compile(r"'kernel_num_gb': ([0-9.eE+-]+)")


def kernel_files(seen: set[Path]) -> dict[str, tuple[float, Path]]:
    """name -> (GB moved a call, source file) of the kernels generated since `seen` (names repeat across graphs). A
    kernel's own file is preferred to the graph's module, which holds every kernel's source too."""
    found = {}
    for path in sorted(CACHE.rglob("*.py"), key=lambda p: p.stat().st_size, reverse=True):
        if path in seen:
            continue
        seen.add(path)
        for line in path.read_text(errors="replace").splitlines():
            if "inductor_meta=" in line and (name := NAME.search(line)) and (gb := GB.search(line)):
                found[name.group(1)] = (float(gb.group(1)), path)  # smaller files last: they win
    return found


def measure(name: str, fn, seen: set[Path]) -> dict:
    started = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    first = time.perf_counter() - started
    sizes = kernel_files(seen)
    for _ in range(2):
        fn()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
    kernels = defaultdict(lambda: [0.0, 0])
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            kernels[event.name][0] += event.device_time / 1e3 / 3
            kernels[event.name][1] += 1
    rows, total = [], sum(ms for ms, _ in kernels.values())
    for kernel, (ms, count) in kernels.items():
        calls = count // 3
        gb, path = sizes.get(kernel, (None, None))
        row = {"name": kernel[:160], "ms": round(ms, 3), "calls": calls}
        if gb is not None and calls:
            at_peak_ms = calls * gb / PEAK_GBS * 1e3
            row |= {"gb_a_call": round(gb, 4), "gbs": round(calls * gb / (ms / 1e3)), "lost_ms": round(ms - at_peak_ms, 3)}
            row["source"] = str(path)
        rows.append(row)
    rows.sort(key=lambda r: -r.get("lost_ms", -1))
    triton_ms = sum(r["ms"] for r in rows if r["name"].startswith("triton"))
    measured = [r for r in rows if "lost_ms" in r]
    print(
        f"{name}: first call {first:.1f} s; kernels {total:.1f} ms, triton {triton_ms:.1f} ms, "
        f"{len(measured)} with bytes: lost {sum(r['lost_ms'] for r in measured):.1f} ms against {PEAK_GBS:.0f} GB/s",
        flush=True,
    )
    for r in measured[:25]:
        print(f"  {r['ms']:7.2f} ms {r['calls']:3d}x {r['gb_a_call']:8.4f} GB {r['gbs']:6d} GB/s  {r['name'][:90]}")
    (out / "kernels").mkdir(parents=True, exist_ok=True)
    for r in measured[:15]:  # the source of the kernels furthest from memory speed
        shutil.copy(r["source"], out / "kernels" / f"{name}-{r['name'][:100]}.py")
    return {"first_call_s": round(first, 1), "kernel_ms": round(total, 1), "triton_ms": round(triton_ms, 1), "kernels": rows}


result = {"fast_paths": hw.fast_paths.tag(), "vae": hw.fast_paths.vae_tag(), "overrides": sys.argv[2:]}
result["device"], result["peak_gbs"] = torch.cuda.get_device_name(), PEAK_GBS
seen: set[Path] = set()
with torch.no_grad():
    unet = lambda: pipe.unet(sample, t, encoder_hidden_states=context, added_time_ids=time_ids, return_dict=False)  # noqa: E731
    result["unet_step"] = measure("unet", unet, seen)
    (out / "kernel-bandwidth.json").write_text(json.dumps(result, indent=1))
    result["vae_decode_8"] = measure("vae", lambda: pipe.vae.decode(latents, num_frames=8), seen)
(out / "kernel-bandwidth.json").write_text(json.dumps(result, indent=1))
