"""A/B of the fused GEGLU inside compiled code, at SVD-XT's three transformer widths (25 frames, 576x1024, CFG
batch): diffusers' GEGLU compiled by inductor, our kernel as an opaque custom op (before 9836be0), and as a
`triton_op` that inductor compiles with its own kernels (from 9836be0). Why: the warm sweep's median denoise went
9.67 -> 9.78 s a video between two H200 machines with the triton_op in (calls 2 of h200-2026-12-02b and -02c); this
says whether that is the op or the machine. Prints one JSON line per width and writes them to argv[1]."""

import json
import sys

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from torch._library.triton import set_wrap_triton_enabled

from svd_batch.engine import kernels

# the pre-9836be0 op, under another name, so both ops live in one process
@torch.library.custom_op("svd_batch_ab::geglu", mutates_args=())
def custom(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if x.is_cuda:
        with set_wrap_triton_enabled(False):  # geglu_triton launches through wrap_triton
            return kernels.geglu_triton(x, weight, bias)
    return kernels.geglu_reference(x, weight, bias)


@custom.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], weight.shape[0] // 2))

WIDTHS = {320: 72 * 128, 640: 36 * 64, 1280: 18 * 32}  # channels -> spatial tokens of a frame at 576x1024
BATCH = 2 * 25  # CFG x frames


def timed_ms(fn, x, repeats=50) -> float:
    for _ in range(5):
        fn(x)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(repeats):
        fn(x)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats


results = []
with torch.no_grad():
    for width, tokens in WIDTHS.items():
        ff = FeedForward(width, activation_fn="geglu").cuda().half().eval()
        proj = ff.net[0].proj
        x = torch.randn(BATCH, tokens, width, device="cuda", dtype=torch.float16)
        variants = {
            "inductor": lambda h: ff(h),
            "custom_op": lambda h: ff.net[2](custom(h, proj.weight, proj.bias)),
            "triton_op": lambda h: ff.net[2](kernels.geglu(h, proj.weight, proj.bias)),
        }
        row = {"width": width, "rows": BATCH * tokens}
        reference = F.linear(*(t.float() for t in (x, proj.weight, proj.bias))).chunk(2, -1)
        reference = ff.net[2](((reference[0] * F.gelu(reference[1])).half()))
        for name, fn in variants.items():
            torch._dynamo.reset()
            compiled = torch.compile(fn, fullgraph=True)
            row[f"{name}_ms"] = round(timed_ms(compiled, x), 3)
            row[f"{name}_max_diff"] = round((compiled(x).float() - reference.float()).abs().max().item(), 4)
        print(json.dumps(row), flush=True)
        results.append(row)
open(sys.argv[1], "w").write(json.dumps(results, indent=1))
