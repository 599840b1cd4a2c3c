"""`python compile_probe.py run.py ARGS...`: runs the command with every Triton compile in this process logged to
stderr (one JSON line each, prefixed TRITON_COMPILE: kernel name, seconds, thread) and inductor's reasons for not
launching a kernel statically (logger torch._inductor.runtime.triton_heuristics at INFO). For the first process
after a build, whose UNet artifact loads in 5.4 s against 1.7 s in the building run's own process (call 2), after
the fused GEGLU was made statically launchable (calls 3-5: no compile left for it in a small graph). Diagnostic
only: it imports Triton and inductor's runtime before the command starts."""

import json
import logging
import runpy
import sys
import threading
import time

import triton
import triton.compiler.compiler as triton_compiler

original = triton_compiler.compile


def logged_compile(src, *args, **kwargs):
    started = time.perf_counter()
    try:
        return original(src, *args, **kwargs)
    finally:
        note = {
            "kernel": getattr(getattr(src, "fn", None), "__name__", type(src).__name__),
            "s": round(time.perf_counter() - started, 3),
            "thread": threading.current_thread().name,
        }
        print("TRITON_COMPILE " + json.dumps(note), file=sys.stderr, flush=True)


triton_compiler.compile = logged_compile
triton.compile = logged_compile
handler = logging.StreamHandler(sys.stderr)
handler.setFormatter(logging.Formatter("STATIC_LAUNCH %(message)s"))
heuristics_log = logging.getLogger("torch._inductor.runtime.triton_heuristics")
heuristics_log.setLevel(logging.INFO)
heuristics_log.addHandler(handler)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
