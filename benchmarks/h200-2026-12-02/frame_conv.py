"""Eager cuDNN time of the VAE decoder's (3, 1, 1) frame convolutions in the layouts a compiled graph could hand it:
the profile of an 8-frame decode (../h200-2026-12-01/call2-step-profile.json) has 7 calls a chunk of cuDNN's generic
`sm80_xmma_fprop_implicit_gemm_indexed_wo_smem` kernel, 34 ms of a 271 ms decode. Which formulation avoids it?
python frame_conv.py OUT_JSON"""
import json
import sys

import torch
import torch.nn.functional as F

torch.backends.cudnn.benchmark = False  # heuristics, as the compiled graphs use


def timed(fn, reps=10) -> float:
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return round(start.elapsed_time(end) / reps, 3)


def kernels(fn) -> list[str]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sorted({e.name[:90] for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA})


results = []
with torch.no_grad():
    for channels, frames, height, width in [(128, 8, 576, 1024), (256, 8, 288, 512), (512, 8, 144, 256)]:
        g = torch.Generator("cuda").manual_seed(0)
        # the decoder's activations: frame-major (frames, C, H, W) in channels-last memory
        x = torch.randn(frames, channels, height, width, device="cuda", dtype=torch.float16, generator=g)
        x = x.contiguous(memory_format=torch.channels_last)
        w = torch.randn(channels, channels, 3, 1, 1, device="cuda", dtype=torch.float16, generator=g) / 20
        b = torch.randn(channels, device="cuda", dtype=torch.float16, generator=g)
        v5 = x.unsqueeze(0).permute(0, 2, 1, 3, 4)  # (1, C, F, H, W) view, as SpatioTemporalResBlock hands it
        pixels = v5.flatten(3)  # (1, C, F, H*W): the current conv_over_frames input
        by_row = x.permute(2, 1, 0, 3)  # (H, C, F, W): each row a batch item (a view; channels-last needs a copy)
        variants = {
            "conv2d (1, C, F, HW) [current]": lambda: F.conv2d(pixels, w.flatten(3), b, padding=(1, 0)),
            "conv3d channels_last_3d": lambda: F.conv3d(
                v5.contiguous(memory_format=torch.channels_last_3d), w, b, padding=(1, 0, 0)
            ),
            "conv2d (H, C, F, W) incl. copy": lambda: F.conv2d(
                by_row.contiguous(memory_format=torch.channels_last), w.flatten(3), b, padding=(1, 0)
            ),
            "copy to (H, C, F, W) only": lambda: by_row.contiguous(memory_format=torch.channels_last),
            "conv2d (F, C, H, W) 1x1 x3 (taps as 1x1 convs, no sum)": lambda: [
                F.conv2d(x, w[:, :, k, 0, 0, None, None]) for k in range(3)
            ],
            "mm over pixels x3 (no sum)": lambda: [
                x.permute(0, 2, 3, 1).reshape(-1, channels) @ w[:, :, k, 0, 0].t() for k in range(3)
            ],
        }
        for name, fn in variants.items():
            row = {"shape": [channels, frames, height, width], "variant": name, "ms": timed(fn), "kernels": kernels(fn)}
            print(row, flush=True)
            results.append(row)
        expected = F.conv2d(pixels, w.flatten(3), b, padding=(1, 0))
        got = F.conv2d(by_row.contiguous(memory_format=torch.channels_last), w.flatten(3), b, padding=(1, 0))
        results.append({"shape": [channels], "by_row_max_diff": (got.permute(2, 1, 0, 3) - expected[0].unflatten(2, (height, width)).permute(1, 0, 2, 3)).abs().max().item()})
        del x, v5, pixels, by_row
        torch.cuda.empty_cache()
json.dump(results, open(sys.argv[1], "w"), indent=1)
