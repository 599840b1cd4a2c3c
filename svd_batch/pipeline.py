"""VideoGenerator: turns (image, parameters) into frames with the diffusers pipeline, timing each stage.

It calls `StableVideoDiffusionPipeline.__call__` itself (output_type="latent") and then the pipeline's own decode and
post-processing, so its frames equal a plain `pipe(image, ...)` call bit for bit while encode, denoise and decode are
timed separately. The generator knows nothing about manifests, files or tracking.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import StableVideoDiffusionPipeline
from PIL import Image

from svd_batch.config import SampleParams


@dataclass
class StageTimes:
    encode_s: float = 0.0  # CLIP image embedding + VAE encoding of the conditioning image
    denoise_s: float = 0.0  # the UNet loop
    decode_s: float = 0.0  # VAE decode + conversion to uint8 frames


@dataclass
class Generation:
    frames: np.ndarray  # (num_frames, height, width, 3) uint8
    times: StageTimes
    peak_vram_gib: float | None  # None on the CPU


class StageClock:
    """Wall-clock marks that wait for queued GPU work first, so each stage is charged its own kernels."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


class VideoGenerator:
    def __init__(self, pipe: StableVideoDiffusionPipeline):
        self.pipe = pipe

    @property
    def device(self) -> torch.device:
        return self.pipe._execution_device  # the GPU also under model offload, where the weights rest on the CPU

    def generate(self, image: Image.Image, params: SampleParams) -> Generation:
        clock = StageClock(self.device)
        if clock.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        marks: dict[str, float] = {}

        def mark_denoise_start(*_):  # first UNet call: encoding is done
            marks.setdefault("denoise", clock.now())

        start = clock.now()
        hook = self.pipe.unet.register_forward_pre_hook(mark_denoise_start)
        try:
            latents = self.pipe(
                image,
                height=params.height,
                width=params.width,
                num_frames=params.num_frames,
                num_inference_steps=params.num_inference_steps,
                min_guidance_scale=params.min_guidance_scale,
                max_guidance_scale=params.max_guidance_scale,
                fps=params.fps,
                motion_bucket_id=params.motion_bucket_id,
                noise_aug_strength=params.noise_aug_strength,
                decode_chunk_size=params.decode_chunk_size,
                # a CPU generator gives the same noise on every device, as the seed guide's torch.manual_seed does
                generator=torch.Generator("cpu").manual_seed(params.seed),
                output_type="latent",
            ).frames
        finally:
            hook.remove()
        denoised = clock.now()
        frames = self.decode(latents, params)
        decoded = clock.now()

        encode_end = marks.get("denoise", denoised)
        times = StageTimes(encode_s=encode_end - start, denoise_s=denoised - encode_end, decode_s=decoded - denoised)
        peak = torch.cuda.max_memory_allocated(self.device) / 2**30 if clock.cuda else None
        return Generation(frames=frames, times=times, peak_vram_gib=peak)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, params: SampleParams) -> np.ndarray:
        """The pipeline's own decode, then its post-processing and PIL rounding done on the device: the same float32
        arithmetic, a quarter of the bytes to copy back."""
        video = self.pipe.decode_latents(latents, params.num_frames, params.decode_chunk_size)[0]  # (C, F, H, W)
        video = (video * 0.5 + 0.5).clamp(0, 1)  # VaeImageProcessor.denormalize
        video = (video * 255).round().to(torch.uint8).permute(1, 2, 3, 0)  # numpy_to_pil's rounding
        self.pipe.maybe_free_model_hooks()  # under model offload, returns the VAE to the CPU as a plain call does
        return video.cpu().numpy()
