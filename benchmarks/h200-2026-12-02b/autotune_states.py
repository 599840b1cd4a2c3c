"""Why a warm process still autotunes some of inductor's kernels at the compiled UNet's first call (call 1's py-spy
profile: `CachingAutotuner.autotune_to_one_config` under the first call). Loads the cached UNet artifact the way a run
does (prepare_pipeline points inductor at `<cache_dir>/compiled/inductor`), runs it twice, and reports every
CachingAutotuner's autotune-cache state (hit, miss, only 1 config) with where it looked, the .best_config files on
disk, and the two calls' times. python autotune_states.py CACHE_DIR OUT.json"""

import gc
import json
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from svd_batch.config import load_config
from svd_batch.engine.accelerator import detect_gpu
from svd_batch.engine.compiled import example_args, remake_module
from svd_batch.engine.hardware import resolve_hardware
from svd_batch.engine.prepare import make_compiler, point_inductor_at_cache, skip_first_call_alias_check

cache_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
repo = Path(__file__).resolve().parents[2]
with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
    config = load_config(compose("config", overrides=["model=svd_xt", "model.init=random", "hardware=h100",
                                                      f"cache_dir={cache_dir}", "output_dir=/tmp/unused"]))
gpu = detect_gpu()
hw = resolve_hardware(config.hardware, gpu)
point_inductor_at_cache(hw)
skip_first_call_alias_check()
compiler = make_compiler(hw, "unused", gpu.name)
[meta] = compiler.store.find("unet", {})[:1]
started = time.perf_counter()
compiled = compiler.load(meta["key"])
load_s = time.perf_counter() - started
unet = remake_module("unet", json.loads(meta["module_config"]), compiler.settings)
args = example_args(json.loads(meta["signature"]), "cuda")
times = []
for _ in range(2):
    torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.no_grad():
        compiled(unet, *args)
    torch.cuda.synchronize()
    times.append(round(time.perf_counter() - started, 3))

from torch._inductor.runtime.triton_heuristics import CachingAutotuner  # noqa: E402

states, examples = Counter(), {}
for obj in gc.get_objects():
    if isinstance(obj, CachingAutotuner):
        info = getattr(obj, "autotune_cache_info", None) or {}
        state = info.get("autotune_cache_state", "none")
        states[state] += 1
        examples.setdefault(state, {"kernel": getattr(obj.fn, "__name__", "?"), "filename": obj.filename,
                                    "launchers": len(obj.launchers), "info": {k: str(v) for k, v in info.items()}})
inductor = cache_dir / "compiled" / "inductor"
report = {"load_s": round(load_s, 2), "first_and_second_call_s": times, "autotuner_states": dict(states),
          "examples": examples, "best_config_files": len(list(inductor.rglob("*.best_config"))),
          "best_config_files_default_dir": len(list(Path("/tmp").glob("torchinductor_*/**/*.best_config"))),
          "artifact": meta["key"]}
out.write_text(json.dumps(report, indent=1))
print(json.dumps(report, indent=1)[:3000])
