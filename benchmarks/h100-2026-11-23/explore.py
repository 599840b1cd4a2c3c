"""GPU exploration: where does an SVD-XT UNet step spend its time, and what do compile/attention/VAE choices buy?"""
import json, os, sys, time, gc, importlib
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

OUT = os.environ.get("OUT", ".")
torch.set_grad_enabled(False)
res = []
def emit(**kw):
    res.append(kw); print(json.dumps(kw), flush=True)
    json.dump(res, open(os.path.join(OUT, "explore.json"), "w"), indent=1)

for name in ("pandas", "tqdm", "wandb", "imageio", "torchao", "diffusers", "hydra", "triton"):
    try:
        m = importlib.import_module(name); emit(pkg=name, version=getattr(m, "__version__", "?"))
    except Exception as e:
        emit(pkg=name, missing=str(e)[:80])
emit(torch=torch.__version__, gpu=torch.cuda.get_device_name(), cudnn=torch.backends.cudnn.version())

from svd_batch.models import build_full_size_pipeline
t = time.perf_counter(); pipe = build_full_size_pipeline(25); pipe.to("cuda", torch.float16); emit(build_s=round(time.perf_counter() - t, 1))
unet, vae = pipe.unet, pipe.vae
F, H, W = 25, 576, 1024
lat = torch.randn(2, F, 8, H // 8, W // 8, device="cuda", dtype=torch.float16)
enc = torch.randn(2, 1, 1024, device="cuda", dtype=torch.float16)
ids = torch.tensor([[6, 127, 0.02]] * 2, device="cuda", dtype=torch.float16)
ts = torch.tensor(1.0, device="cuda", dtype=torch.float16)

@torch.no_grad()
def step(m=None):
    return (m or unet)(lat, ts, encoder_hidden_states=enc, added_time_ids=ids, return_dict=False)[0]

def timeit(fn, reps=8, warm=2):
    for _ in range(warm): fn()
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        s.record(); fn(); e.record(); torch.cuda.synchronize(); times.append(s.elapsed_time(e))
    times.sort()
    return round(times[len(times)//2], 1), round(torch.cuda.max_memory_allocated() / 2**30, 2)

ref = step().float()

# VAE
z = torch.randn(F, 4, H // 8, W // 8, device="cuda", dtype=torch.float16)
for chunk in (8, 4, 2):
    def dec(): 
        with torch.no_grad():
            for i in range(0, F, chunk): vae.decode(z[i:i+chunk], num_frames=z[i:i+chunk].shape[0])
    ms, peak = timeit(dec, reps=3, warm=1); emit(what=f"vae decode 25 frames chunk {chunk} eager", ms=ms, peak_gib=peak)
img = torch.randn(1, 3, H, W, device="cuda", dtype=torch.float16)
ms, peak = timeit(lambda: vae.encode(img.float().to(torch.float16)).latent_dist.mode(), reps=5)
emit(what="vae encode conditioning image", ms=ms)
clip_in = torch.randn(1, 3, 224, 224, device="cuda", dtype=torch.float16)
ms, _ = timeit(lambda: pipe.image_encoder(clip_in), reps=5); emit(what="clip encode", ms=ms)

# export on CPU
import numpy as np
from svd_batch.config import ExportConfig
from svd_batch.export import export_frames
frames = (np.random.default_rng(0).random((25, 576, 1024, 3)) * 255).astype(np.uint8)
smooth = np.repeat(np.linspace(0, 255, 1024, dtype=np.uint8)[None, None, :, None], 576, 1).repeat(3, 3).repeat(25, 0)
for label, fr in (("noise", frames), ("smooth", smooth)):
    t = time.perf_counter(); export_frames(fr, __import__("pathlib").Path(OUT) / f"x_{label}.mp4", ExportConfig()); emit(what=f"export mp4 25x576x1024 {label}", s=round(time.perf_counter() - t, 2))
    os.remove(os.path.join(OUT, f"x_{label}.mp4"))
t = time.perf_counter(); out = pipe.video_processor.postprocess_video(torch.rand(1, 3, 25, 576, 1024, device="cuda"), output_type="np"); emit(what="postprocess_video np", s=round(time.perf_counter() - t, 2))

# regional compile of the repeated blocks
import torch._dynamo
torch._dynamo.config.cache_size_limit = 64
try: torch._dynamo.config.recompile_limit = 64
except Exception: pass
from diffusers.models.unets.unet_3d_blocks import SpatioTemporalResBlock, TransformerSpatioTemporalModel
mode = os.environ.get("COMPILE_MODE") or None
blocks = [m for m in unet.modules() if isinstance(m, (SpatioTemporalResBlock, TransformerSpatioTemporalModel))]
for b in blocks: b.compile(mode=mode, fullgraph=True)
t = time.perf_counter(); step(); torch.cuda.synchronize(); emit(what=f"regional compile ({len(blocks)} blocks, mode={mode}) first step", s=round(time.perf_counter() - t, 1))
ms, peak = timeit(step); emit(what=f"unet step regional compiled mode={mode}", ms=ms, peak_gib=peak)
out = step().float(); emit(what="regional compiled vs eager rel err", rel=float((out - ref).norm() / ref.norm()))
with sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH], set_priority=True):
    t = time.perf_counter(); step(); torch.cuda.synchronize(); emit(what="recompile for cudnn ctx", s=round(time.perf_counter() - t, 1))
    ms, peak = timeit(step); emit(what="unet step regional compiled, cuDNN first", ms=ms, peak_gib=peak)
# VAE decoder compiled
vae.decoder.compile(mode=mode)
def dec8():
    with torch.no_grad():
        for i in range(0, F, 8): vae.decode(z[i:i+8], num_frames=z[i:i+8].shape[0])
t = time.perf_counter(); dec8(); torch.cuda.synchronize(); emit(what="vae decoder compile first", s=round(time.perf_counter() - t, 1))
ms, peak = timeit(dec8, reps=3, warm=1); emit(what="vae decode chunk 8 compiled", ms=ms, peak_gib=peak)
if os.environ.get("AUTOTUNE"):
    torch._dynamo.reset()
    import diffusers
    unet2 = unet
    for b in blocks: b._compiled_call_impl = None
    for b in blocks: b.compile(mode="max-autotune-no-cudagraphs", fullgraph=True)
    t = time.perf_counter(); step(); torch.cuda.synchronize(); emit(what="regional max-autotune-no-cudagraphs first step", s=round(time.perf_counter() - t, 1))
    ms, peak = timeit(step); emit(what="unet step regional max-autotune", ms=ms, peak_gib=peak)
print("SUMMARY"); [print(r) for r in res if "kernel" not in r]
