"""A fused GEGLU projection: `h, g = (x @ W.T + b).chunk(2); out = h * gelu(g)` in one GPU kernel.

diffusers' GEGLU writes the 8C-wide projection to memory and reads it back to apply GELU and the product. Here one
Triton matrix-multiply tile computes matching columns of both halves and writes only the 4C-wide product: the
tile's weight columns alternate between a row of the hidden half and the same row of the gate half (W is read where
it lies, not copied), so one accumulator holds both, and the epilogue splits its column pairs. It is a
`torch.library.triton_op`: torch.compile sees the kernel itself, so Inductor compiles it with its own kernels into
the saved artifact and launches it from the generated code. A process that only runs loaded artifacts then never
launches it through Triton's just-in-time path, whose first launch hashes Triton's installation (about 0.5 s on an
H200). On a CPU, or without Triton, the op runs the reference computation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the op falls back to the reference computation
    triton = None

# One tile shape (BLOCK_M, BLOCK_N weight rows = BLOCK_N / 2 outputs, BLOCK_K, warps, stages): the fastest of seven
# at each of SVD-XT's three widths on an H200 (benchmarks/h200-2026-12-01/geglu_tiles.py); autotuning per process
# cost about 36 s on an H100 (benchmarks/h100-2026-11-23c/), more than the kernel can save.
TILE = (128, 256, 64, 8, 3)


def geglu_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """diffusers' GEGLU: projection, split in two halves, first half times GELU of the second."""
    hidden, gate = F.linear(x, weight, bias).chunk(2, dim=-1)
    return hidden * F.gelu(gate)


@torch.library.triton_op("svd_batch::geglu", mutates_args=())
def geglu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    # also the op's shape function: torch runs it on fake tensors, so it only launches the kernel (no data checks)
    if triton is not None and x.is_cuda and x.dtype in (torch.float16, torch.bfloat16):
        return geglu_triton(x, weight, bias)
    return geglu_reference(x, weight, bias)


def geglu_triton(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, tile: tuple | None = None
) -> torch.Tensor:
    """The fused kernel with `tile` = (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages); the tests pass small tiles to
    Triton's CPU interpreter."""
    rows = x.reshape(-1, x.shape[-1])
    m, k = rows.shape
    n = weight.shape[0] // 2
    out = torch.empty((m, n), device=x.device, dtype=x.dtype)

    block_m, block_n, block_k, warps, stages = tile or TILE
    grid = (triton.cdiv(m, block_m) * triton.cdiv(2 * n, block_n),)
    torch.library.wrap_triton(_geglu_kernel)[grid](
        rows, weight, bias if bias is not None else weight, out,
        m, n, k,
        rows.stride(0), rows.stride(1), weight.stride(0), weight.stride(1), out.stride(0),
        HAS_BIAS=bias is not None, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, GROUP_M=8,
        num_warps=warps, num_stages=stages,
    )  # fmt: skip
    return out.reshape(*x.shape[:-1], n)


if triton is not None:

    @triton.jit
    def _geglu_kernel(
        x_ptr, w_ptr, b_ptr, out_ptr,
        M, N, K: tl.constexpr,
        stride_xm, stride_xk, stride_wn, stride_wk, stride_om,
        HAS_BIAS: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    ):  # fmt: skip
        # tiles in groups of GROUP_M rows, so neighbouring programs reuse the same weight columns from L2
        pid = tl.program_id(0)
        tiles_m = tl.cdiv(M, BLOCK_M)
        tiles_n = tl.cdiv(2 * N, BLOCK_N)
        group = pid // (GROUP_M * tiles_n)
        first_m = group * GROUP_M
        group_rows = min(tiles_m - first_m, GROUP_M)
        pid_m = first_m + (pid % (GROUP_M * tiles_n)) % group_rows
        pid_n = (pid % (GROUP_M * tiles_n)) // group_rows

        rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        pairs = tl.arange(0, BLOCK_N)
        outputs = pid_n * (BLOCK_N // 2) + pairs // 2  # the output column each accumulator column feeds
        w_rows = outputs + (pairs % 2) * N  # even columns: hidden row j; odd: gate row j (row N + j of W)
        ks = tl.arange(0, BLOCK_K)
        x_ptrs = x_ptr + rows[:, None] * stride_xm + ks[None, :] * stride_xk
        w_ptrs = w_ptr + w_rows[None, :] * stride_wn + ks[:, None] * stride_wk  # (BLOCK_K, BLOCK_N) of W.T
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for step in range(0, tl.cdiv(K, BLOCK_K)):
            k_ok = ks < K - step * BLOCK_K
            x = tl.load(x_ptrs, mask=(rows[:, None] < M) & k_ok[None, :], other=0.0)
            w = tl.load(w_ptrs, mask=k_ok[:, None] & (outputs[None, :] < N), other=0.0)
            acc = tl.dot(x, w, acc)
            x_ptrs += BLOCK_K * stride_xk
            w_ptrs += BLOCK_K * stride_wk
        if HAS_BIAS:
            acc += tl.load(b_ptr + w_rows, mask=outputs < N, other=0.0).to(tl.float32)[None, :]
        hidden, gate = tl.split(tl.reshape(acc, (BLOCK_M, BLOCK_N // 2, 2)))
        gelu = 0.5 * gate * (1.0 + tl.math.erf(gate * 0.7071067811865476))  # exact GELU, as F.gelu
        out = (hidden * gelu).to(out_ptr.dtype.element_ty)
        cols = pid_n * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)
        tl.store(
            out_ptr + rows[:, None] * stride_om + cols[None, :], out, mask=(rows[:, None] < M) & (cols[None, :] < N)
        )
