"""FlashAttention-4's Hopper forward (the `flash-attn-4` package, CuTe DSL) against torch's SDPA backends for SVD-XT's
spatial self-attention, the UNet's largest attention cost (cuDNN now: 87 ms of a 481 ms compiled step on an H100,
issue 11). Per shape (CFG batch x frames = 50, head dim 64): milliseconds a call for SDPA's default choice, cuDNN,
flash (FA2), memory-efficient, FA4 called directly on the (batch, tokens, heads, 64) layout diffusers' projections
already have, and SDPA's flash backend with FA4 activated where torch has `activate_flash_attention_impl`; each
one's max difference from cuDNN; FA4's first call (its JIT compile). Then what FA4 would save a UNet step and a
video. Writes JSON to argv[1]."""

import json
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

# width: (tokens per frame at 576x1024, heads, spatial self-attentions of that shape in one UNet step)
SHAPES = {"320": (9216, 5, 5), "640": (2304, 10, 5), "1280": (576, 20, 5), "1280-mid": (144, 20, 1)}
BATCH, HEAD_DIM, STEPS = 50, 64, 25


def timed_ms(fn, repeats: int = 20) -> float:
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return round(start.elapsed_time(end) / repeats, 3)


def sdpa(backend, q, k, v):
    if backend is None:
        return lambda: F.scaled_dot_product_attention(q, k, v)
    def call():
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v)
    return call


results, notes = [], {"torch": torch.__version__, "device": torch.cuda.get_device_name()}
try:
    from flash_attn.cute.interface import flash_attn_func
except Exception as exc:  # the package or its runtime did not install
    flash_attn_func, notes["fa4_import_error"] = None, f"{type(exc).__name__}: {exc}"
activate = getattr(torch.nn.attention, "activate_flash_attention_impl", None)
notes["activate_flash_attention_impl"] = activate is not None

with torch.no_grad():
    for name, (tokens, heads, count) in SHAPES.items():
        # diffusers' layout: projections are (batch, tokens, heads, 64); SDPA gets the (batch, heads, tokens, 64) view
        q, k, v = (torch.randn(BATCH, tokens, heads, HEAD_DIM, device="cuda", dtype=torch.float16) for _ in range(3))
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
        row = {"shape": name, "tokens": tokens, "heads": heads, "per_step": count}
        reference = sdpa(SDPBackend.CUDNN_ATTENTION, qt, kt, vt)()
        for label, backend in (("default", None), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                               ("flash2", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
            try:
                fn = sdpa(backend, qt, kt, vt)
                row[f"{label}_ms"] = timed_ms(fn)
                row[f"{label}_diff"] = round((fn() - reference).abs().max().item(), 5)
            except Exception as exc:
                row[f"{label}_error"] = f"{type(exc).__name__}: {exc}"[:300]
        if flash_attn_func is not None:
            try:
                started = time.perf_counter()
                out = flash_attn_func(q, k, v)
                out = out[0] if isinstance(out, tuple) else out
                torch.cuda.synchronize()
                row["fa4_first_call_s"] = round(time.perf_counter() - started, 2)
                row["fa4_ms"] = timed_ms(lambda: flash_attn_func(q, k, v))
                row["fa4_diff"] = round((out.transpose(1, 2) - reference).abs().max().item(), 5)
            except Exception as exc:
                row["fa4_error"] = f"{type(exc).__name__}: {exc}"[:300]
        results.append(row)
        print(json.dumps(row), flush=True)

    if activate is not None and flash_attn_func is not None:
        try:
            activate("FA4")
            for row in results:
                tokens, heads = row["tokens"], row["heads"]
                q, k, v = (torch.randn(BATCH, heads, tokens, HEAD_DIM, device="cuda", dtype=torch.float16)
                           for _ in range(3))
                row["sdpa_fa4_ms"] = timed_ms(sdpa(SDPBackend.FLASH_ATTENTION, q, k, v))
        except Exception as exc:
            notes["sdpa_fa4_error"] = f"{type(exc).__name__}: {exc}"[:300]

best = {row["shape"]: min((row[k] for k in ("default_ms", "cudnn_ms") if k in row), default=None) for row in results}
saved = [row["per_step"] * (best[row["shape"]] - row["fa4_ms"]) for row in results
         if "fa4_ms" in row and best[row["shape"]] is not None]
if saved:
    notes["fa4_saves_ms_per_step"] = round(sum(saved), 2)
    notes["fa4_saves_s_per_video"] = round(sum(saved) * STEPS / 1000, 3)
print(json.dumps(notes))
with open(sys.argv[1], "w") as out:
    json.dump({"notes": notes, "results": results}, out, indent=1)
