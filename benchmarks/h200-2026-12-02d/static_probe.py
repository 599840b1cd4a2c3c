"""Why the first process to load a new UNet artifact compiles Triton kernels (4.9-6.3 s loads against 1.5-2.0 s
later; `-02c/run3.sh`'s profile: four kernels through triton.compile inside the artifact's module). A graph with the
fused GEGLU (a user-defined Triton kernel, at SVD-XT's width 320) next to inductor's own GELU is compiled ahead of
time and saved, as svd_batch.engine.compiled does, with and without inductor's static launch of user-defined kernels;
then loaded and called in fresh processes, each logging every triton.compile (kernel name, seconds).
Usage: python static_probe.py build|load STATIC(0|1) FOLDER [WIDTHS, e.g. 320,640,1280]"""

import io
import logging
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from svd_batch.engine import kernels
from svd_batch.engine.compiled import aot_compile_available

mode, static, folder = sys.argv[1], sys.argv[2] == "1", Path(sys.argv[3])
logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
logging.getLogger("torch._inductor.runtime.triton_heuristics").setLevel(logging.INFO)  # "Bypassing static..."
logging.getLogger("torch._inductor.triton_bundler").setLevel(logging.INFO)

import triton.compiler.compiler as triton_compiler  # noqa: E402

original = triton_compiler.compile
compiles = []


def logged_compile(src, *args, **kwargs):
    started = time.perf_counter()
    result = original(src, *args, **kwargs)
    name = getattr(getattr(src, "fn", None), "__name__", type(src).__name__)
    compiles.append((name, round(time.perf_counter() - started, 3)))
    return result


triton_compiler.compile = logged_compile
import triton  # noqa: E402

triton.compile = logged_compile


WIDTHS = [int(v) for v in (sys.argv[4] if len(sys.argv) > 4 else "320").split(",")]  # SVD-XT's: 320,640,1280


def f(xs, ws, bs, w2):
    out = [kernels.geglu(x, w, b) for x, w, b in zip(xs, ws, bs)]  # (rows, 4 x width) each
    return [o + F.gelu(xs[0] @ w2) if i == 0 else o for i, o in enumerate(out)]


def randn(*shape, scale=1.0):
    return torch.randn(*shape, device="cuda", dtype=torch.float16) * scale


tokens = {320: 9216, 640: 2304, 1280: 576}
x = [randn(50 * tokens[c], c) for c in WIDTHS]
w = [randn(8 * c, c, scale=0.05) for c in WIDTHS]
b = [randn(8 * c) for c in WIDTHS]
w2 = randn(WIDTHS[0], 4 * WIDTHS[0], scale=0.05)
path = folder / f"static{int(static)}.bin"
started = time.perf_counter()
if mode == "build":
    aot_compile_available()
    options = {"guard_filter_fn": torch.compiler.keep_tensor_guards_unsafe}
    if static:
        options["static_launch_user_defined_triton_kernels"] = True
    compiled = torch.compile(f, fullgraph=True, dynamic=False, options=options).aot_compile(((x, w, b, w2), {}))
    path.write_bytes(type(compiled).serialize(compiled).serialized_data)
else:
    compiled = torch.compiler.load_compiled_function(io.BytesIO(path.read_bytes()))
loaded = time.perf_counter() - started
out = compiled(x, w, b, w2)
torch.cuda.synchronize()
diff = max((o - r).abs().max().item() for o, r in zip(out, f(x, w, b, w2)))
print(f"{mode} static={int(static)} widths={WIDTHS}: {loaded:.2f} s to {mode}, first call done at "
      f"{time.perf_counter() - started:.2f} s, max diff {diff:.4f}; triton.compile calls: {compiles}", flush=True)
