"""GEGLU projection at SVD-XT's three UNet widths (CFG batch 2 x 25 frames at 576x1024): cuBLAS + inductor's fused
GELU-product against Triton kernels (the shipped two-accumulator kernel, and one accumulator over weights whose
hidden and gate rows are interleaved, split in the epilogue). python geglu_tiles.py OUT_JSON"""
import json
import sys

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from triton.testing import do_bench

from svd_batch.engine.kernels import _geglu_kernel, geglu_reference

SHAPES = [(460800, 320), (115200, 640), (28800, 1280)]  # (tokens, channels): inner width 4 x channels


@triton.jit
def interleaved_kernel(x_ptr, w_ptr, b_ptr, out_ptr, M, N, K: tl.constexpr, stride_xm, stride_wn, stride_om,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    # W rows interleaved: 2j = hidden j, 2j+1 = gate j; a tile of BLOCK_N weight rows gives BLOCK_N/2 outputs
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(2 * N, BLOCK_N)
    group = pid // (GROUP_M * tiles_n)
    first_m = group * GROUP_M
    group_rows = min(tiles_m - first_m, GROUP_M)
    pid_m = first_m + (pid % (GROUP_M * tiles_n)) % group_rows
    pid_n = (pid % (GROUP_M * tiles_n)) // group_rows
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    x_ptrs = x_ptr + rows[:, None] * stride_xm + ks[None, :]
    w_ptrs = w_ptr + cols[None, :] * stride_wn + ks[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for step in range(0, tl.cdiv(K, BLOCK_K)):
        x = tl.load(x_ptrs, mask=rows[:, None] < M, other=0.0)
        acc = tl.dot(x, tl.load(w_ptrs), acc)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    acc += tl.load(b_ptr + cols).to(tl.float32)[None, :]
    h, g = tl.split(tl.reshape(acc, (BLOCK_M, BLOCK_N // 2, 2)))
    out = (h * (0.5 * g * (1.0 + tl.math.erf(g * 0.7071067811865476)))).to(out_ptr.dtype.element_ty)
    ocols = pid_n * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)
    tl.store(out_ptr + rows[:, None] * stride_om + ocols[None, :], out, mask=rows[:, None] < M)


def interleaved(x, w2, b2, n, tile):
    bm, bn, bk, warps, stages = tile
    m, k = x.shape
    out = torch.empty((m, n), device=x.device, dtype=x.dtype)
    grid = (triton.cdiv(m, bm) * triton.cdiv(2 * n, bn),)
    interleaved_kernel[grid](x, w2, b2, out, m, n, k, x.stride(0), w2.stride(0), out.stride(0),
                             BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=8, num_warps=warps, num_stages=stages)
    return out


def two_acc(x, w, b, n, tile):
    bm, bn, bk, warps, stages = tile
    m, k = x.shape
    out = torch.empty((m, n), device=x.device, dtype=x.dtype)
    grid = (triton.cdiv(m, bm) * triton.cdiv(n, bn),)
    _geglu_kernel[grid](x, w, b, out, m, n, k, x.stride(0), x.stride(1), w.stride(0), w.stride(1), out.stride(0),
                        HAS_BIAS=True, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=8, num_warps=warps,
                        num_stages=stages)
    return out


compiled_ref = torch.compile(geglu_reference)
results = []
for m, c in SHAPES:
    n, k = 4 * c, c
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    w = torch.randn(2 * n, k, device="cuda", dtype=torch.float16) / k**0.5
    b = torch.randn(2 * n, device="cuda", dtype=torch.float16) / 10
    w2 = torch.stack([w[:n], w[n:]], 1).reshape(2 * n, k).contiguous()
    b2 = torch.stack([b[:n], b[n:]], 1).reshape(2 * n).contiguous()
    ref = geglu_reference(x, w, b)
    flop = 2 * m * k * 2 * n
    row = {"tokens": m, "channels": c}

    def run(name, fn):
        try:
            got = fn()
            err = (got.float() - ref.float()).abs().max().item()
            ms = do_bench(fn, warmup=25, rep=100)
            row[name] = {"ms": round(ms, 3), "tflops": round(flop / ms / 1e9, 1), "max_err": round(err, 4)}
        except Exception as exc:
            row[name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        print(m, c, name, row[name], flush=True)

    run("cublas_linear_only", lambda: F.linear(x, w, b))
    run("cublas+inductor_gelu_mul", lambda: compiled_ref(x, w, b))
    for tile in [(128, 128, 64, 8, 3), (128, 128, 64, 8, 4), (128, 64, 64, 4, 4), (64, 128, 64, 4, 4)]:
        run(f"two_acc{tile}", lambda t=tile: two_acc(x, w, b, n, t))
    for tile in [(128, 256, 64, 8, 3), (128, 256, 64, 8, 4), (128, 128, 64, 4, 4), (128, 128, 64, 8, 4),
                 (256, 128, 64, 8, 3), (128, 256, 32, 8, 5), (64, 256, 64, 4, 4)]:
        run(f"interleaved{tile}", lambda t=tile: interleaved(x, w2, b2, n, t))
    results.append(row)
json.dump(results, open(sys.argv[1], "w"), indent=1)
