"""`python autotune_probe.py run.py ARGS...`: runs the command with every kernel that inductor autotunes at run time
logged to stderr (one JSON line each, prefixed AUTOTUNE): its file, its candidate launch settings, the autotune
cache's state for it, whether it could save its choice, and whether the file its choice would be read from exists.
For the warm start's remaining autotuning (call 3: 0.47 sampled seconds at the first UNet call, although
`autotune_states.py` found each of the UNet's kernels a cache hit in a process of its own). Diagnostic only: it
imports inductor's runtime before the command starts."""

import json
import os
import runpy
import sys
import threading

from torch._inductor.runtime import triton_heuristics
from torch._inductor.runtime.autotune_cache import AutotuneCache

original = triton_heuristics.CachingAutotuner.autotune_to_one_config


def autotune_to_one_config(self, *args, **kwargs):
    filename = getattr(self, "filename", None)
    expected, nearby = None, []
    if filename:
        key = AutotuneCache._prepare_key(filename)
        if hasattr(AutotuneCache, "_make_local_cache_key"):  # torch 2.12 on: the key includes torch_key()
            expected = AutotuneCache._make_local_cache_key(os.path.dirname(filename), key)
        else:  # torch 2.11 (call 1 of ../h200-2026-12-02c failed here): the key alone, in the kernel's folder
            expected = os.path.join(os.path.dirname(filename), f"{key}.best_config")
        folder = os.path.dirname(filename)
        nearby = sorted(f for f in os.listdir(folder) if f.endswith(".best_config")) if os.path.isdir(folder) else []
    note = {
        "kernel": getattr(self.fn, "__name__", "?"),
        "filename": filename,
        "candidates": len(getattr(self, "compile_results", None) or []),
        "launchers": len(self.launchers),
        "info": {k: str(v) for k, v in (getattr(self, "autotune_cache_info", None) or {}).items()},
        "save_hook": self.save_cache_hook is not None,
        "best_config_file": expected,
        "best_config_exists": bool(expected and os.path.exists(expected)),
        "best_configs_in_folder": nearby,
        "thread": threading.current_thread().name,
    }
    print("AUTOTUNE " + json.dumps(note), file=sys.stderr, flush=True)
    return original(self, *args, **kwargs)


triton_heuristics.CachingAutotuner.autotune_to_one_config = autotune_to_one_config
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
