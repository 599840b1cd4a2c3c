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

from svd_batch.config import SampleParams, SvdBatchError
from svd_batch.engine import accelerator


class BadOutputError(SvdBatchError):
    """The model produced NaN or black frames: a numerical failure, not a video."""


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


class StageOutOfMemory(SvdBatchError):
    """The device ran out of memory in one stage: encode (CLIP + VAE encoder), denoise (the UNet) or decode (the VAE
    decoder). The worker picks the fallback that can help that stage."""

    def __init__(self, stage: str, error: BaseException):
        super().__init__(f"out of device memory while {stage}: {str(error).splitlines()[0][:200]}")
        self.stage = stage


class StageClock:
    """Wall-clock marks that wait for the device's queued work first, so each stage is charged its own kernels."""

    def __init__(self, device: torch.device):
        self.device = device

    def now(self) -> float:
        accelerator.synchronize(self.device)
        return time.perf_counter()


class FirstCallMarks:
    """Records when each module is first called inside the block: stage boundaries of a plain pipeline call.

    Hooks sit on the module as the pipeline holds it (a compiled wrapper, if any), outside any compiled graph, where
    a synchronizing clock is allowed."""

    def __init__(self, clock: StageClock, modules: dict[str, torch.nn.Module]):
        self.clock, self.modules, self.marks = clock, modules, {}

    def __enter__(self) -> dict[str, float]:
        def mark(name: str):
            def hook(*_) -> None:  # a pre-hook that returned a value would replace the module's inputs
                self.marks.setdefault(name, self.clock.now())

            return hook

        self.hooks = [module.register_forward_pre_hook(mark(name)) for name, module in self.modules.items()]
        return self.marks

    def __exit__(self, *exc) -> None:
        for hook in self.hooks:
            hook.remove()


def call_arguments(params: SampleParams) -> dict:
    """`StableVideoDiffusionPipeline.__call__` arguments for these parameters (all but image and generator)."""
    return {
        "height": params.height,
        "width": params.width,
        "num_frames": params.num_frames,
        "num_inference_steps": params.num_inference_steps,
        "min_guidance_scale": params.min_guidance_scale,
        "max_guidance_scale": params.max_guidance_scale,
        "fps": params.fps,
        "motion_bucket_id": params.motion_bucket_id,
        "noise_aug_strength": params.noise_aug_strength,
        "decode_chunk_size": params.decode_chunk_size,
    }


class VideoGenerator:
    def __init__(self, pipe: StableVideoDiffusionPipeline):
        self.pipe = pipe

    @property
    def device(self) -> torch.device:
        return self.pipe._execution_device  # the GPU also under model offload, where the weights rest on the CPU

    def generate(self, image: Image.Image, params: SampleParams) -> Generation:
        clock = StageClock(self.device)
        accelerator.reset_peak_memory(self.device)
        start = clock.now()
        with FirstCallMarks(clock, {"denoise": self.pipe.unet}) as marks:  # first UNet call: encoding is done
            try:
                latents = self.pipe(
                    image,
                    **call_arguments(params),
                    # a CPU generator gives the same noise on every device, as the seed guide's torch.manual_seed does
                    generator=torch.Generator("cpu").manual_seed(params.seed),
                    output_type="latent",
                ).frames
            except Exception as exc:
                if accelerator.is_out_of_memory(exc):
                    raise StageOutOfMemory("denoising" if "denoise" in marks else "encoding", exc) from exc
                raise
        denoised = clock.now()
        try:
            frames = self.decode(latents, params)
        except Exception as exc:
            if accelerator.is_out_of_memory(exc):
                raise StageOutOfMemory("decoding", exc) from exc
            raise
        decoded = clock.now()

        encode_end = marks.get("denoise", denoised)
        times = StageTimes(encode_s=encode_end - start, denoise_s=denoised - encode_end, decode_s=decoded - denoised)
        return Generation(frames=frames, times=times, peak_vram_gib=accelerator.peak_memory_gib(self.device))

    @torch.no_grad()
    def subject_similarity(self, frames: np.ndarray, image: Image.Image) -> float:
        """Mean cosine similarity of each frame's CLIP image embedding with the conditioning image's, through the
        pipeline's own image encoder and preprocessing, in one batched call."""
        pictures = [image, *(Image.fromarray(frame) for frame in frames)]
        embeddings = self.pipe._encode_image(pictures, self.device, 1, False)[:, 0].float()
        self.pipe.maybe_free_model_hooks()  # under model offload, the encoder goes back to the CPU
        similarity = torch.nn.functional.cosine_similarity(embeddings[1:], embeddings[:1], dim=-1)
        return float(similarity.mean())

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, params: SampleParams) -> np.ndarray:
        """The pipeline's own decode, then its post-processing and PIL rounding done on the device: the same float32
        arithmetic, a quarter of the bytes to copy back."""
        latents = latents.to(self.pipe.vae.dtype)  # a float32 VAE (hardware.vae_float32) decodes float32 latents
        video = self.pipe.decode_latents(latents, params.num_frames, params.decode_chunk_size)[0]  # (C, F, H, W)
        self.pipe.maybe_free_model_hooks()  # under model offload, returns the VAE to the CPU as a plain call does
        if not torch.isfinite(video).all():
            raise BadOutputError(
                "the decoded frames contain NaN/inf (numerical overflow, typical of float16): rerun the job with "
                "hardware.dtype=bfloat16 or float32 (retry_failed=true)"
            )
        video = (video * 0.5 + 0.5).clamp(0, 1)  # VaeImageProcessor.denormalize
        video = (video * 255).round().to(torch.uint8).permute(1, 2, 3, 0)  # numpy_to_pil's rounding
        frames = video.cpu().numpy()
        black = [i for i, frame in enumerate(frames) if frame.max() <= 2]
        if black:
            raise BadOutputError(
                f"frame(s) {black[:8]} of {len(frames)} are black (usually a numerical overflow): rerun the job with "
                f"hardware.dtype=bfloat16 or float32 (retry_failed=true)"
            )
        return frames
