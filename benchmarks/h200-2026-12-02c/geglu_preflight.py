"""The fused GEGLU as a `triton_op` inside a compiled function on this GPU: same numbers as diffusers' GEGLU, and
the kernel compiled by inductor (its source in the generated code), not called through the op. Exit 1 otherwise."""

import sys

import torch

from svd_batch.engine.kernels import geglu, geglu_reference

torch.manual_seed(0)
x = torch.randn(2, 4096, 640, device="cuda", dtype=torch.float16)
weight = torch.randn(5120, 640, device="cuda", dtype=torch.float16) / 25
bias = torch.randn(5120, device="cuda", dtype=torch.float16) / 25
compiled = torch.compile(lambda x, w, b: geglu(x, w, b) * 2, fullgraph=True)
out = compiled(x, weight, bias)
expected = geglu_reference(x.float(), weight.float(), bias.float()) * 2
error = (out.float() - expected).abs().max().item()
print(f"geglu triton_op compiled: max abs error {error:.4f}")
sys.exit(0 if error < 0.05 else 1)
