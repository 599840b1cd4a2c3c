"""Getting a StableVideoDiffusionPipeline: from the hub or a local folder (safetensors only), the full-size published
architecture with random weights (benchmarks without a download), or the project's own tiny model (tests, demo)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import diffusers
import torch
import transformers
from diffusers import (
    AutoencoderKLTemporalDecoder,
    EulerDiscreteScheduler,
    StableVideoDiffusionPipeline,
    UNetSpatioTemporalConditionModel,
)
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from svd_batch.config import ModelConfig, ModelInit, SvdBatchError

log = logging.getLogger(__name__)


class ModelLoadError(SvdBatchError):
    pass


def load_pipeline(model: ModelConfig, dtype: torch.dtype, device: str = "cpu") -> StableVideoDiffusionPipeline:
    """`device` is where random weights are built (building 2.2B parameters on a GPU takes seconds, not half a
    minute); loaded weights start on the CPU and the hardware profile places them."""
    if model.init is ModelInit.random:
        pipe = build_full_size_pipeline(num_frames=model.num_frames, device=device, dtype=dtype)
    else:
        path = model.path
        if model.init is ModelInit.tiny:
            path = str(ensure_tiny_pipeline(Path(path).expanduser()))
        pipe = from_pretrained(path, variant=model.variant, revision=model.revision, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)  # the runner shows progress over jobs instead
    return pipe


def from_pretrained(path: str, variant: str | None, revision: str | None, dtype: torch.dtype):
    """The real loading path: safetensors weights only (never pickles), no remote code."""
    local = Path(path).expanduser()
    looks_local = local.exists() or path.startswith((".", "/", "~")) or path.count("/") != 1
    if looks_local and not (local / "model_index.json").is_file():
        raise ModelLoadError(
            f"model folder {path} is missing or is not a diffusers pipeline folder (no "
            f"model_index.json); point model.path at a folder saved with save_pretrained"
        )
    # the runner shows its own progress; the libraries' load bars and notices would bury it
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # newer diffusers rename torch_dtype; older lack `dtype`
            return StableVideoDiffusionPipeline.from_pretrained(
                str(local) if looks_local else path,
                torch_dtype=dtype,
                variant=variant,
                revision=revision,
                use_safetensors=True,
            )
    except (OSError, ValueError) as exc:
        where = f"folder {path}" if looks_local else f"hub repo '{path}'"
        raise ModelLoadError(
            f"could not load the SVD pipeline from {where}: {exc}\n"
            f"If this machine is offline or the weights are not downloaded, download them where there is a "
            f"network (hf download {path}) and pass model.path=/path/to/that/folder; only "
            f"safetensors weights are loaded{f' (variant={variant})' if variant else ''}."
        ) from exc


# --- the published architecture, for benchmarks with random weights --------------------------------------------


def svd_scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        use_karras_sigmas=True,
        timestep_spacing="leading",
        timestep_type="continuous",
        interpolation_type="linear",
        steps_offset=1,
        num_train_timesteps=1000,
    )


def clip_feature_extractor() -> CLIPImageProcessor:
    return CLIPImageProcessor(
        crop_size={"height": 224, "width": 224},
        size={"shortest_edge": 224},
        resample=3,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
    )


def assemble_pipeline(unet, vae, image_encoder) -> StableVideoDiffusionPipeline:
    """SVD's pipeline around these models, with the published scheduler and CLIP preprocessing."""
    return StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=svd_scheduler(),
        feature_extractor=clip_feature_extractor(),
    )


def build_full_size_pipeline(
    num_frames: int = 25, seed: int = 0, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> StableVideoDiffusionPipeline:
    """SVD (14 frames) / SVD-XT (25 frames) at full size with random weights: timing and memory equal the real
    checkpoint's; the pixels are noise. Weights are scaled down so fp16 activations stay finite. They are made in
    `dtype` on `device` directly: no float32 copy first (a smaller card could not hold one), no cast afterwards."""
    torch.manual_seed(seed)
    with torch.device(device), default_dtype(dtype):
        unet = UNetSpatioTemporalConditionModel(sample_size=96, num_frames=num_frames)
        vae = AutoencoderKLTemporalDecoder(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=768,
        )
        image_encoder = CLIPVisionModelWithProjection(
            CLIPVisionConfig(
                hidden_size=1280,
                intermediate_size=5120,
                num_attention_heads=16,
                num_hidden_layers=32,
                patch_size=14,
                image_size=224,
                projection_dim=1024,
                hidden_act="gelu",
            )
        )
    with torch.no_grad():
        for module in (unet, vae, image_encoder):
            for p in module.parameters():
                if p.dim() > 1:
                    p.mul_(0.5)
    # parameters made from Python lists ignore the device context
    return assemble_pipeline(unet, vae, image_encoder).to(device)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


# --- the tiny model ---------------------------------------------------------------------------------------------


def build_tiny_pipeline(seed: int = 0) -> StableVideoDiffusionPipeline:
    """A ~3M-parameter SVD with the real component classes and the real 8x VAE factor. The pipeline always resizes
    the conditioning image to 224 for CLIP, so the tiny CLIP keeps image_size=224 (with large patches)."""
    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=16,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=(2, 4),
        addition_time_embed_dim=32,
        projection_class_embeddings_input_dim=96,
        num_frames=8,
    )
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=(32, 32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        sample_size=128,
    )
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            patch_size=32,
            image_size=224,
            projection_dim=32,
        )
    )
    return assemble_pipeline(unet, vae, image_encoder)


def ensure_tiny_pipeline(folder: Path) -> Path:
    """Builds and saves the tiny pipeline once: under a file lock (several processes may start together), into a
    staging folder renamed into place (a killed build never leaves half a model)."""
    if (folder / "model_index.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f".{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (folder / "model_index.json").is_file():  # another process built it while we waited
            return folder
        log.info("building the tiny SVD pipeline in %s (once)", folder)
        staging = folder.with_name(f".{folder.name}.building-{uuid.uuid4().hex[:8]}")
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        build_tiny_pipeline().save_pretrained(staging, safe_serialization=True)
        if folder.exists():
            shutil.rmtree(folder)  # an incomplete folder from an older, unlocked build
        staging.rename(folder)
    return folder
