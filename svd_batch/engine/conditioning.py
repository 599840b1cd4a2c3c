"""The conditioning image's preprocessing, done where the model runs.

diffusers' SVD pipeline prepares its conditioning image on the CPU in float32 on every call: the anti-aliased resize
to CLIP's 224x224 input (56-84 ms for a 576x1024 image on an H200's host), CLIP's normalization through the image
processor in NumPy (24 ms) and the VAE's input (40 ms), while the GPU waits (benchmarks/h200-2026-12-01c).
`install` gives a pipeline an `_encode_image` and a VAE `preprocess` that do the same float32 arithmetic, in the
same order and on tensors of the same memory layout, on the pipeline's device. On the CPU the frames equal a plain
call's bit for bit; on a GPU only the resize's convolutions may round differently.
"""

from __future__ import annotations

from types import MethodType

import numpy as np
import torch
from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing
from PIL import Image

CLIP_SIZE = (224, 224)


def image_tensor(image: Image.Image, device: torch.device | str) -> torch.Tensor:
    """(1, 3, H, W) float32 in [0, 1] on `device`: VaeImageProcessor's pil_to_numpy and numpy_to_pt, with its division
    by 255 done on the device; a quarter of the bytes cross to the device."""
    pixels = torch.from_numpy(np.array(image.convert("RGB") if image.mode != "RGB" else image))
    return unit_pixels(pixels.to(device)[None])


def unit_pixels(frames: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1], as pil_to_numpy and numpy_to_pt compute it (the same
    float32 division), with numpy_to_pt's strides (a channels-last view), which the VAE encoder's convolutions
    follow."""
    return frames.permute(0, 3, 1, 2).float() / 255.0


def clip_pixels(pipe, images: torch.Tensor) -> torch.Tensor:
    """CLIP's input for (N, 3, H, W) images in [0, 1] of any size, on their device: `_encode_image`'s PIL path (the
    anti-aliased resize done in [-1, 1]) and then the image processor's per-channel normalization."""
    pixels = (_resize_with_antialiasing(images * 2.0 - 1.0, CLIP_SIZE) + 1.0) / 2.0
    processor = pipe.feature_extractor
    mean = torch.tensor(processor.image_mean, dtype=pixels.dtype, device=pixels.device)[:, None, None]
    std = torch.tensor(processor.image_std, dtype=pixels.dtype, device=pixels.device)[:, None, None]
    return (pixels - mean) / std


def encode_image(
    pipe, image: Image.Image | torch.Tensor, device: torch.device | str, num_videos_per_prompt: int,
    do_classifier_free_guidance: bool,
) -> torch.Tensor:  # fmt: skip
    """StableVideoDiffusionPipeline._encode_image for a PIL image or [0, 1] image tensors of any size (diffusers'
    own takes tensors as already resized and normalized for CLIP), computed on `device`."""
    images = image if isinstance(image, torch.Tensor) else image_tensor(image, device)
    pixels = clip_pixels(pipe, images.to(device))
    embeddings = pipe.image_encoder(pixels.to(dtype=pipe.image_encoder.dtype)).image_embeds.unsqueeze(1)
    # as diffusers does: one copy per video, then the unconditional (zero) embedding first for guidance
    batch, tokens, _ = embeddings.shape
    embeddings = embeddings.repeat(1, num_videos_per_prompt, 1).view(batch * num_videos_per_prompt, tokens, -1)
    if do_classifier_free_guidance:
        embeddings = torch.cat([torch.zeros_like(embeddings), embeddings])
    return embeddings


def preprocess(pipe, image, height: int | None = None, width: int | None = None, **options) -> torch.Tensor:
    """VaeImageProcessor.preprocess for one RGB PIL image already at (width, height), as the pipeline's call receives
    it from the job runner, on the pipeline's device (where the call moves the result); any other input goes to
    diffusers' own. Diffusers' resizes such an image to the size it has (a copy) and scales it to [-1, 1]."""
    processor = pipe.video_processor
    config = processor.config
    plain = not (options or config.do_convert_rgb or config.do_convert_grayscale or config.do_binarize)
    scale = config.vae_scale_factor
    if (
        isinstance(image, Image.Image)
        and image.mode == "RGB"
        and plain
        and image.size == (width, height)
        and width % scale == height % scale == 0
    ):
        pixels = image_tensor(image, pipe._execution_device)
        return processor.normalize(pixels) if config.do_normalize else pixels
    return type(processor).preprocess(processor, image, height, width, **options)


def install(pipe) -> None:
    """Gives `pipe` this module's `_encode_image` and VAE preprocessing (svd_batch.engine.prepare.reset_pipeline
    takes them away)."""
    pipe._encode_image = MethodType(encode_image, pipe)
    pipe.video_processor.preprocess = MethodType(preprocess, pipe)


def uninstall(pipe) -> None:
    pipe.__dict__.pop("_encode_image", None)
    pipe.video_processor.__dict__.pop("preprocess", None)
