"""Where a video's time goes outside the UNet and the VAE decoder: the encode stage (CLIP image embedding, VAE
encoding, the pipeline's CPU preprocessing and noise) and the main thread's work between two videos (image loading,
quality measures), on the full-size SVD-XT with random weights, eager (nothing compiled), the h100 profile's
placement. Each stage is timed with the device synchronized around it, then one video is run under torch.profiler.
python between_profile.py OUT_DIR [overrides...]
(Call 1 ran it on the code before svd_batch.engine.conditioning, timing the quality measure's resize in
svd_batch.engine.pipeline; that function is now conditioning's.)"""

import functools
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion as svd_module
import torch
from hydra import compose, initialize_config_dir

from svd_batch import bench
from svd_batch.batch import worker as worker_module
from svd_batch.batch.records import OutputFolder
from svd_batch.batch.worker import BatchRunner
from svd_batch.config import load_config
from svd_batch.engine import conditioning
from svd_batch.engine import pipeline as pipeline_module
from svd_batch.engine.accelerator import detect_gpu
from svd_batch.engine.hardware import resolve_hardware
from svd_batch.engine.models import load_pipeline

out = Path(sys.argv[1])
repo = Path(__file__).resolve().parents[2]
overrides = [
    "model=svd_xt",
    "model.init=random",
    "hardware=h100",
    "hardware.compile_unet=none",
    "hardware.compile_vae=false",
    "output_dir=/tmp/bp",
    "cache_dir=/tmp/bpc",
    "model.num_inference_steps=3",
]
with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
    config = load_config(compose("config", overrides=overrides + sys.argv[2:]))
hardware = resolve_hardware(config.hardware, detect_gpu())
gpu = torch.cuda.is_available()
pipe = load_pipeline(config.model, torch.float16 if gpu else torch.float32, "cuda" if gpu else "cpu")


def sync():
    if gpu:
        torch.cuda.synchronize()


times: dict[str, list[float]] = defaultdict(list)


def timed(label, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        sync()
        started = time.perf_counter()
        with torch.profiler.record_function(label):
            result = function(*args, **kwargs)
        sync()
        times[label].append(time.perf_counter() - started)
        return result

    return wrapper


def patch(owner, name, label=None):
    setattr(owner, name, timed(label or name, getattr(owner, name)))


patch(worker_module, "load_image")
patch(worker_module, "fit_image")
patch(svd_module, "_resize_with_antialiasing")
patch(conditioning, "_resize_with_antialiasing", "_resize_with_antialiasing (on the device)")
patch(svd_module, "randn_tensor")
patch(pipe, "_encode_image")
patch(pipe, "_encode_vae_image")
patch(pipe, "_get_add_time_ids")
patch(pipe, "check_inputs")
patch(pipe.video_processor, "preprocess", "video_processor.preprocess")
patch(type(pipe.feature_extractor), "__call__", "feature_extractor")  # obj(...) looks __call__ up on the type
patch(pipe.image_encoder, "forward", "image_encoder.forward")
patch(pipe.vae, "encode", "vae.encode")
patch(BatchRunner, "measure_against_input")
patch(BatchRunner, "generate", "generate (whole job, main thread)")
patch(pipeline_module.VideoGenerator, "subject_similarity")
patch(pipeline_module.VideoGenerator, "decode", "decode (VAE + uint8 + copy)")
patch(pipe.scheduler, "set_timesteps", "scheduler.set_timesteps")

jobs = bench.bench_jobs(config.sample, 6, "svd_xt:random", 8)
with OutputFolder(Path("/tmp/bp/out"), "bp") as folder:
    runner = BatchRunner(config, hardware, pipe, folder)
    runner.run_jobs(jobs[:2], progress=False)
    times.clear()
    runner.run_jobs(jobs[2:5], progress=False)
    timed_rows = {k: [round(x * 1e3, 2) for x in v] for k, v in times.items()}
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    ) as prof:
        runner.generate(jobs[5])
        sync()
(out / "between-times-ms.json").write_text(json.dumps(timed_rows, indent=1))
(out / "between-profile-cpu.txt").write_text(prof.key_averages().table(sort_by="cpu_time_total", row_limit=70))
(out / "between-profile-cuda.txt").write_text(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=40))
prof.export_chrome_trace(str(out / "between-trace.json"))
for label, values in sorted(timed_rows.items(), key=lambda kv: -sum(kv[1])):
    print(f"{label:45s} {values}")
