"""What FlashAttention-4 costs a fresh process before its first attention (issue 11's warm start): the package's
import after torch and Dynamo (which a compiled run imports anyway), then its first call at SVD-XT's head dim, which
compiles the kernel or loads it from FLASH_ATTENTION_CUTE_DSL_CACHE_DIR. Prints one JSON line."""

import json
import time

import torch
import torch._dynamo  # noqa: F401  (imported by every compiled run before its first step)

torch.zeros(1, device="cuda")
started = time.perf_counter()
from flash_attn.cute import flash_attn_func  # noqa: E402

imported = time.perf_counter()
q = torch.randn(50, 9216, 5, 64, device="cuda", dtype=torch.float16)
flash_attn_func(q, q, q)
torch.cuda.synchronize()
first = time.perf_counter()
flash_attn_func(q, q, q)
torch.cuda.synchronize()
print(json.dumps({"import_s": round(imported - started, 2), "first_call_s": round(first - imported, 2),
                  "second_call_s": round(time.perf_counter() - first, 3)}))
