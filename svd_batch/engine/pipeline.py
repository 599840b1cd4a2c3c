"""VideoGenerator: turns (image, parameters) into frames with the diffusers pipeline, timing each stage.

It calls `StableVideoDiffusionPipeline.__call__` itself (output_type="latent") and then the pipeline's own decode and
post-processing, so its frames equal a plain `pipe(image, ...)` call bit for bit (on the CPU; on a GPU within the
rounding of the conditioning image's resize, done there: svd_batch.engine.conditioning) while encode, denoise and
decode are timed separately. The generator knows nothing about manifests, files or tracking.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import StableVideoDiffusionPipeline
from PIL import Image

from svd_batch.config import SampleParams, SvdBatchError
from svd_batch.engine import accelerator, conditioning
from svd_batch.engine.segments import ColorMatcher, join_segments, segment_seed


class BadOutputError(SvdBatchError):
    """The model produced NaN or black frames: a numerical failure, not a video."""


@dataclass
class StageTimes:
    encode_s: float = 0.0  # CLIP image embedding + VAE encoding of the conditioning image
    denoise_s: float = 0.0  # the UNet loop
    decode_s: float = 0.0  # VAE decode + conversion to uint8 frames (+ colour matching of chained segments)

    def add(self, other: StageTimes) -> None:
        self.encode_s += other.encode_s
        self.denoise_s += other.denoise_s
        self.decode_s += other.decode_s


@dataclass
class Generation:
    frames: np.ndarray  # (segments x (num_frames - 1) + 1, height, width, 3) uint8
    times: StageTimes
    peak_vram_gib: float | None  # None on the CPU
    # the same frames still on the device, for a one-segment video (chained ones are colour-matched on the host):
    # the CLIP similarity measure reads them there instead of copying the host's back
    device_frames: torch.Tensor | None = None


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
        conditioning.install(pipe)  # the conditioning image is prepared on the device

    @property
    def device(self) -> torch.device:
        return self.pipe._execution_device  # the GPU also under model offload, where the weights rest on the CPU

    def initial_latents(self, params: SampleParams) -> torch.Tensor:
        """The first segment's starting noise, drawn on the CPU exactly as the pipeline's call would draw it: from
        the seed's generator, after the conditioning image's noise. Drawing 25 frames of float16 noise on the CPU
        takes ~40 ms, so the job loop draws the next job's while this one renders and passes them to `generate`."""
        generator = torch.Generator("cpu").manual_seed(params.seed)
        torch.randn((1, 3, params.height, params.width), generator=generator)  # the noise augmentation's draw
        return torch.randn(self.latent_shape(params), generator=generator, dtype=self.pipe.image_encoder.dtype)

    def latent_shape(self, params: SampleParams) -> tuple[int, ...]:
        scale = self.pipe.vae_scale_factor
        channels = self.pipe.unet.config.in_channels // 2  # the UNet also takes the image's latents
        return (1, params.num_frames, channels, params.height // scale, params.width // scale)

    def graph_arguments(self, params: SampleParams) -> dict[str, list[tuple]]:
        """What this pipeline's call for `params` passes to the UNet (at every step) and to the VAE decoder (once per
        decode chunk), as zero tensors of the same shapes, dtypes and devices: their compiled graphs can be built
        before a video gets there (svd_batch.engine.compiled.Compiler.build_ahead). tests/test_compiled.py checks them
        against a real call's."""
        pipe, device = self.pipe, self.device
        dtype = pipe.image_encoder.dtype  # the call's latents, image latents and time ids take the embedding's dtype
        guided = params.max_guidance_scale > 1
        batch = 2 if guided else 1  # classifier-free guidance: unconditional and conditional halves
        _, frames, _, height, width = self.latent_shape(params)
        sample = torch.zeros(batch, frames, pipe.unet.config.in_channels, height, width, dtype=dtype, device=device)
        scheduler = copy.deepcopy(pipe.scheduler)  # the pipeline's own keeps its state
        scheduler.set_timesteps(params.num_inference_steps, device=device)
        embedding = torch.zeros(batch, 1, pipe.image_encoder.config.projection_dim, dtype=dtype, device=device)
        time_ids = pipe._get_add_time_ids(
            params.fps - 1, params.motion_bucket_id, params.noise_aug_strength, dtype, 1, 1, guided
        ).to(device)
        unet = (sample, scheduler.timesteps[0], embedding, time_ids)
        chunk = params.decode_chunk_size or frames  # decode_latents' chunks (None: all frames), the last one shorter
        sizes = sorted({min(chunk, frames - start) for start in range(0, frames, chunk)}, reverse=True)
        latent, vae_dtype = pipe.vae.config.latent_channels, pipe.vae.dtype
        decoder = [
            (
                torch.zeros(n, latent, height, width, dtype=vae_dtype, device=device),
                torch.zeros(1, n, dtype=vae_dtype, device=device),  # the temporal decoder's image_only_indicator
                n,
            )
            for n in sizes
        ]
        return {"unet": [unet], "vae_decoder": decoder}

    def generate(self, image: Image.Image, params: SampleParams, latents: torch.Tensor | None = None) -> Generation:
        """The job's video: one SVD call, or `params.segments` chained ones (svd_batch.engine.segments), each later
        segment conditioned on the previous one's last frame and matched to the first one's colours. Stage times
        are sums over the segments (colour matching counts as decoding); peak memory is the largest. `latents`:
        `initial_latents(params)` drawn ahead (ignored where they no longer fit, e.g. after a fallback)."""
        accelerator.reset_peak_memory(self.device)
        times = StageTimes()
        segments: list[np.ndarray] = []
        condition = image
        fits = latents is not None and latents.shape == self.latent_shape(params)
        for k in range(params.segments):
            start = latents if k == 0 and fits else None
            frames, video, segment_times = self.render_segment(condition, params, segment_seed(params.seed, k), start)
            times.add(segment_times)
            if k == 0:
                # one segment needs no matching: no reference statistics on the critical path between videos
                matcher = ColorMatcher(params.color_match, frames) if params.segments > 1 else None
            else:
                started = time.perf_counter()
                frames = matcher.match(frames)
                times.decode_s += time.perf_counter() - started
            segments.append(frames)
            condition = Image.fromarray(frames[-1])  # already at the video's size: the pipeline's resize keeps it
        device_frames = video if params.segments == 1 else None
        return Generation(join_segments(segments), times, accelerator.peak_memory_gib(self.device), device_frames)

    def render_segment(
        self, image: Image.Image, params: SampleParams, seed: int, latents: torch.Tensor | None = None
    ) -> tuple[np.ndarray, torch.Tensor, StageTimes]:
        """One pipeline call conditioned on `image`, timed by stage: its frames on the host and on the device."""
        clock = StageClock(self.device)
        start = clock.now()
        with FirstCallMarks(clock, {"denoise": self.pipe.unet}) as marks:  # first UNet call: encoding is done
            try:
                latents = self.pipe(
                    image,
                    **call_arguments(params),
                    # a CPU generator gives the same noise on every device, as the seed guide's torch.manual_seed does
                    generator=torch.Generator("cpu").manual_seed(seed),
                    latents=latents,
                    output_type="latent",
                ).frames
            except Exception as exc:
                if accelerator.is_out_of_memory(exc):
                    raise StageOutOfMemory("denoising" if "denoise" in marks else "encoding", exc) from exc
                raise
        denoised = clock.now()
        try:
            frames, video = self.decode(latents, params)
        except Exception as exc:
            if accelerator.is_out_of_memory(exc):
                raise StageOutOfMemory("decoding", exc) from exc
            raise
        decoded = clock.now()
        encode_end = marks.get("denoise", denoised)
        return frames, video, StageTimes(encode_end - start, denoised - encode_end, decoded - denoised)

    @torch.no_grad()
    def subject_similarity(
        self, frames: np.ndarray, image: Image.Image, device_frames: torch.Tensor | None = None
    ) -> float:
        """Mean cosine similarity of each frame's CLIP image embedding with the conditioning image's, through the
        pipeline's own image encoder and preprocessing, in one batched call.

        The pipeline resizes PIL images to 224x224 with its anti-aliasing filter on the CPU (about a second for a
        25-frame 576x1024 video); svd_batch.engine.conditioning does the same arithmetic on the device.
        """
        # copied to the device as they lie and converted there: a host-side stack of 25 full frames costs more than
        # the encoder's whole call, and runs between one video and the next
        video = device_frames if device_frames is not None else torch.from_numpy(frames).to(self.device)
        video = conditioning.unit_pixels(video)
        pictures = torch.cat([conditioning.image_tensor(image, self.device), video])
        embeddings = conditioning.encode_image(self.pipe, pictures, self.device, 1, False)[:, 0].float()
        self.pipe.maybe_free_model_hooks()  # under model offload, the encoder goes back to the CPU
        similarity = torch.nn.functional.cosine_similarity(embeddings[1:], embeddings[:1], dim=-1)
        return float(similarity.mean())

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, params: SampleParams) -> tuple[np.ndarray, torch.Tensor]:
        """The pipeline's own decode, then its post-processing and PIL rounding done on the device: the same float32
        arithmetic, a quarter of the bytes to copy back. Returns the uint8 frames on the host and on the device."""
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
        return frames, video
