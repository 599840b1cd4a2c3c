"""Achieved memory bandwidth of each kernel of the compiled UNet step (inductor's own per-kernel benchmark,
TORCHINDUCTOR_PROFILE; every inductor Triton kernel by default): the norms and the kernels around them took ~76 ms
of a 400 ms step (../h200-2026-12-01/README.md), an estimated 3-5x their bytes' time at the H200's memory speed;
this says which ones, at what GB/s, and copies out the slowest ones' source, so that a fix can aim at them.
Compiles in this process with a fresh inductor cache.
python kernel_bandwidth.py OUT_DIR [REGEX] [overrides...]"""

import os
import sys
from pathlib import Path

out = Path(sys.argv[1])
os.environ["TORCHINDUCTOR_PROFILE"] = sys.argv[2] if len(sys.argv) > 2 else "triton_"  # re.match: a name prefix
os.environ["TORCHINDUCTOR_PROFILE_OUTPUT"] = str(out / "kernel-bandwidth.txt")
os.environ["TORCHINDUCTOR_CACHE_DIR"] = "/tmp/kb-inductor"

import torch  # noqa: E402  (after the environment inductor reads at import)
from hydra import compose, initialize_config_dir  # noqa: E402

from svd_batch.config import load_config  # noqa: E402
from svd_batch.engine.accelerator import detect_gpu  # noqa: E402
from svd_batch.engine.hardware import resolve_hardware  # noqa: E402
from svd_batch.engine.models import load_pipeline  # noqa: E402
from svd_batch.engine.prepare import prepare_pipeline  # noqa: E402

repo = Path(__file__).resolve().parents[2]
overrides = [
    "model=svd_xt",
    "model.init=random",
    "hardware=h100",
    "hardware.compile_artifacts=false",
    "hardware.compile_vae=false",
    "output_dir=/tmp/unused",
    "cache_dir=/tmp/kbc",
]
with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
    config = load_config(compose("config", overrides=overrides + sys.argv[3:]))
pipe = load_pipeline(config.model, torch.float16, "cuda")
prepare_pipeline(pipe, resolve_hardware(config.hardware, detect_gpu()), None)
g = torch.Generator("cuda").manual_seed(0)
sample = torch.randn(2, 25, 8, 72, 128, device="cuda", dtype=torch.float16, generator=g)
context = torch.randn(2, 1, 1024, device="cuda", dtype=torch.float16, generator=g)
time_ids = torch.tensor([[6.0, 127.0, 0.02]] * 2, device="cuda", dtype=torch.float16)
with torch.no_grad():
    for _ in range(2):  # the first call compiles; the file gets one block a call, the second is the clean one
        pipe.unet(sample, torch.tensor(500.0, device="cuda"), context, time_ids, return_dict=False)
        torch.cuda.synchronize()
# the source of the slowest kernels of the last call's block, to see why they run below memory speed
report = (out / "kernel-bandwidth.txt").read_text()
last = report[report.rfind("TRITON KERNELS BANDWIDTH INFO") :]
names = [line.split()[-1] for line in last.splitlines()[1:] if line.strip() and not line.startswith("SUMMARY")][:20]
(out / "kernels").mkdir(exist_ok=True)
for path in Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]).rglob("*.py"):
    text = path.read_text(errors="replace")
    for name in names:
        if f"def {name}(" in text:
            (out / "kernels" / f"{name}.py").write_text(text)
print(last[:6000])
